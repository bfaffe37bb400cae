package api

import "net/http"

// The end user's endpoints (claim, session, input) are called from the
// hosted page, from customers' web pages and from app SDKs. They are
// authenticated by the claim code in the body or query, never by cookies or
// an API key, so any origin may call them: Access-Control-Allow-Origin is *
// and credentials are not allowed. The customer API (API keys) never gets
// CORS headers: an API key does not belong in a browser.

const (
	corsMethods = "GET, POST, OPTIONS"
	corsHeaders = "Content-Type, X-Request-Id"
	corsExpose  = "X-Request-Id, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
)

// cors adds the CORS response headers to an end-user endpoint.
func cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		setCORS(w.Header())
		h(w, r)
	}
}

func setCORS(hd http.Header) {
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Access-Control-Expose-Headers", corsExpose)
}

// preflight answers a CORS preflight of an end-user endpoint.
func preflight(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Access-Control-Allow-Methods", corsMethods)
	hd.Set("Access-Control-Allow-Headers", corsHeaders)
	hd.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}
