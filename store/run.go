package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/outbox"
)

// BeginRun takes the lease of a claimed link for one session attempt and
// returns what the session needs, in one round trip.
func (s *Store) BeginRun(ctx context.Context, org, id, token string, leaseTTL time.Duration) (*linkflow.Run, error) {
	shard := shardOf(id)
	keys := []string{s.k.link(id), s.k.linkLease(id), s.k.linkCred(id), s.k.outbox(shard), s.k.outboxMessages(shard)}
	res, err := beginRunScript.Run(ctx, s.rdb, keys, token, leaseTTL.Milliseconds(), ms(s.now()), outbox.ClaimedID(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("begin run %s: %w", id, err)
	}
	arr, ok := res.([]any)
	if !ok || len(arr) == 0 {
		return nil, fmt.Errorf("begin run %s: unexpected reply %v", id, res)
	}
	verdict, _ := arr[0].(string)
	r := &linkflow.Run{Verdict: linkflow.RunVerdict(verdict), Token: token}
	switch r.Verdict {
	case linkflow.RunBusy:
		pttl, _ := arr[1].(string)
		r.BusyFor = time.Duration(atoi(pttl)) * time.Millisecond
		return r, nil
	case linkflow.RunStart:
	default:
		return r, nil
	}
	if err := s.openRun(r, id, pairsToMap(arr[1]), arr[2]); err != nil {
		// The attempt cannot start (a record this process cannot read, such
		// as a secret sealed with a key it lacks): give the lease and the
		// attempt back so another delivery, perhaps to a better configured
		// worker, can try.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.updateLink(rctx, org, id, fence{token: token}, linkUpdate{release: true, attemptsDelta: -1})
		return nil, fmt.Errorf("begin run %s: %w", id, err)
	}
	return r, nil
}

func (s *Store) openRun(r *linkflow.Run, id string, m map[string]string, password any) error {
	var err error
	if r.Link, err = decodeLink(m); err != nil {
		return err
	}
	if sealed := m[fArgs]; sealed != "" {
		pt, err := s.keys.Open(sealed, argsAAD(id))
		if err != nil {
			return fmt.Errorf("open arguments: %w", err)
		}
		if err := json.Unmarshal(pt, &r.Arguments); err != nil {
			return err
		}
	}
	if sealed, _ := password.(string); sealed != "" {
		pt, err := s.keys.Open(sealed, passwordAAD(id))
		if err != nil {
			return fmt.Errorf("open password: %w", err)
		}
		r.Password = string(pt)
	}
	r.PasswordsRefused = int(atoi(m[fPasswordsRefused]))
	r.ConnectionID = r.Link.RequestedConnectionID
	if r.ConnectionID == "" {
		r.ConnectionID = connectionID(r.Link.OrgID, r.Link.IntegrationID, r.Link.Username)
	}
	return nil
}

// Heartbeat extends, in one pipeline, a process's leases and the fleet-wide
// slots it holds, and reports for each lease whether it was lost, and a
// cancel request or a challenge's answer waiting for it. When a command
// failed it returns the first error with what the others answered (a lease
// whose renewal failed reads as neither lost nor asked for anything).
func (s *Store) Heartbeat(ctx context.Context, leases []linkflow.LeaseRef, slots []linkflow.SlotRef, ttl time.Duration) ([]linkflow.LeaseState, error) {
	if len(leases) == 0 && len(slots) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.Cmd, len(leases))
	pipe := s.pipeline()
	for i, r := range leases {
		cmds[i] = pipe.Script(ctx, renewLeaseScript,
			[]string{s.k.linkLease(r.LinkID), s.k.link(r.LinkID), s.k.linkInput(r.LinkID)},
			r.Token, ttl.Milliseconds())
	}
	exp := float64(ms(s.now().Add(ttl)))
	renewed := make([]*redis.IntCmd, len(slots))
	for i, r := range slots {
		renewed[i] = pipe.ZAddXXCh(ctx, s.k.semaphore(r.Integration), redis.Z{Score: exp, Member: r.Holder})
	}
	err := pipe.Exec(ctx)
	if err != nil {
		err = fmt.Errorf("heartbeat: %w", err)
	}
	out := make([]linkflow.LeaseState, len(leases))
	held := make(map[string]bool, len(leases)) // links whose lease was renewed
	for i, c := range cmds {
		v, err := replyStrings(c.Val())
		if err != nil || len(v) == 0 {
			continue
		}
		if v[0] == "lost" {
			out[i].Lost = true
			continue
		}
		out[i].CancelRequested = v[1] == "1"
		out[i].InputReady = v[2] == "1"
		held[leases[i].LinkID] = true
	}
	// A hold that is gone was dropped as expired by another process's
	// acquire (a renewal that came too late: a Redis stall, clocks apart):
	// while its session runs on, with its lease renewed just now, it is held
	// again, or the fleet would run more sessions than the limit, uncounted,
	// until this one ends. A session that ended meanwhile has no lease and
	// released its hold: not taken again.
	again := s.rdb.Pipeline()
	for i, c := range renewed {
		if c.Err() == nil && c.Val() == 0 && held[slots[i].LinkID] {
			again.ZAdd(ctx, s.k.semaphore(slots[i].Integration), redis.Z{Score: exp, Member: slots[i].Holder})
		}
	}
	if again.Len() > 0 {
		if _, rerr := again.Exec(ctx); rerr != nil && err == nil {
			err = fmt.Errorf("heartbeat: hold a slot again: %w", rerr)
		}
	}
	return out, err
}

// SetChallenge records, under the run's lease, that the link waits for the
// end user to answer c, or with c nil that it runs again after its
// challenge was answered. A password (with c nil) is one the end user
// entered again after a wrong one and the provider took: it is kept,
// sealed, instead of the one the link was claimed with, so a later session
// attempt (after a transient failure) logs in with it, and the count of
// refused passwords (AskPassword) goes.
func (s *Store) SetChallenge(ctx context.Context, org, id, token string, c *linkflow.Challenge, password string) error {
	if c != nil {
		return s.updateLink(ctx, org, id, fence{token: token}, linkUpdate{
			set: []any{fStatus, string(linkflow.StatusAwaitingInput), fChallenge, encodeChallenge(c)},
			del: answerMarks, // asked (again): it may be answered
		})
	}
	if password != "" {
		if err := s.replacePassword(ctx, id, token, password); err != nil {
			return err
		}
	}
	return s.updateLink(ctx, org, id, fence{token: token}, linkUpdate{
		set: []any{fStatus, string(linkflow.StatusRunning)}, del: append([]string{fChallenge}, answerMarks...),
	})
}

// AskPassword records, under the run's lease, that the link waits for the
// end user to enter the password again (c, a credentials challenge) after
// the provider refused refused passwords in a row: every later session
// attempt asks for one before it logs in, so none replays a refused
// password at the provider, and the passwords tried stay counted across
// attempts. The stored password, refused, is emptied: a later attempt has
// none until the end user enters one that works. It may be called again
// with c (its id) after an error, its
// reply lost: c's expiry moves on, and an answer to c that came meanwhile
// stays.
func (s *Store) AskPassword(ctx context.Context, org, id, token string, c *linkflow.Challenge, refused int) error {
	out, err := askPwdScript.Run(ctx, s.rdb, []string{s.k.link(id), s.k.linkLease(id), s.k.linkInput(id), s.k.linkCred(id)},
		token, encodeChallenge(c), c.ID, refused).Text()
	switch {
	case err != nil:
		return fmt.Errorf("ask for the password of %s again: %w", id, err)
	case out == "fenced":
		return linkflow.ErrFenced
	}
	return nil
}

// ReleaseRun gives the lease back so the link can be redelivered: after a
// transient failure (lastError says which; the attempt counts) or at shutdown
// (refund the attempt, which did not really happen).
func (s *Store) ReleaseRun(ctx context.Context, org, id, token, lastError string, refundAttempt bool) error {
	u := linkUpdate{release: true, set: []any{fStatus, string(linkflow.StatusRunning)}, del: append([]string{fChallenge}, answerMarks...)}
	if lastError != "" {
		u.set = append(u.set, fLastError, lastError)
	}
	if refundAttempt {
		u.attemptsDelta = -1
	}
	return s.updateLink(ctx, org, id, fence{token: token}, u)
}

// FinishRun ends a link the worker ran, fenced by its lease token. l carries
// the final status, completion time and result or error; conn, for a
// successful link, the connection it makes or renews.
func (s *Store) FinishRun(ctx context.Context, l *linkflow.Link, token string, conn *linkflow.ConnectionWrite) (*linkflow.Finished, error) {
	return s.finish(ctx, l, fence{token: token}, conn)
}

// replacePassword seals password as the link's, under the run's lease.
func (s *Store) replacePassword(ctx context.Context, id, token, password string) error {
	out, err := replacePwdScript.Run(ctx, s.rdb, []string{s.k.linkLease(id), s.k.linkCred(id), s.k.link(id)},
		token, s.keys.Seal([]byte(password), passwordAAD(id))).Text()
	switch {
	case err != nil:
		return fmt.Errorf("replace the password of %s: %w", id, err)
	case out == "fenced":
		return linkflow.ErrFenced
	case out == "gone":
		return fmt.Errorf("replace the password of %s: the link holds no password any more", id)
	}
	return nil
}
