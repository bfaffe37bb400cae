package linkflow

import "time"

// Org is an organization: the tenant every link, connection and delivery
// belongs to.
type Org struct {
	ID        string
	Name      string
	CreatedAt time.Time
	// WebhookSecrets sign webhooks: the current secret first, then a previous
	// one still honoured during rotation.
	WebhookSecrets []string
	// PreviousSecretUntil is when the previous secret stops being used.
	PreviousSecretUntil time.Time
	// AppSchemes are the custom URL schemes ("myapp") the organization's
	// links may return to, besides https.
	AppSchemes []string
	// AllowedOrigins are the web pages ("https://app.example.com") that may
	// embed the organization's hosted pages with the web drop-in and hear
	// from them (origin.go), as ParseOrigin normalised them.
	AllowedOrigins []string
}

// OrgUpdate is a change to an organization's settings; fields left zero
// (nil) stay as they are.
type OrgUpdate struct {
	// WebhookSecret replaces the webhook secret: outright (dev start-up with
	// a chosen secret), or with PreviousSecretFor, rotated: the old secret
	// keeps signing too (a second signature) for that long, so receivers can
	// switch without missing a webhook.
	WebhookSecret     string
	PreviousSecretFor time.Duration
	// AppSchemes replaces the custom URL schemes its links may return to.
	AppSchemes *[]string
	// AllowedOrigins replaces the origins that may embed its hosted pages
	// (ParseOrigins checks them); an empty list allows none.
	AllowedOrigins *[]string
}

// User is a person who logs in with a password (the token endpoint's password
// grant) and acts for the organizations they belong to.
type User struct {
	Email        string
	PasswordHash string
	OrgIDs       []string
	Scopes       []string
	// Version moves on with every change of the user and every revocation
	// of its tokens; a token carries the version it was issued for.
	Version int64
}
