package store

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linkflow/linkflow"
	"github.com/linkflow/linkflow/outbox"
)

// CreateLink stores a new pending link with its index entries in one step.
func (s *Store) CreateLink(ctx context.Context, in linkflow.NewLink) (*linkflow.Created, error) {
	now := s.now()
	// A link lives in a shard of its own, at random; one created with an
	// Idempotency-Key lives in the shard of its key's record, so that the
	// record and the link are made in one step.
	shard := randomShard()
	if in.IdempotencyKey != "" {
		shard = shardFor(in.OrgID, in.IdempotencyKey)
	}
	l := &linkflow.Link{
		ID:                    newLinkID(shard),
		OrgID:                 in.OrgID,
		IntegrationID:         in.IntegrationID,
		Status:                linkflow.StatusPending,
		WebhookURL:            in.WebhookURL,
		ReturnURL:             in.ReturnURL,
		ExternalUserID:        in.ExternalUserID,
		Description:           in.Description,
		RequiredUsername:      in.RequiredUsername,
		RequestedConnectionID: in.ConnectionID,
		Debug:                 in.Debug,
		OwnerUserID:           in.OwnerUserID,
		OwnerEmail:            in.OwnerEmail,
		Consent:               in.Consent,
		Verifier:              randomToken("", 16),
		ClaimCode:             NewClaimCode(),
		CreatedAt:             time.UnixMilli(now.UnixMilli()),
		ExpiresAt:             time.UnixMilli(now.Add(in.ExpiresIn).UnixMilli()),
	}
	var args []json.RawMessage
	hasArgs := false
	for _, op := range in.Operations {
		l.Operations = append(l.Operations, linkflow.Operation{Resource: op.Resource, Action: op.Action})
		args = append(args, op.Arguments)
		hasArgs = hasArgs || len(op.Arguments) > 0
	}
	opsJSON, err := json.Marshal(l.Operations)
	if err != nil {
		return nil, err
	}
	var resp []byte
	if in.Response != nil {
		if resp, err = in.Response(l); err != nil {
			return nil, err
		}
	}
	fields := []any{
		fID, l.ID, fOrg, l.OrgID, fIntegration, l.IntegrationID, fOps, string(opsJSON),
		fStatus, string(l.Status), fCreatedAt, ms(l.CreatedAt), fExpiresAt, ms(l.ExpiresAt),
		fVerifier, l.Verifier, fClaimHash, hashHex(l.ClaimCode),
		fClaimCode, s.keys.Seal([]byte(l.ClaimCode), claimCodeAAD(l.ID)),
		// The message a claim will record in the outbox, built now that the
		// integration is at hand; the claim's script copies it.
		fClaimMessage, encodeMessage(outbox.ClaimedMessage(l.OrgID, l.ID, l.IntegrationID)),
		fAttempts, 0, fVersion, 1,
	}
	if hasArgs {
		argsJSON, err := json.Marshal(args)
		if err != nil {
			return nil, err
		}
		fields = append(fields, fArgs, s.keys.Seal(argsJSON, argsAAD(l.ID)))
	}
	for _, kv := range [][2]string{
		{fWebhookURL, l.WebhookURL}, {fReturnURL, l.ReturnURL}, {fExternalUserID, l.ExternalUserID},
		{fDescription, l.Description}, {fRequiredUsername, l.RequiredUsername}, {fReqConnection, l.RequestedConnectionID},
		{fOwnerUserID, l.OwnerUserID}, {fOwnerEmail, l.OwnerEmail},
	} {
		if kv[1] != "" {
			fields = append(fields, kv[0], kv[1])
		}
	}
	if l.Debug {
		fields = append(fields, fDebug, "1")
	}
	if len(l.Consent) > 0 {
		b, err := json.Marshal(l.Consent)
		if err != nil {
			return nil, err
		}
		fields = append(fields, fConsent, string(b))
	}
	// The record keeps the response sealed: it holds the claim code.
	idem, reqHash, sealedResp, aad := s.k.idempotency(shard, in.OrgID, "-"), "", "", ""
	if in.IdempotencyKey != "" {
		keyHash := hashHex(in.IdempotencyKey)
		idem, reqHash, aad = s.k.idempotency(shard, in.OrgID, keyHash), in.RequestHash, idemAAD(in.OrgID, keyHash)
		sealedResp = s.keys.Seal(resp, aad)
	}
	userIdx, hasUser := s.k.linksByUser(shard, in.OrgID, in.ExternalUserID), "0"
	if in.ExternalUserID != "" {
		hasUser = "1"
	}
	keys := []string{s.k.link(l.ID), s.k.linksIndex(shard, in.OrgID), s.k.linksByIntegration(shard, in.OrgID, in.IntegrationID),
		userIdx, s.k.expiring(shard), idem, s.k.retention(shard)}
	// The latest the link can be gone: its expiry, the session a late claim
	// still gets, and the retention after it finishes.
	lifetime := in.ExpiresIn + s.cfg.MinSessionTime + s.cfg.Retention
	argv := append([]any{reqHash, sealedResp, s.cfg.IdempotencyTTL.Milliseconds(), l.ID, ms(l.ExpiresAt), hasUser,
		ms(now.Add(lifetime)), retentionMember(l.OrgID, l.ID, l.IntegrationID, l.ExternalUserID), lifetime.Milliseconds()}, fields...)
	out, err := s.runStrings(ctx, createLinkScript, "create link", keys, argv...)
	if err != nil {
		return nil, err
	}
	switch out[0] {
	case "created":
		return &linkflow.Created{Link: l, Response: resp}, nil
	case "replay":
		return s.replay(out[1], aad)
	case "conflict":
		return nil, linkflow.ErrIdempotencyConflict
	default:
		return nil, fmt.Errorf("create link: unexpected reply %q", out[0])
	}
}

// Replay returns the first response of a create with an organization's
// Idempotency-Key: nil when the key was not used (or its record expired),
// linkflow.ErrIdempotencyConflict when it was used with another request.
// The API asks when a request with a key does not validate, so a retry gets
// the first answer even when what validation reads (the organization's
// settings, the integrations) changed since; CreateLink replays in its own
// step otherwise.
func (s *Store) Replay(ctx context.Context, org, key, requestHash string) (*linkflow.Created, error) {
	if !validID(org) || key == "" {
		return nil, nil
	}
	keyHash := hashHex(key)
	prev, err := s.rdb.HMGet(ctx, s.k.idempotency(shardFor(org, key), org, keyHash), "hash", "response").Result()
	if err != nil {
		return nil, fmt.Errorf("read the idempotency record: %w", err)
	}
	hash, _ := prev[0].(string)
	resp, _ := prev[1].(string)
	switch {
	case hash == "":
		return nil, nil
	case hash != requestHash:
		return nil, linkflow.ErrIdempotencyConflict
	}
	return s.replay(resp, idemAAD(org, keyHash))
}

// replay opens a stored response.
func (s *Store) replay(stored, aad string) (*linkflow.Created, error) {
	if !strings.HasPrefix(stored, sealedPrefix) {
		// Stored by a release that kept it as it was; such records are
		// gone a day (IdempotencyTTL) after the upgrade.
		return &linkflow.Created{Response: []byte(stored), Replayed: true}, nil
	}
	resp, err := s.keys.Open(stored, aad)
	if err != nil {
		return nil, fmt.Errorf("create link: the idempotency record: %w", err)
	}
	return &linkflow.Created{Response: resp, Replayed: true}, nil
}

// Link returns an organization's link without its claim code: the steps
// that do not show the code need no key for it. Another organization's link
// is linkflow.ErrNotFound.
func (s *Store) Link(ctx context.Context, org, id string) (*linkflow.Link, error) {
	l, _, err := s.readLink(ctx, org, id)
	return l, err
}

// LinkWithCode is Link with the claim code opened while the link is
// pending, for a caller allowed to see it. A code sealed with a key this
// process is not given (a key roll under way) is an error wrapping
// linkflow.ErrUnknownKey.
func (s *Store) LinkWithCode(ctx context.Context, org, id string) (*linkflow.Link, error) {
	l, m, err := s.readLink(ctx, org, id)
	if err != nil {
		return nil, err
	}
	if err := s.openClaimCode(l, m); err != nil {
		return nil, err
	}
	return l, nil
}

// readLink reads an organization's link and its hash.
func (s *Store) readLink(ctx context.Context, org, id string) (*linkflow.Link, map[string]string, error) {
	if !validID(org) || !validID(id) {
		return nil, nil, linkflow.ErrNotFound
	}
	m, err := s.rdb.HGetAll(ctx, s.k.link(id)).Result()
	if err != nil {
		return nil, nil, err
	}
	l, err := linkOf(m)
	if err != nil {
		return nil, nil, err
	}
	if l.OrgID != org {
		return nil, nil, linkflow.ErrNotFound
	}
	return l, m, nil
}

// linkOf decodes a link's hash without its claim code, for the steps that
// do not show it (a process without the key that sealed it still cancels,
// expires and fails the link). An empty hash is linkflow.ErrNotFound.
func linkOf(m map[string]string) (*linkflow.Link, error) {
	if len(m) == 0 || m[fID] == "" {
		return nil, linkflow.ErrNotFound
	}
	return decodeLink(m)
}

// openClaimCode opens the link's claim code while the link is pending (and
// not past its expiry, when it is shown no more).
func (s *Store) openClaimCode(l *linkflow.Link, m map[string]string) error {
	if sealed := m[fClaimCode]; sealed != "" && l.EffectiveStatus(s.now()) == linkflow.StatusPending {
		code, err := s.keys.Open(sealed, claimCodeAAD(l.ID))
		if err != nil {
			return fmt.Errorf("open claim code of %s: %w", l.ID, err)
		}
		l.ClaimCode = string(code)
	}
	return nil
}

// LinkByCode returns a link for the end user, who proves access with the
// claim code. A wrong code and an unknown link are the same linkflow.ErrNotFound. A
// wrong code counts against the link's guess limit, as on a claim: past it,
// wrong codes answer TOO_MANY_REQUESTS for a while (the right one still
// passes, so nobody can lock the end user out).
func (s *Store) LinkByCode(ctx context.Context, linkID, code string) (*linkflow.Link, error) {
	if !validID(linkID) {
		return nil, linkflow.ErrNotFound
	}
	m, err := s.rdb.HGetAll(ctx, s.k.link(linkID)).Result()
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, linkflow.ErrNotFound
	}
	// The claim code's hash stays after the link finishes, so the end user's
	// page can still show the outcome.
	if code == "" || subtle.ConstantTimeCompare([]byte(m[fClaimHash]), []byte(hashHex(code))) != 1 {
		return nil, s.countBadCode(ctx, linkID)
	}
	l, err := linkOf(m)
	if err != nil {
		return nil, err
	}
	// The caller holds the code: it need not be opened (nor the key that
	// sealed it be given to this process).
	if m[fClaimCode] != "" && l.EffectiveStatus(s.now()) == linkflow.StatusPending {
		l.ClaimCode = code
	}
	return l, nil
}

// countBadCode counts a wrong code for a link and returns the error to
// answer: linkflow.ErrNotFound, or TOO_MANY_REQUESTS once the link refuses guesses.
func (s *Store) countBadCode(ctx context.Context, linkID string) error {
	out, err := badCodeScript.Run(ctx, s.rdb, []string{s.k.linkBadCode(linkID)},
		s.cfg.ClaimGuessLimit, s.cfg.ClaimGuessWindow.Milliseconds()).StringSlice()
	if err != nil {
		return fmt.Errorf("count a wrong code for %s: %w", linkID, err)
	}
	if len(out) == 2 && out[0] == "locked" {
		return errGuessesLocked(atoi(out[1]))
	}
	return linkflow.ErrNotFound
}

// errGuessesLocked is what a wrong code gets while its link refuses guesses
// for another pttl milliseconds.
func errGuessesLocked(pttl int64) error {
	return &linkflow.LockedError{RetryAfter: time.Duration(pttl) * time.Millisecond}
}

// ClaimLink claims a pending link with the end user's credentials. The
// password is sealed and kept only until the link's deadline.
func (s *Store) ClaimLink(ctx context.Context, linkID, code, username, password string) (*linkflow.Claim, error) {
	if !validID(linkID) {
		return nil, linkflow.ErrNotFound
	}
	now := s.now()
	shard := shardOf(linkID)
	keys := []string{s.k.link(linkID), s.k.linkCred(linkID), s.k.outbox(shard), s.k.outboxMessages(shard),
		s.k.expiring(shard), s.k.linkBadCode(linkID), s.k.retention(shard)}
	out, err := s.runStrings(ctx, claimLinkScript, "claim link "+linkID, keys, hashHex(code), ms(now),
		s.keys.Seal([]byte(password), passwordAAD(linkID)), username,
		s.cfg.MinSessionTime.Milliseconds(), s.cfg.ClaimGuessLimit, s.cfg.ClaimGuessWindow.Milliseconds(), linkID,
		outbox.ClaimedID(linkID), OverdueGrace.Milliseconds())
	if err != nil {
		return nil, err
	}
	switch out[0] {
	case "claimed":
		msg, ok := decodeMessage(shard, outbox.ClaimedID(linkID), out[3])
		if !ok {
			return nil, fmt.Errorf("claim link %s: no claimed message", linkID)
		}
		return &linkflow.Claim{OrgID: out[4], IntegrationID: out[1], ExpiresAt: linkflow.FromMillis(atoi(out[2])), Message: msg}, nil
	case "not_found":
		return nil, linkflow.ErrNotFound
	case "locked":
		return nil, errGuessesLocked(atoi(out[1]))
	case "expired":
		return nil, &linkflow.StateError{Action: linkflow.ActionClaim, Status: linkflow.StatusExpired}
	case "conflict":
		return nil, &linkflow.StateError{Action: linkflow.ActionClaim, Status: linkflow.Status(out[1])}
	case "username_mismatch":
		return nil, linkflow.ErrUsernameMismatch
	}
	return nil, fmt.Errorf("claim link %s: unexpected reply %q", linkID, out[0])
}

// CancelLink cancels a link. A pending or claimed link ends as canceled; a
// running one is flagged and the worker fails it with CANCELED before its next
// operation; a finished one is a conflict.
func (s *Store) CancelLink(ctx context.Context, org, id string) (*linkflow.CancelResult, error) {
	for range 5 {
		l, err := s.Link(ctx, org, id)
		if err != nil {
			return nil, err
		}
		now := s.now()
		switch l.EffectiveStatus(now) {
		case linkflow.StatusPending, linkflow.StatusClaimed:
			l.Status = linkflow.StatusCanceled
			l.CompletedAt = time.UnixMilli(now.UnixMilli())
			fin, err := s.finish(ctx, l, fence{version: l.Version}, nil)
			var ended *linkflow.StateError
			switch {
			case errors.Is(err, linkflow.ErrFenced):
				continue
			case errors.As(err, &ended):
				ended.Action = linkflow.ActionCancel
				return nil, ended
			case err != nil:
				return nil, err
			}
			return &linkflow.CancelResult{Link: l, Canceled: true, Finished: fin}, nil
		case linkflow.StatusRunning, linkflow.StatusAwaitingInput:
			if l.CancelRequested {
				return &linkflow.CancelResult{Link: l, Requested: true}, nil
			}
			err := s.updateLink(ctx, org, id, fence{version: l.Version}, linkUpdate{set: []any{fCancel, "1"}})
			var ended *linkflow.StateError
			switch {
			case errors.Is(err, linkflow.ErrFenced):
				continue
			case errors.As(err, &ended):
				// It ended, and reads as running only while its
				// connection's write waits.
				ended.Action = linkflow.ActionCancel
				return nil, ended
			case err != nil:
				return nil, err
			}
			l.CancelRequested = true
			return &linkflow.CancelResult{Link: l, Requested: true}, nil
		default:
			return nil, &linkflow.StateError{Action: linkflow.ActionCancel, Status: l.EffectiveStatus(now)}
		}
	}
	return nil, fmt.Errorf("cancel link %s: %w", id, linkflow.ErrFenced)
}

// SubmitInput stores the end user's answer to the link's current challenge,
// sealed, for the worker to take. It checks the claim code and challenge id;
// a second answer to a challenge before the worker asks again is
// linkflow.ErrAlreadyAnswered, one past the challenge's expiry
// linkflow.ErrChallengeExpired.
func (s *Store) SubmitInput(ctx context.Context, linkID, code, challengeID, response string) (*linkflow.Link, error) {
	l, err := s.LinkByCode(ctx, linkID, code)
	if err != nil {
		return nil, err
	}
	if l.Status != linkflow.StatusAwaitingInput || l.Challenge == nil {
		return nil, &linkflow.StateError{Action: linkflow.ActionInput, Status: l.Status}
	}
	if l.Challenge.ID != challengeID {
		return nil, linkflow.ErrWrongChallenge
	}
	// submit_input.lua judges the challenge's expiry in the same step as
	// its id, on the challenge as it is then.
	sealed := s.keys.Seal([]byte(challengeID+"\x00"+response), inputAAD(linkID))
	out, err := s.runStrings(ctx, submitInputScript, "answer the challenge of "+linkID,
		[]string{s.k.link(linkID), s.k.linkInput(linkID)}, challengeID, sealed, ms(s.now()), answerGrace.Milliseconds())
	if err != nil {
		return nil, err
	}
	switch out[0] {
	case "ok":
		return l, nil
	case "answered":
		return nil, linkflow.ErrAlreadyAnswered
	case "expired":
		return nil, linkflow.ErrChallengeExpired
	case "wrong":
		return nil, linkflow.ErrWrongChallenge
	case "state":
		return nil, &linkflow.StateError{Action: linkflow.ActionInput, Status: linkflow.Status(out[1])}
	}
	return nil, fmt.Errorf("answer the challenge of %s: unexpected reply %q", linkID, out[0])
}

// answerGrace is how long an answer is kept past its challenge's expiry.
const answerGrace = time.Minute

var submitInputScript = script("submit_input")

var takeInputScript = script("take_input")

// TakeInput reads the pending answer to a link's challenge, fenced by the
// lease token (linkflow.ErrFenced when another holds the link). It returns
// "" and no error when there is none. The answer stays until SetChallenge,
// AskPassword, ReleaseRun or the link's end drops it, so a read whose reply
// was lost can be repeated.
// closing, when set, is the challenge the session stops waiting for: an
// answer to it that comes after this read is refused as expired (until a
// SetChallenge or AskPassword asks again).
func (s *Store) TakeInput(ctx context.Context, linkID, token, closing string) (challengeID, response string, err error) {
	out, err := s.runStrings(ctx, takeInputScript, "take the answer of "+linkID,
		[]string{s.k.linkInput(linkID), s.k.linkLease(linkID), s.k.link(linkID)}, token, closing)
	if err != nil {
		return "", "", err
	}
	switch out[0] {
	case "none":
		return "", "", nil
	case "fenced":
		return "", "", linkflow.ErrFenced
	case "ok":
	default:
		return "", "", fmt.Errorf("%w: take the answer of %s: unexpected reply %q", linkflow.ErrUnreadable, linkID, out[0])
	}
	pt, err := s.keys.Open(out[1], inputAAD(linkID))
	if err != nil {
		return "", "", fmt.Errorf("%w: the answer to %s: %v", linkflow.ErrUnreadable, linkID, err)
	}
	id, resp, _ := cutNUL(string(pt))
	return id, resp, nil
}

func cutNUL(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
