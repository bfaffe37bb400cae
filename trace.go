package linkflow

// MaxTraceEntries bounds a debug link's trace: the last ones are kept.
const MaxTraceEntries = 200

// Steps of a debug link's trace (TraceEntry.Step).
const (
	// TraceSession: a worker began a session attempt (DurationMs: how long
	// the link waited since it was claimed or last handed back).
	TraceSession = "session"
	// TraceLogin: the provider login (Outcome ok, challenge or failed).
	TraceLogin = "login"
	// TraceChallenge: waiting for the end user's answer (ChallengeType otp,
	// credentials, ...; Outcome answered, or why not).
	TraceChallenge = "challenge"
	// TraceAnswer: the provider checking an answer (Outcome ok, challenge,
	// wrong or failed).
	TraceAnswer = "answer"
	// TraceOperation: one operation (OperationIndex, Resource, Action).
	TraceOperation = "operation"
	// TraceRetry: a transient failure; the session runs again after
	// RetryInMs.
	TraceRetry = "retry"
	// TraceHandBack: the worker stopped (shutdown) or lost its lease; another
	// attempt goes on.
	TraceHandBack = "hand_back"
	// TraceFinish: the outcome was committed (Outcome the final status).
	TraceFinish = "finish"
)

// TraceEntry is one step of a debug link's session (a link created with
// debug: true): when, how long, which attempt, what came of it, the failure
// code and the provider's request ids. It never holds a secret, an
// operation's arguments, an answer or a provider's message: only names,
// times, counts and codes.
type TraceEntry struct {
	At                 int64       `json:"at"` // epoch ms when the step began
	Step               string      `json:"step"`
	Attempt            int         `json:"attempt"`
	DurationMs         int64       `json:"durationMs"`
	Outcome            string      `json:"outcome"`
	Code               FailureCode `json:"code,omitempty"`
	OperationIndex     *int        `json:"operationIndex,omitempty"`
	Resource           string      `json:"resource,omitempty"`
	Action             string      `json:"action,omitempty"`
	ChallengeType      string      `json:"challengeType,omitempty"`
	ProviderRequestIDs []string    `json:"providerRequestIds,omitempty"`
	RetryInMs          int64       `json:"retryInMs,omitempty"`
}
