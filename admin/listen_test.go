package admin_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkflow/linkflow/admin"
	"github.com/linkflow/linkflow/client"
)

// Listen finds the log's end in pages of the largest size, rides out a
// proxy's answer, and stops on one of linkflow's that asking again does not
// change (a revoked key's 401) instead of printing it twice a second for
// ever.
func TestListenStopsOnARefusal(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	var firstLimit atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch calls.Add(1) {
		case 1:
			firstLimit.Store(r.URL.Query().Get("limit"))
			_, _ = io.WriteString(w, `{"data":[],"nextCursor":"c1","hasMore":false}`)
			return
		case 2: // a proxy's answer while linkflow is deployed: ridden out
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "<html>default backend - 404</html>")
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"code":"UNAUTHORIZED","message":"The API key is not valid."},"meta":{"request_id":"req_1"}}`)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(client.Config{BaseURL: srv.URL, APIKey: "lfk_revoked_key_0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = admin.Listen(ctx, admin.ListenConfig{Client: c, Every: time.Millisecond, Out: io.Discard, Err: io.Discard})
	var e *client.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusUnauthorized || ctx.Err() != nil || calls.Load() != 3 {
		t.Fatalf("Listen: %v after %d requests", err, calls.Load())
	}
	if got := firstLimit.Load(); got != "1000" {
		t.Fatalf("the first page's limit: %v", got)
	}
}
