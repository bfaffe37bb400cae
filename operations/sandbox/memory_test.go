package sandbox_test

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/linkflow/linkflow/operations"
	"github.com/linkflow/linkflow/operations/conformance"
	"github.com/linkflow/linkflow/operations/sandbox"
)

// The sandbox on its in-process store (for benchmarks of linkflow alone)
// passes the same conformance suite as on Redis.
func TestConformanceInMemory(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.New(sandbox.Config{Store: sandbox.NewMemoryStore(), SlowDelay: time.Second,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))})
	if err != nil {
		t.Fatal(err)
	}
	reg := operations.NewRegistry(nil)
	if err := sandbox.Register(reg, sb); err != nil {
		t.Fatal(err)
	}
	conformance.Run(t, conformance.Harness{Registry: reg, Sandbox: sb, SlowDelay: time.Second})
}
