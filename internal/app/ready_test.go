package app

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/linkflow/linkflow/api"
)

// A readiness check's change between passing and failing is logged once,
// with why it fails, whichever probe asked and however often; a probe that
// gave up says nothing of the dependency.
func TestReadinessChangesAreLoggedOnce(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	var down error
	checks := loggedChecks([]api.ReadyCheck{{Name: "redis", Check: func(context.Context) error { return down }}}, zap.New(core))
	probe := func() { _ = checks[0].Check(context.Background()) }

	probe()
	down = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	probe()
	probe()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_ = checks[0].Check(canceled)
	down = nil
	probe()
	probe()

	failing := logs.FilterMessage("readiness check failing").AllUntimed()
	passing := logs.FilterMessage("readiness check passing again").Len()
	if len(failing) != 1 || passing != 1 || logs.Len() != 2 {
		t.Fatalf("logged %d lines (%d failing, %d passing), want one of each", logs.Len(), len(failing), passing)
	}
	if why, _ := failing[0].ContextMap()["error"].(string); !strings.Contains(why, "connection refused") {
		t.Fatalf("the failing line does not say why: %v", failing[0].ContextMap())
	}
}
