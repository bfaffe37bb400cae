package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Grant types of TokenRequest.
const (
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
)

// TokenRequest is the form of POST /v1/auth/token.
//
// client_credentials exchanges an API key (ClientSecret) for a short-lived
// token; ClientID, when set, must be the key's id or its organization's.
// password logs in an organization user (Username is the email); ClientID
// picks one of the user's organizations. Scope (space-separated) narrows
// the token.
type TokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// Token is an access token (lft_...). Use it as an API key:
// client.WithAPIKey(tok.AccessToken).
type Token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	// ExpiresIn is in seconds.
	ExpiresIn int64  `json:"expires_in"`
	Scope     string `json:"scope"`
	// Orgs are the organizations of the key or user, the one the token acts
	// for first.
	Orgs []TokenOrg `json:"orgs"`
}

// TokenOrg is an organization a token's key or user belongs to.
type TokenOrg struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// IssueToken exchanges an API key or a user's password for an access token
// (POST /v1/auth/token). It never sends Config.APIKey.
func (c *Client) IssueToken(ctx context.Context, req TokenRequest) (*Token, error) {
	form, err := formOf(req)
	if err != nil {
		return nil, err
	}
	r := &request{method: http.MethodPost, path: "/v1/auth/token", body: []byte(form.Encode()),
		contentType: "application/x-www-form-urlencoded"}
	var out Token
	if _, err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// formOf encodes a struct of strings as a form, named by its json tags (so
// the drift test checks the form's field names like any body's).
func formOf(v any) (url.Values, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("client: encode form: %w", err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("client: encode form: %w", err)
	}
	form := url.Values{}
	for k, v := range m {
		form.Set(k, v)
	}
	return form, nil
}
