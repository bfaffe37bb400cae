package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/operations"
)

// session is one attempt at running a link: one login, the operations in
// order, one commit.
type session struct {
	w      *Worker
	msg    jetstream.Msg
	r      *linkflow.Run
	link   *linkflow.Link
	integ  string
	holder string // fleet slot holder, "" when the integration is unlimited
	log    *zap.Logger
	start  time.Time

	ctx    context.Context
	cancel context.CancelCauseFunc

	canceled atomic.Bool
	cancelCh chan struct{}
	cancelMu sync.Once
	inputCh  chan struct{}

	lastProgress atomic.Int64 // the last ack-deadline extension, w.sinceStart
	// ackMu orders the heartbeat's in-progress acks and the ack, nak or
	// delayed nak that settles the message: an in-progress ack that reached
	// JetStream after a delayed nak would reset the redelivery to the ack
	// wait. settled: the message is settled, no in-progress ack follows.
	ackMu   sync.Mutex
	settled bool

	// opened are the provider sessions this attempt has, closed at its
	// end: a provider may answer a challenge with a session of its own.
	opened []string
}

// opens notes the provider session of lr, to close it at the attempt's end.
func (s *session) opens(lr *operations.LoginResult) {
	if lr != nil && lr.SessionID != "" && !slices.Contains(s.opened, lr.SessionID) {
		s.opened = append(s.opened, lr.SessionID)
	}
}

// errLeaseLost is the cause of a session's context being canceled because
// its lease was taken over (or expired): another worker owns the link now.
var errLeaseLost = errors.New("lease lost")

func newSession(w *Worker, msg jetstream.Msg, run *linkflow.Run, integ, holder string, log *zap.Logger) *session {
	s := &session{
		w: w, msg: msg, r: run, link: run.Link, integ: integ, holder: holder,
		log: log, start: w.cfg.Clock.Now(),
		cancelCh: make(chan struct{}), inputCh: make(chan struct{}, 1),
	}
	s.lastProgress.Store(w.sinceStart())
	var ctx context.Context = w.runCtx
	if !s.link.ExpiresAt.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = clockwork.WithDeadline(ctx, w.cfg.Clock, s.link.ExpiresAt)
		_ = cancel // released with s.cancel below
		s.ctx, s.cancel = context.WithCancelCause(ctx)
		prev := s.cancel
		s.cancel = func(cause error) { prev(cause); cancel() }
	} else {
		s.ctx, s.cancel = context.WithCancelCause(ctx)
	}
	if s.link.CancelRequested {
		s.requestCancel()
	}
	return s
}

func (s *session) requestCancel() {
	s.cancelMu.Do(func() {
		s.canceled.Store(true)
		close(s.cancelCh)
	})
}

func (s *session) inputReady() {
	select {
	case s.inputCh <- struct{}{}:
	default:
	}
}

// run executes the session attempt and settles the message.
func (s *session) run() {
	s.w.track(s)
	defer s.w.untrack(s)
	defer s.cancel(nil)
	s.w.cfg.Metrics.started()

	l := s.link
	now := s.w.cfg.Clock.Now()
	switch {
	case l.Attempts > s.w.cfg.MaxAttempts:
		_ = s.w.deadLetter(s.msg, "attempts exhausted", l.ID) // the link is failed below; a copy refused is logged
		s.failLink(linkflow.FailureAttemptsExhausted, fmt.Sprintf("Gave up after %d attempts.", l.Attempts-1), nil)
		return
	case !l.ExpiresAt.IsZero() && !now.Before(l.ExpiresAt):
		s.failLink(linkflow.FailureLinkExpired, "The link's deadline passed before it could finish.", nil)
		return
	case s.canceled.Load():
		s.failLink(linkflow.FailureCanceled, "The link was canceled.", intPtr(0))
		return
	}
	s.trace(linkflow.TraceEntry{At: now.UnixMilli(), Step: linkflow.TraceSession, Outcome: "started",
		DurationMs: max(now.Sub(l.ClaimedAt).Milliseconds(), 0)})
	provider, ok := s.w.cfg.Registry.Provider(l.IntegrationID)
	if !ok {
		_ = s.w.deadLetter(s.msg, "unknown integration "+l.IntegrationID, l.ID)
		s.failLink(linkflow.FailureUnprocessableLink, fmt.Sprintf("Integration %q is not available.", l.IntegrationID), nil)
		return
	}
	results, lr, opIndex, err := s.execute(provider)
	if err != nil {
		s.settleError(err, opIndex)
		return
	}
	s.succeed(results, lr)
}

// execute logs in (answering challenges) and runs every operation in order.
// It returns the index of the operation that failed, or nil when the failure
// was not in an operation.
func (s *session) execute(p operations.Provider) ([]json.RawMessage, *operations.LoginResult, *int, error) {
	l := s.link
	defer func() {
		for _, id := range s.opened {
			s.closeSession(p, id)
		}
	}()
	lr, err := s.login(p)
	s.opens(lr)
	if err != nil {
		return nil, nil, nil, err
	}
	if lr.Challenge != nil {
		if lr, err = s.answerChallenges(p, lr); err != nil {
			return nil, nil, nil, err
		}
	}
	results := make([]json.RawMessage, len(l.Operations))
	size := 0
	for i, op := range l.Operations {
		if s.canceled.Load() {
			return nil, nil, intPtr(i), &linkflow.LinkError{Code: linkflow.FailureCanceled, Message: fmt.Sprintf("The link was canceled before operation %d.", i)}
		}
		args := operationArgs(s.r.Arguments, i)
		start := s.w.cfg.Clock.Now()
		ctx, ids := operations.WithRequestIDs(s.ctx)
		data, err := p.Execute(ctx, operations.ExecuteRequest{
			Integration: l.IntegrationID, SessionID: lr.SessionID,
			Resource: op.Resource, Action: op.Action, Arguments: args,
			IdempotencyKey: fmt.Sprintf("%s:%d", l.ID, i),
		})
		e := s.step(linkflow.TraceOperation, start, ids, err)
		e.OperationIndex, e.Resource, e.Action = intPtr(i), op.Resource, op.Action
		s.trace(e)
		if err != nil {
			return nil, nil, intPtr(i), err
		}
		if size += len(data); size > s.w.cfg.MaxResultBytes {
			return nil, nil, intPtr(i), &linkflow.LinkError{Code: linkflow.FailureResultTooLarge, Message: fmt.Sprintf(
				"The operations' results came to %d bytes by operation %d, over the %d a link may hold.", size, i, s.w.cfg.MaxResultBytes)}
		}
		results[i] = data
	}
	return results, lr, nil, nil
}

// step is the trace entry of a step that began at start and ended now with
// err; ids are the provider's request ids of the step, if collected.
func (s *session) step(name string, start time.Time, ids *operations.RequestIDs, err error) linkflow.TraceEntry {
	e := linkflow.TraceEntry{At: start.UnixMilli(), Step: name, Outcome: "ok",
		DurationMs: s.w.cfg.Clock.Now().Sub(start).Milliseconds()}
	if ids != nil {
		e.ProviderRequestIDs = ids.Take()
	}
	if err != nil {
		var le *linkflow.LinkError
		if errors.As(err, &le) {
			e.Outcome, e.Code = "failed", le.Code
		} else {
			e.Outcome, e.Code = "failed", failureOf(err).Code
		}
	}
	return e
}

// trace records a step of a debug link's session. Only names, times,
// counts and codes go in, never a secret, an argument or an answer; a trace
// that cannot be written does not fail the session.
func (s *session) trace(e linkflow.TraceEntry) {
	if !s.link.Debug {
		return
	}
	e.Attempt = s.link.Attempts
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 2*time.Second)
	defer cancel()
	if err := s.w.cfg.Store.AppendTrace(ctx, s.link.ID, s.link.ExpiresAt, e); err != nil {
		s.log.Warn("debug trace", zap.Error(err))
	}
}

// storeErr turns a failed fenced write into the session's end, and marks
// any other error as the store's (storeFailure).
func (s *session) storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, linkflow.ErrFenced):
		s.cancel(errLeaseLost)
		return err
	}
	return &storeFailure{err}
}

// storeFailure is an error of the store (Redis) in a session: not the
// provider's, and not to be shown to the customer or the end user as it
// is (it names servers). The session is tried again, as after a transient
// provider failure.
type storeFailure struct{ err error }

func (e *storeFailure) Error() string { return e.err.Error() }
func (e *storeFailure) Unwrap() error { return e.err }

// failureOf is what a session's error err, not a LinkError, means for the
// link: a store failure is linkflow's own (transient, in words that name no
// server), anything else the provider's (operations.AsError).
func failureOf(err error) *operations.Error {
	if sf := (*storeFailure)(nil); errors.As(err, &sf) {
		return &operations.Error{Code: linkflow.FailureInternal, Transient: true,
			Message: "linkflow could not read or write the link's state."}
	}
	return operations.AsError(err)
}

// underLease runs a write fenced by the session's lease. Fenced, it asks
// whether the lease only lapsed while Redis did not answer (holdsLease
// takes it back then) and writes once more before the session ends.
func (s *session) underLease(write func() error) error {
	err := write()
	if errors.Is(err, linkflow.ErrFenced) && s.holdsLease() {
		err = write()
	}
	return s.storeErr(err)
}

// holdsLease renews this session's lease alone, taking it back when it
// lapsed while Redis did not answer and no other session began since (the
// heartbeat does the same for every session at its next beat).
func (s *session) holdsLease() bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 5*time.Second)
	defer cancel()
	st, err := s.w.cfg.Store.Heartbeat(ctx, []linkflow.LeaseRef{{OrgID: s.link.OrgID, LinkID: s.link.ID, Token: s.r.Token}},
		nil, s.w.cfg.LeaseTTL)
	if err != nil {
		s.log.Warn("renew the lease after a fenced write", zap.Error(err))
	}
	return err == nil && len(st) == 1 && !st[0].Lost
}

// succeed commits the results, the connection and the completion event in
// one fenced step, publishes the event and acknowledges the message.
func (s *session) succeed(results []json.RawMessage, lr *operations.LoginResult) {
	s.w.commits <- struct{}{}
	defer func() { <-s.w.commits }()
	l := s.link
	result, err := buildResult(s.w.cfg.Registry, l.IntegrationID, l.Operations, results)
	if err != nil {
		s.log.Error("build result", zap.Error(err))
		s.failLink(linkflow.FailureInternal, "The provider's result could not be recorded.", nil)
		return
	}
	l.Status = linkflow.StatusSucceeded
	l.CompletedAt = time.UnixMilli(s.w.cfg.Clock.Now().UnixMilli())
	l.Result = result
	conn := &linkflow.ConnectionWrite{
		ID: s.r.ConnectionID, IntegrationID: l.IntegrationID, Username: l.Username,
		ExternalUserID: l.ExternalUserID, DisplayName: lr.DisplayName, WebhookURL: l.WebhookURL,
		Credentials: lr.Credentials,
	}
	s.commit(func(ctx context.Context) (*linkflow.Finished, error) {
		return s.w.cfg.Store.FinishRun(ctx, l, s.r.Token, conn)
	})
}

// failLink commits the failure alone: status failed and {code, message,
// operationIndex}, nothing else.
func (s *session) failLink(code linkflow.FailureCode, message string, opIndex *int) {
	l := s.link
	l.Status = linkflow.StatusFailed
	l.CompletedAt = time.UnixMilli(s.w.cfg.Clock.Now().UnixMilli())
	l.Result = nil
	l.Error = &linkflow.LinkError{Code: code, Message: message, OperationIndex: opIndex}
	s.commit(func(ctx context.Context) (*linkflow.Finished, error) {
		return s.w.cfg.Store.FinishRun(ctx, l, s.r.Token, nil)
	})
}

// commit runs a finishing step, retrying while Redis is unreachable, then
// publishes the event and acknowledges the message. A fenced commit means
// another worker owns the link: this one stops without touching anything.
func (s *session) commit(finish func(context.Context) (*linkflow.Finished, error)) {
	ctx := context.WithoutCancel(s.ctx)
	var fin *linkflow.Finished
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		// Fenced, the lease may only have lapsed in an outage (underLease).
		err = s.underLease(func() error {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			var err error
			fin, err = finish(cctx)
			return err
		})
		if err == nil || errors.Is(err, linkflow.ErrFenced) {
			break
		}
		s.log.Warn("commit", zap.Int("try", attempt), zap.Error(err))
		// Back off before retrying Redis; a hard stop cuts the pauses short.
		s.w.pause(s.w.runCtx, time.Duration(attempt)*100*time.Millisecond)
	}
	switch {
	case errors.Is(err, linkflow.ErrFenced):
		s.w.cfg.Metrics.fenced()
		s.log.Warn("commit fenced: another worker owns this link now")
		s.trace(linkflow.TraceEntry{At: s.w.cfg.Clock.Now().UnixMilli(), Step: linkflow.TraceHandBack, Outcome: "lease_lost"})
		return
	case err != nil:
		// Redis is gone for now: let JetStream redeliver; the next attempt
		// runs again from login and idempotency keys keep writes single.
		s.log.Error("commit failed; handing the link back", zap.Error(err))
		s.settle(func() error { return s.msg.NakWithDelay(s.w.backoff(1)) })
		return
	}
	fe := linkflow.TraceEntry{At: s.w.cfg.Clock.Now().UnixMilli(), Step: linkflow.TraceFinish, Outcome: string(s.link.Status),
		DurationMs: s.w.cfg.Clock.Now().Sub(s.start).Milliseconds()}
	if s.link.Error != nil {
		fe.Code, fe.OperationIndex = s.link.Error.Code, s.link.Error.OperationIndex
	}
	s.trace(fe)
	s.w.cfg.Metrics.finished(s.link, s.w.cfg.Clock.Now().Sub(s.start))
	s.log.Info("link finished", zap.String("status", string(s.link.Status)),
		zap.Int("attempt", s.link.Attempts), zap.Duration("took", s.w.cfg.Clock.Now().Sub(s.start)))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.w.cfg.Publisher.Publish(pctx, fin.Messages()...); err != nil {
		s.log.Warn("publish completion event; the outbox relay will retry", zap.Error(err))
	}
	s.settle(s.msg.Ack)
}

// settleError decides the fate of a failed attempt from the error alone:
// lease lost or shutdown hand the message back, transient errors retry the
// whole session later, everything else fails the link.
func (s *session) settleError(err error, opIndex *int) {
	l := s.link
	switch cause := context.Cause(s.ctx); {
	case errors.Is(cause, errLeaseLost):
		s.w.cfg.Metrics.fenced()
		s.log.Warn("lease lost: another worker owns this link now")
		s.trace(linkflow.TraceEntry{At: s.w.cfg.Clock.Now().UnixMilli(), Step: linkflow.TraceHandBack, Outcome: "lease_lost"})
		return
	case errors.Is(cause, errShutdown):
		s.trace(linkflow.TraceEntry{At: s.w.cfg.Clock.Now().UnixMilli(), Step: linkflow.TraceHandBack, Outcome: "shutdown"})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if rerr := s.w.cfg.Store.ReleaseRun(ctx, l.OrgID, l.ID, s.r.Token, "", true); rerr != nil {
			s.log.Warn("release at shutdown", zap.Error(rerr))
		}
		s.settle(s.msg.Nak)
		return
	case errors.Is(cause, context.DeadlineExceeded) || (cause == nil && errors.Is(err, context.DeadlineExceeded) && !s.link.ExpiresAt.After(s.w.cfg.Clock.Now())):
		s.failLink(linkflow.FailureLinkExpired, "The link's deadline passed before it could finish.", opIndex)
		return
	}
	var le *linkflow.LinkError
	if errors.As(err, &le) {
		s.failLink(le.Code, le.Message, opIndex)
		return
	}
	pe := failureOf(err)
	if sf := (*storeFailure)(nil); errors.As(err, &sf) {
		s.log.Warn("store failure in the session", zap.Error(sf.err))
	}
	if !pe.Transient {
		s.failLink(pe.Code, pe.Message, opIndex)
		return
	}
	delay := max(s.w.backoff(l.Attempts), pe.RetryAfter)
	if l.Attempts >= s.w.cfg.MaxAttempts {
		_ = s.w.deadLetter(s.msg, "attempts exhausted: "+string(pe.Code), l.ID)
		s.failLink(linkflow.FailureAttemptsExhausted, fmt.Sprintf("Gave up after %d attempts: %s", l.Attempts, pe.Message), opIndex)
		return
	}
	if !l.ExpiresAt.IsZero() && s.w.cfg.Clock.Now().Add(delay).After(l.ExpiresAt) {
		s.failLink(pe.Code, pe.Message+" (no time left to retry before the link's deadline)", opIndex)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 5*time.Second)
	defer cancel()
	if rerr := s.w.cfg.Store.ReleaseRun(ctx, l.OrgID, l.ID, s.r.Token, string(pe.Code)+": "+pe.Message, false); rerr != nil {
		if errors.Is(rerr, linkflow.ErrFenced) {
			s.w.cfg.Metrics.fenced()
			return
		}
		s.log.Warn("release after transient failure", zap.Error(rerr))
	}
	s.w.cfg.Metrics.retried()
	s.trace(linkflow.TraceEntry{At: s.w.cfg.Clock.Now().UnixMilli(), Step: linkflow.TraceRetry, Outcome: "retry",
		Code: pe.Code, OperationIndex: opIndex, RetryInMs: delay.Milliseconds()})
	s.log.Info("transient failure: retrying later", zap.String("code", string(pe.Code)),
		zap.Int("attempt", l.Attempts), zap.Duration("delay", delay))
	s.settle(func() error { return s.msg.NakWithDelay(delay) })
}

// settle settles the message with f (its ack, nak or delayed nak); the
// heartbeat sends no in-progress ack after it.
func (s *session) settle(f func() error) {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.settled = true
	_ = f()
}

// inProgress extends the message's ack deadline unless it was settled, and
// reports whether it did (a failed publish is tried again at the next beat).
func (s *session) inProgress() bool {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	if s.settled {
		return false
	}
	return s.msg.InProgress() == nil
}

// operationArgs is operation i's arguments, nil for one without any (stored
// as null beside one with some): the provider protocol has them absent.
func operationArgs(args []json.RawMessage, i int) json.RawMessage {
	if i >= len(args) || string(args[i]) == "null" {
		return nil
	}
	return args[i]
}

func intPtr(i int) *int { return &i }
