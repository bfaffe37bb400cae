package startstop

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestHTTPServer(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })

	// A busy address fails the group's start, saying what to change, and
	// stops what started before it.
	var log []string
	var g Group
	g.Add("a", &fake{name: "a", log: &log})
	g.Add("http", NewHTTPServer("http", busy.Addr().String(), "use --other-addr", ok, zap.NewNop()))
	err = g.Run(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "use --other-addr") {
		t.Fatalf("start on a busy address: %v", err)
	}
	if want := "start a,stop a"; strings.Join(log, ",") != want {
		t.Fatalf("log %v, want %s", log, want)
	}

	// Run serves until its context ends, then shuts the server down.
	addr := busy.Addr().String()
	busy.Close()
	srv := NewHTTPServer("http", addr, "", ok, zap.NewNop())
	var g2 Group
	g2.Add("http", srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- g2.Run(ctx, func() {
			defer cancel()
			// Headers are bounded at MaxHeaderBytes (net/http allows 4 KiB
			// over it for its own buffer), well under net/http's 1 MiB.
			for _, h := range []struct{ size, status int }{{0, http.StatusTeapot},
				{MaxHeaderBytes - 1024, http.StatusTeapot}, {MaxHeaderBytes + 8192, http.StatusRequestHeaderFieldsTooLarge}} {
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr, nil)
				req.Header.Set("X-Pad", strings.Repeat("p", h.size))
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != h.status {
					t.Errorf("while running, %d bytes of header: %v %v, want %d", h.size, resp, err, h.status)
					return
				}
				resp.Body.Close()
			}
		})
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr); err == nil {
		t.Fatal("the server still answers after Run returned")
	}
}
