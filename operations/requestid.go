package operations

import (
	"context"
	"regexp"
	"sync"
)

// Providers report the request ids of the calls they make (a remote
// provider's X-Request-Id, say), so that a debug link's trace can name them
// and the provider's own logs can be searched for a step that went wrong.
// The worker collects them per step through the context; a provider that
// reports none is fine.

type requestIDsKey struct{}

// RequestIDs collects the request ids a provider reported during one step.
type RequestIDs struct {
	mu  sync.Mutex
	ids []string
}

// maxRequestIDs bounds what one step keeps: a step is one call or a few.
const maxRequestIDs = 8

// requestIDRE is what a request id may look like; anything else is not
// kept (it could be anything, even a secret a provider put there by mistake).
var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// WithRequestIDs returns a context whose provider calls report their
// request ids to the returned collector.
func WithRequestIDs(ctx context.Context) (context.Context, *RequestIDs) {
	r := &RequestIDs{}
	return context.WithValue(ctx, requestIDsKey{}, r), r
}

// ReportRequestID records id as the request id of a call made with ctx,
// when the caller collects them (WithRequestIDs).
func ReportRequestID(ctx context.Context, id string) {
	r, _ := ctx.Value(requestIDsKey{}).(*RequestIDs)
	if r == nil || !requestIDRE.MatchString(id) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ids) < maxRequestIDs {
		r.ids = append(r.ids, id)
	}
}

// Take returns the ids reported so far and forgets them.
func (r *RequestIDs) Take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := r.ids
	r.ids = nil
	return ids
}
