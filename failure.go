package linkflow

// FailureCode says why a link failed: the error.code of a failed link and of
// its link.failed webhook. Providers fail with the same codes
// (operations.Error), so there is one list.
type FailureCode string

// Why a link failed. The first group comes from the provider and is final;
// the second from the provider too, but is transient: the worker runs the
// session again later; the rest are linkflow's own.
const (
	FailureInvalidCredentials FailureCode = "INVALID_CREDENTIALS"
	FailureAccountLocked      FailureCode = "ACCOUNT_LOCKED"
	FailureChallengeFailed    FailureCode = "CHALLENGE_FAILED"
	FailureDeclined           FailureCode = "DECLINED"
	FailureRejected           FailureCode = "REJECTED"

	FailureProviderUnavailable FailureCode = "PROVIDER_UNAVAILABLE"
	FailureProviderTimeout     FailureCode = "PROVIDER_TIMEOUT"
	FailureRateLimited         FailureCode = "RATE_LIMITED"

	FailureChallengeTimeout  FailureCode = "CHALLENGE_TIMEOUT"
	FailureAttemptsExhausted FailureCode = "ATTEMPTS_EXHAUSTED"
	FailureCanceled          FailureCode = "CANCELED"
	FailureLinkExpired       FailureCode = "LINK_EXPIRED"
	FailureUnprocessableLink FailureCode = "UNPROCESSABLE_LINK"
	FailureResultTooLarge    FailureCode = "RESULT_TOO_LARGE"
	FailureInternal          FailureCode = "INTERNAL_ERROR"
)

// Transient reports whether a provider failing with c may succeed when the
// session is tried again.
func (c FailureCode) Transient() bool {
	switch c {
	case FailureProviderUnavailable, FailureProviderTimeout, FailureRateLimited:
		return true
	}
	return false
}
