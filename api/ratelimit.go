package api

import (
	"context"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/linkflow/linkflow"
)

// Limit is a rate limit: Rate requests per second on average, and bursts of
// up to Burst at once. The zero Limit takes the default of the field it is
// in; a negative Rate (NoLimit) turns the limit off. A positive Rate without
// a Burst gets a burst of twice the rate (at least 1).
type Limit struct {
	Rate  float64
	Burst int
}

// NoLimit turns a rate limit off.
var NoLimit = Limit{Rate: -1}

func (l Limit) orDefault(def Limit) Limit {
	if l == (Limit{}) {
		l = def
	}
	if l.Rate > 0 && l.Burst <= 0 {
		l.Burst = max(int(math.Ceil(2*l.Rate)), 1)
	}
	return l
}

func (l Limit) on() bool { return l.Rate > 0 }

// bucket is one rate limit to ask for: take (count this request) or peek
// (only check; failures are taken afterwards, with countFailure).
func (l Limit) bucket(name string, peek bool) linkflow.RateLimitRequest {
	q := linkflow.RateLimitRequest{Name: name, Rate: l.Rate, Burst: l.Burst}
	if peek {
		q.Mode = linkflow.RateLimitPeek
	}
	return q
}

// reserve is a failure budget taken before the attempt is judged, and given
// back (refund) unless the attempt failed: parallel guesses cannot share
// its last unit, as they can a peek's.
func (l Limit) reserve(name string) linkflow.RateLimitRequest {
	return linkflow.RateLimitRequest{Name: name, Rate: l.Rate, Burst: l.Burst, Mode: linkflow.RateLimitReserve}
}

// limit asks the buckets of reqs whose limit is on, in one round trip. It
// sets the RateLimit-* headers of the tightest bucket this request was
// counted in, and when a bucket refuses, writes 429 with Retry-After and
// returns false. When Redis answers with an error the request goes through:
// a rate limiter must not turn a Redis hiccup into an outage of its own;
// but not one that reserves a failure (a guessable secret's attempt), which
// is refused with 503.
// When Redis is unavailable (store.ErrUnavailable) it is refused with 503
// at once: it could not be served after the limit either.
func (s *Server) limit(w http.ResponseWriter, r *http.Request, reqs ...linkflow.RateLimitRequest) bool {
	if err := s.checkLimits(w, r, reqs...); err != nil {
		s.writeError(w, r, err)
		return false
	}
	return true
}

// checkLimits is limit for handlers that write their own answer (HTML
// pages, the operator's): it sets the headers and returns the error (429,
// or 503) instead of writing it.
func (s *Server) checkLimits(w http.ResponseWriter, r *http.Request, reqs ...linkflow.RateLimitRequest) *linkflow.Error {
	var asked []linkflow.RateLimitRequest
	for _, q := range reqs {
		if q.Rate > 0 {
			asked = append(asked, q)
		}
	}
	if len(asked) == 0 {
		return nil
	}
	reserves := slices.ContainsFunc(asked, func(q linkflow.RateLimitRequest) bool { return q.Mode == linkflow.RateLimitReserve })
	ctx := r.Context()
	if reserves {
		// A reservation whose answer a client going away cut off could
		// not be given back.
		ctx = context.WithoutCancel(ctx)
	}
	res, err := s.cfg.Store.RateLimit(ctx, asked...)
	if err != nil {
		// What the buckets that answered reserved goes back (a Redis
		// Cluster with one node failing over answers in part).
		s.refundTaken(r, asked, res)
	}
	switch {
	case err != nil && isUnavailable(err):
		// Redis is down: the request could not be served after the limit
		// either, so it is refused now rather than after another wait.
		return apiError(err)
	case err != nil && reserves:
		// A guessable secret is not judged without its failure reserved.
		reqLog(r).Warn("rate limit unavailable; the attempt is refused", zap.Error(err))
		e := linkflow.Errorf(linkflow.EServiceUnavailable, "The attempt cannot be counted now. Retry in a few seconds.")
		e.RetryAfter = retryUnavailable
		return e
	case err != nil:
		reqLog(r).Warn("rate limit unavailable; request let through", zap.Error(err))
		return nil
	}
	tightest := -1
	for i, rr := range res {
		failures := asked[i].Mode.CountsFailures()
		if !rr.Allowed {
			// What the other buckets reserved for this attempt goes back:
			// it is not made.
			s.refundTaken(r, asked, res)
			setRateHeaders(w, rr)
			e := linkflow.Errorf(linkflow.ETooManyRequests, "Rate limit exceeded. Retry later.")
			if failures {
				e.Message = "Too many failed attempts. Retry later."
			}
			e.RetryAfter = ceilSeconds(rr.RetryAfter)
			return e
		}
		if !failures && (tightest < 0 || rr.Remaining < res[tightest].Remaining) {
			tightest = i
		}
	}
	if tightest >= 0 {
		setRateHeaders(w, res[tightest])
	}
	return nil
}

// countFailure takes one from each bucket after a failed attempt (a wrong
// claim code, API key or token), whose limits were peeked before.
func (s *Server) countFailure(r *http.Request, reqs ...linkflow.RateLimitRequest) {
	var take []linkflow.RateLimitRequest
	for _, q := range reqs {
		if q.Rate > 0 {
			q.Mode = linkflow.RateLimitTake
			take = append(take, q)
		}
	}
	if len(take) == 0 {
		return
	}
	if _, err := s.cfg.Store.RateLimit(r.Context(), take...); err != nil {
		reqLog(r).Warn("count failed attempt", zap.Error(err))
	}
}

// refundTaken gives back what the reservations among asked took, by their
// answers res (a bucket that did not answer took nothing it could give).
func (s *Server) refundTaken(r *http.Request, asked []linkflow.RateLimitRequest, res []linkflow.RateLimitResult) {
	var taken []linkflow.RateLimitRequest
	for i := range res {
		if res[i].Allowed {
			taken = append(taken, asked[i])
		}
	}
	s.refund(r, taken...)
}

// refund gives back what the reservations among reqs took, for an attempt
// that did not fail (or was not made). Best effort: a refund lost leaves a
// failure counted that was none.
func (s *Server) refund(r *http.Request, reqs ...linkflow.RateLimitRequest) {
	var back []linkflow.RateLimitRequest
	for _, q := range reqs {
		if q.Mode == linkflow.RateLimitReserve && q.Rate > 0 {
			q.Mode = linkflow.RateLimitRefund
			back = append(back, q)
		}
	}
	if len(back) == 0 {
		return
	}
	if _, err := s.cfg.Store.RateLimit(context.WithoutCancel(r.Context()), back...); err != nil {
		reqLog(r).Warn("give back a reserved attempt", zap.Error(err))
	}
}

// setRateHeaders writes the IETF draft's RateLimit-Limit, -Remaining and
// -Reset (seconds until the bucket is full again).
func setRateHeaders(w http.ResponseWriter, rr linkflow.RateLimitResult) {
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(rr.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(rr.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(ceilSeconds(rr.Reset)))
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return max(int(math.Ceil(d.Seconds())), 1)
}

// principalBucket names the bucket of an API key; tokens exchanged for a key
// share the key's bucket, users' tokens have one per user.
func principalBucket(p *linkflow.Principal) string {
	if p.KeyID != "" {
		return "key:" + p.KeyID
	}
	return "sub:" + hashShort(p.Subject)
}

// addrBucket names the bucket of a client address: one per IPv4 address and
// per IPv6 /64 (what one subscriber usually gets).
func addrBucket(kind string, a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return kind + ":" + p.String()
	}
	return kind + ":" + a.String()
}

// clientAddr is the address of the client: the connection's peer, or when
// that peer is a trusted proxy, the last address in X-Forwarded-For that is
// not a trusted proxy itself.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !s.trusted(peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseAddr(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			break // a garbled hop: trust nothing before it
		}
		peer = a
		if !s.trusted(a) {
			break
		}
	}
	return peer
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr parses "ip", "ip:port" or "[ipv6]:port"; 4in6 addresses are
// unmapped. It returns the zero Addr when s is none of these.
func parseAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// parseCIDRs parses trusted proxy CIDRs; a bare address is a /32 or /128.
func parseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// clientBucket is the request limit of client address addr.
func (s *Server) clientBucket(addr netip.Addr) linkflow.RateLimitRequest {
	return s.cfg.ClientLimit.bucket(addrBucket("ip", addr), false)
}
