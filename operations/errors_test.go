package operations_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/linkflow/linkflow"

	"github.com/linkflow/linkflow/operations"
)

func TestErrorKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err       error
		code      linkflow.FailureCode
		transient bool
	}{
		{operations.InvalidCredentials("x"), linkflow.FailureInvalidCredentials, false},
		{operations.AccountLocked("x"), linkflow.FailureAccountLocked, false},
		{operations.ChallengeFailed("x"), linkflow.FailureChallengeFailed, false},
		{operations.Declined("x"), linkflow.FailureDeclined, false},
		{operations.Rejected("x"), linkflow.FailureRejected, false},
		{operations.Unavailable("x"), linkflow.FailureProviderUnavailable, true},
		{operations.Timeout("x"), linkflow.FailureProviderTimeout, true},
		{operations.RateLimited("x", time.Second), linkflow.FailureRateLimited, true},
		{fmt.Errorf("wrapped: %w", operations.Declined("x")), linkflow.FailureDeclined, false},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), linkflow.FailureProviderTimeout, true},
		{errors.New("connection reset"), linkflow.FailureProviderUnavailable, true},
	}
	for _, tt := range tests {
		pe := operations.AsError(tt.err)
		if pe.Code != tt.code || pe.Transient != tt.transient {
			t.Errorf("%v: %s transient=%v, want %s transient=%v", tt.err, pe.Code, pe.Transient, tt.code, tt.transient)
		}
	}
	if operations.AsError(nil) != nil {
		t.Error("AsError(nil) is not nil")
	}
	if got := operations.AsError(operations.RateLimited("slow", 3*time.Second)).RetryAfter; got != 3*time.Second {
		t.Errorf("retry after %v", got)
	}
}

func TestLuhnAndExpiry(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"4111111111111111": true, "4000000000000002": true, "378282246310005": true, "0": true,
		"4111111111111112": false, "": false, "4111-1111": false, "411111111111111a": false,
	} {
		if got := operations.LuhnValid(s); got != want {
			t.Errorf("LuhnValid(%q) = %v", s, got)
		}
	}
	now := time.Date(2026, 6, 30, 23, 0, 0, 0, time.UTC)
	for s, ok := range map[string]bool{"06/26": true, "12/99": true, "05/26": false, "13/27": false, "6/27": false, "06/2027": false} {
		if err := operations.CheckCardExpiry(s, now); (err == nil) != ok {
			t.Errorf("CheckCardExpiry(%q): %v", s, err)
		}
	}
}
