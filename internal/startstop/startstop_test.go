package startstop

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

type fake struct {
	name string
	log  *[]string
	fail bool
}

func (f *fake) Start(context.Context) error {
	if f.fail {
		return errors.New("no")
	}
	*f.log = append(*f.log, "start "+f.name)
	return nil
}

func (f *fake) Stop() { *f.log = append(*f.log, "stop "+f.name) }

func TestGroupOrder(t *testing.T) {
	t.Parallel()
	var log []string
	var g Group
	g.Add("a", &fake{name: "a", log: &log})
	g.Add("b", &fake{name: "b", log: &log})
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.Stop()
	g.Stop()
	if want := []string{"start a", "start b", "stop b", "stop a"}; !reflect.DeepEqual(log, want) {
		t.Fatalf("log %v, want %v", log, want)
	}
}

func TestGroupFailedStartStopsTheStarted(t *testing.T) {
	t.Parallel()
	var log []string
	var g Group
	g.Add("a", &fake{name: "a", log: &log})
	g.Add("b", &fake{name: "b", log: &log, fail: true})
	g.Add("c", &fake{name: "c", log: &log})
	if err := g.Start(context.Background()); err == nil || err.Error() != "start b: no" {
		t.Fatalf("start: %v", err)
	}
	g.Stop()
	if want := []string{"start a", "stop a"}; !reflect.DeepEqual(log, want) {
		t.Fatalf("log %v, want %v", log, want)
	}
}

func TestOnce(t *testing.T) {
	t.Parallel()
	var o Once
	o.Stop() // before Start: nothing to stop
	stops := 0
	if err := o.Start(func() (func(), error) { return func() { stops++ }, nil }); err == nil {
		t.Fatal("a stopped service started")
	}
	var p Once
	if err := p.Start(func() (func(), error) { return nil, errors.New("fail") }); err == nil {
		t.Fatal("no error")
	}
	if err := p.Start(func() (func(), error) { return func() { stops++ }, nil }); err != nil {
		t.Fatalf("a start after a failed one: %v", err)
	}
	if err := p.Start(func() (func(), error) { return func() {}, nil }); !errors.Is(err, ErrStarted) {
		t.Fatalf("second start: %v", err)
	}
	p.Stop()
	p.Stop()
	if stops != 1 {
		t.Fatalf("stopped %d times", stops)
	}
}

// TestEvery runs in a synctest bubble: its clock is fake, and
// synctest.Wait returns once every goroutine of the test is blocked, so
// "stop has not returned" and "no round came after" are checked when
// nothing else can happen, not after a guess at how long to wait.
func TestEvery(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		inRound, release := make(chan struct{}), make(chan struct{})
		var rounds atomic.Int32
		stop := Every(time.Millisecond, time.Second, func(ctx context.Context) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("a round without a deadline")
			}
			if rounds.Add(1) == 3 {
				close(inRound)
				<-release
			}
		})
		<-inRound // a loop that stopped ticking leaves the bubble deadlocked: the test fails
		// Ticks come due while the round runs, so when it returns both a
		// tick and stop are ready: stopping must win.
		time.Sleep(10 * time.Millisecond)
		stopped := make(chan struct{})
		go func() { stop(); close(stopped) }()
		synctest.Wait()
		select {
		case <-stopped:
			t.Fatal("stop returned while a round was in progress")
		default:
		}
		close(release)
		<-stopped
		// stop had asked before the third round returned: no fourth, although
		// a tick was waiting too.
		if n := rounds.Load(); n != 3 {
			t.Fatalf("%d rounds", n)
		}
		time.Sleep(time.Second) // the bubble's clock: a thousand intervals, at once
		synctest.Wait()
		if n := rounds.Load(); n != 3 {
			t.Fatalf("a round after stop returned: %d rounds", n)
		}
	})
}

// Stop cancels a round in progress, which need not run out its timeout (a
// round that waits for a server that does not answer).
func TestEveryStopCancelsARound(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		inRound := make(chan struct{})
		start := time.Now()
		stop := Every(time.Millisecond, time.Hour, func(ctx context.Context) {
			close(inRound)
			<-ctx.Done()
		})
		<-inRound
		stop()
		if took := time.Since(start); took > time.Second { // the bubble's clock: the hour would show
			t.Fatalf("stop waited %s for the round", took)
		}
	})
}
