package store

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/linkflow/linkflow"
)

// Link hash fields. A link is one Redis hash; these are its field names.
const (
	fID               = "id"
	fOrg              = "org"
	fIntegration      = "integration"
	fOps              = "ops"
	fArgs             = "args"
	fWebhookURL       = "webhookUrl"
	fReturnURL        = "returnUrl"
	fExternalUserID   = "externalUserId"
	fDescription      = "description"
	fRequiredUsername = "requiredUsername"
	fDebug            = "debug"
	fOwnerUserID      = "ownerUserId"
	fOwnerEmail       = "ownerEmail"
	fConsent          = "consent"
	fVerifier         = "verifier"
	fClaimHash        = "claimHash"
	fClaimCode        = "claimCode"
	fReqConnection    = "reqConnectionId"
	fStatus           = "status"
	fCreatedAt        = "createdAt"
	fExpiresAt        = "expiresAt"
	fClaimedAt        = "claimedAt"
	fStartedAt        = "startedAt"
	fCompletedAt      = "completedAt"
	fUsername         = "username"
	fConnectionID     = "connectionId"
	fResult           = "result"
	fError            = "error"
	fChallenge        = "challenge"
	// fAnswered is the challenge an answer was submitted to, until the
	// worker asks again or moves on (submit_input.lua).
	fAnswered = "answered"
	// fClosed is the challenge the session closed to answers with its last
	// read at the challenge's expiry (take_input.lua), until it asks again.
	fClosed       = "closed"
	fCancel       = "cancel"
	fAttempts     = "attempts"
	fVersion      = "version"
	fLastError    = "lastError"
	fClaimMessage = "claimMessage"
	// fConnIntent holds a succeeded link's connection write until it is
	// applied (finish.go); the link reads as running meanwhile.
	fConnIntent = "connIntent"
	// fPasswordsRefused counts the passwords the provider refused in a row,
	// the link's stored one the last, until one works (replace_password.lua
	// drops it): a later session attempt asks for the password again
	// rather than log in with one refused already.
	fPasswordsRefused = "passwordsRefused"
)

// answerMarks are the fields that say what became of the answers to the
// link's current challenge: gone when it is asked again, handed back or
// ended. The scripts that do the same (ask_password.lua, finish_link.lua)
// name them too.
var answerMarks = []string{fAnswered, fClosed}

func argsAAD(linkID string) string      { return "link:" + linkID + ":args" }
func passwordAAD(linkID string) string  { return "link:" + linkID + ":password" }
func claimCodeAAD(linkID string) string { return "link:" + linkID + ":claimCode" }
func inputAAD(linkID string) string     { return "link:" + linkID + ":input" }

// idemAAD names an idempotency record's stored response (it holds the
// claim code): the organization and the hash of the key.
func idemAAD(org, keyHash string) string { return "idem:" + org + ":" + keyHash }

// challengeRecord is how a challenge is kept in the link hash.
type challengeRecord struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	Message      string `json:"message"`
	ExpiresAt    int64  `json:"expiresAt"`
	AttemptsLeft int    `json:"attemptsLeft"`
	LastError    string `json:"lastError,omitempty"`
}

func encodeChallenge(c *linkflow.Challenge) string {
	b, _ := json.Marshal(challengeRecord{ID: c.ID, Type: c.Type, Message: c.Message,
		ExpiresAt: ms(c.ExpiresAt), AttemptsLeft: c.AttemptsLeft, LastError: c.LastError})
	return string(b)
}

// decodeLink turns a link hash into a Link. It does not open sealed fields.
func decodeLink(m map[string]string) (*linkflow.Link, error) {
	l := &linkflow.Link{
		ID:                    m[fID],
		OrgID:                 m[fOrg],
		IntegrationID:         m[fIntegration],
		Status:                linkflow.Status(m[fStatus]),
		WebhookURL:            m[fWebhookURL],
		ReturnURL:             m[fReturnURL],
		ExternalUserID:        m[fExternalUserID],
		Description:           m[fDescription],
		RequiredUsername:      m[fRequiredUsername],
		Debug:                 m[fDebug] == "1",
		OwnerUserID:           m[fOwnerUserID],
		OwnerEmail:            m[fOwnerEmail],
		Verifier:              m[fVerifier],
		RequestedConnectionID: m[fReqConnection],
		Username:              m[fUsername],
		ConnectionID:          m[fConnectionID],
		CreatedAt:             linkflow.FromMillis(atoi(m[fCreatedAt])),
		ExpiresAt:             linkflow.FromMillis(atoi(m[fExpiresAt])),
		ClaimedAt:             linkflow.FromMillis(atoi(m[fClaimedAt])),
		StartedAt:             linkflow.FromMillis(atoi(m[fStartedAt])),
		CompletedAt:           linkflow.FromMillis(atoi(m[fCompletedAt])),
		CancelRequested:       m[fCancel] == "1",
		Attempts:              int(atoi(m[fAttempts])),
		Version:               atoi(m[fVersion]),
	}
	if c := m[fConsent]; c != "" {
		if err := json.Unmarshal([]byte(c), &l.Consent); err != nil {
			return nil, err
		}
	}
	if ops := m[fOps]; ops != "" {
		if err := json.Unmarshal([]byte(ops), &l.Operations); err != nil {
			return nil, err
		}
	}
	if m[fConnIntent] != "" {
		// Ended, but its connection is not written yet: it reads as still
		// running, so nobody sees a connection id before the connection.
		l.Status, l.ConnectionID, l.CompletedAt = linkflow.StatusRunning, "", time.Time{}
		return l, nil
	}
	if r := m[fResult]; r != "" {
		l.Result = json.RawMessage(r)
	}
	if e := m[fError]; e != "" {
		l.Error = &linkflow.LinkError{}
		if err := json.Unmarshal([]byte(e), l.Error); err != nil {
			return nil, err
		}
	}
	if c := m[fChallenge]; c != "" {
		var rec challengeRecord
		if err := json.Unmarshal([]byte(c), &rec); err != nil {
			return nil, err
		}
		l.Challenge = &linkflow.Challenge{ID: rec.ID, Type: rec.Type, Message: rec.Message,
			ExpiresAt: linkflow.FromMillis(rec.ExpiresAt), AttemptsLeft: rec.AttemptsLeft, LastError: rec.LastError}
	}
	return l, nil
}

// finalFields are the fields a finished link's hash gets.
func finalFields(l *linkflow.Link) []any {
	f := []any{fStatus, string(l.Status), fCompletedAt, ms(l.CompletedAt)}
	if len(l.Result) > 0 {
		f = append(f, fResult, []byte(l.Result)) // written as it is, not copied
	}
	if l.Error != nil {
		b, _ := json.Marshal(l.Error)
		f = append(f, fError, string(b))
	}
	if l.ConnectionID != "" {
		f = append(f, fConnectionID, l.ConnectionID)
	}
	if !l.StartedAt.IsZero() {
		f = append(f, fStartedAt, ms(l.StartedAt))
	}
	return f
}

// atoi reads a number field; an absent (empty) field is 0, without the
// error strconv would allocate for it.
func atoi(s string) int64 {
	if s == "" {
		return 0
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
