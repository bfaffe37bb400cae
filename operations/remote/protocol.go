package remote

import (
	"encoding/json"
	"net/http"

	"github.com/linkflow/linkflow"

	"github.com/linkflow/linkflow/operations"
)

// ProtocolVersion is the version of the protocol this package speaks. It is
// sent in the Linkflow-Protocol header and the catalog.
const ProtocolVersion = 1

// HeaderProtocol names the header that carries ProtocolVersion.
const HeaderProtocol = "Linkflow-Protocol"

// The protocol's paths, relative to a provider's base URL.
const (
	PathCatalog       = "/catalog"
	PathLogin         = "/login"
	PathContinueLogin = "/continue-login"
	PathExecute       = "/execute"
	PathRefresh       = "/refresh"
	PathRevoke        = "/revoke"
	PathClose         = "/close"
)

// Codes the protocol adds to the operations error codes. Both describe the
// exchange, not the end user's account.
const (
	// CodeUnauthorized: the request did not carry the shared secret.
	CodeUnauthorized = "UNAUTHORIZED"
	// CodeNotSupported: the integration cannot refresh or revoke.
	CodeNotSupported = "NOT_SUPPORTED"
)

// Catalog is the answer to GET /catalog: what the provider offers.
type Catalog struct {
	ProtocolVersion int                  `json:"protocolVersion"`
	Integrations    []CatalogIntegration `json:"integrations"`
}

// CatalogIntegration is one integration of a catalog: its id, display name,
// resources and actions with their argument schemas, and which optional
// calls it supports.
type CatalogIntegration struct {
	operations.Integration
	Capabilities Capabilities `json:"capabilities"`
}

// Capabilities lists the optional calls an integration supports.
type Capabilities struct {
	Refresh bool `json:"refresh"`
	Revoke  bool `json:"revoke"`
}

// ExecuteResponse is the answer to POST /execute.
type ExecuteResponse struct {
	Result json.RawMessage `json:"result"`
}

// CredentialsRequest is the body of POST /refresh and POST /revoke.
type CredentialsRequest struct {
	Integration string                 `json:"integration"`
	Credentials operations.Credentials `json:"credentials"`
}

// CredentialsResponse is the answer to POST /refresh.
type CredentialsResponse struct {
	Credentials operations.Credentials `json:"credentials"`
}

// CloseRequest is the body of POST /close.
type CloseRequest struct {
	Integration string `json:"integration"`
	SessionID   string `json:"sessionId"`
}

// ErrorResponse is the body of every failed call.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody describes a failure: an operations error code (or one of this
// package's), a message, whether trying again may succeed, and when.
type ErrorBody struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	Transient    bool   `json:"transient"`
	RetryAfterMs int64  `json:"retryAfterMs,omitempty"`
}

// statusFor maps an error code to the HTTP status the handler answers with.
// Clients decide from the code, not the status; the status serves proxies,
// logs and people reading them.
func statusFor(code string) int {
	switch linkflow.FailureCode(code) {
	case linkflow.FailureInvalidCredentials, linkflow.FailureChallengeFailed, CodeUnauthorized:
		return http.StatusUnauthorized
	case linkflow.FailureAccountLocked:
		return http.StatusLocked
	case linkflow.FailureDeclined:
		return http.StatusPaymentRequired
	case linkflow.FailureRejected:
		return http.StatusUnprocessableEntity
	case linkflow.FailureRateLimited:
		return http.StatusTooManyRequests
	case linkflow.FailureProviderTimeout:
		return http.StatusGatewayTimeout
	case CodeNotSupported:
		return http.StatusNotImplemented
	default:
		return http.StatusServiceUnavailable
	}
}

// knownCodes are the operations codes a client passes through as they are.
var knownCodes = map[linkflow.FailureCode]bool{
	linkflow.FailureInvalidCredentials: true, linkflow.FailureAccountLocked: true,
	linkflow.FailureChallengeFailed: true, linkflow.FailureDeclined: true, linkflow.FailureRejected: true,
	linkflow.FailureProviderUnavailable: true, linkflow.FailureProviderTimeout: true, linkflow.FailureRateLimited: true,
}
