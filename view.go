package linkflow

import (
	"encoding/json"
	"net/url"
	"time"
)

// LinkView is the JSON shape of a link as GET /v1/links/{linkId} returns it and
// as the data of a link.* webhook event.
type LinkView struct {
	LinkID           string          `json:"linkId"`
	IntegrationID    string          `json:"integrationId"`
	Operations       []Operation     `json:"operations"`
	Status           Status          `json:"status"`
	ClaimCode        string          `json:"claimCode,omitempty"`
	AppClipURL       string          `json:"appClipUrl,omitempty"`
	WebhookURL       string          `json:"webhookUrl,omitempty"`
	ReturnURL        string          `json:"returnUrl,omitempty"`
	Verifier         string          `json:"verifier,omitempty"`
	ExternalUserID   string          `json:"externalUserId,omitempty"`
	Description      string          `json:"description,omitempty"`
	RequiredUsername string          `json:"requiredUsername,omitempty"`
	Debug            bool            `json:"debug"`
	OwnerUserID      string          `json:"ownerUserId,omitempty"`
	OwnerEmail       string          `json:"ownerEmail,omitempty"`
	CreatedAt        *int64          `json:"createdAt"`
	ExpiresAt        *int64          `json:"expiresAt"`
	ClaimedAt        *int64          `json:"claimedAt"`
	StartedAt        *int64          `json:"startedAt"`
	CompletedAt      *int64          `json:"completedAt"`
	Username         *string         `json:"username"`
	ConnectionID     *string         `json:"connectionId"`
	CancelRequested  bool            `json:"cancelRequested,omitempty"`
	Result           json.RawMessage `json:"result,omitempty"`
	ResultOmitted    bool            `json:"resultOmitted,omitempty"`
	Error            *LinkError      `json:"error,omitempty"`
}

// View builds the public view of l at now. The claim code and app clip URL are
// only shown while the link is open.
func (l *Link) View(publicURL string, now time.Time) LinkView {
	v := LinkView{
		LinkID:           l.ID,
		IntegrationID:    l.IntegrationID,
		Operations:       l.Operations,
		Status:           l.EffectiveStatus(now),
		WebhookURL:       l.WebhookURL,
		Verifier:         l.Verifier,
		ExternalUserID:   l.ExternalUserID,
		Description:      l.Description,
		RequiredUsername: l.RequiredUsername,
		Debug:            l.Debug,
		OwnerUserID:      l.OwnerUserID,
		OwnerEmail:       l.OwnerEmail,
		CreatedAt:        Millis(l.CreatedAt),
		ExpiresAt:        Millis(l.ExpiresAt),
		ClaimedAt:        Millis(l.ClaimedAt),
		StartedAt:        Millis(l.StartedAt),
		CompletedAt:      Millis(l.CompletedAt),
		CancelRequested:  l.CancelRequested && !l.Status.Terminal(),
		Error:            l.Error,
	}
	if v.Operations == nil {
		v.Operations = []Operation{}
	}
	v.ReturnURL = l.ReturnURLWith(url.Values{"linkId": {l.ID}})
	if l.Username != "" {
		v.Username = &l.Username
	}
	if l.ConnectionID != "" {
		v.ConnectionID = &l.ConnectionID
	}
	if v.Status == StatusPending && l.ClaimCode != "" {
		v.ClaimCode = l.ClaimCode
		v.AppClipURL = AppClipURL(publicURL, l.ID, l.ClaimCode)
	}
	if v.Status == StatusExpired && v.CompletedAt == nil {
		v.CompletedAt = Millis(l.ExpiresAt)
	}
	if l.Status == StatusSucceeded {
		v.Result = l.Result
	}
	return v
}
