package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/linkflow/linkflow"
)

// createFields are the fields POST /v1/links accepts; anything else is an
// error, so a typo never silently does nothing.
var createFields = []string{"integrationId", "operations", "webhookUrl", "returnUrl", "externalUserId",
	"description", "requiredUsername", "connectionId", "debug", "expiresIn"}

var opFields = []string{"resource", "action", "arguments"}

// schemeRE is RFC 3986's scheme syntax.
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// parseCreate validates a create body straight into the store's input and
// returns every problem at once; an error is one of reading what it checks
// against (the connection a link renews).
func (s *Server) parseCreate(ctx context.Context, org string, body []byte) (*linkflow.NewLink, []linkflow.Issue, error) {
	var issues []linkflow.Issue
	add := func(path, msg string, args ...any) {
		issues = append(issues, linkflow.Issue{Path: path, Message: fmt.Sprintf(msg, args...)})
	}
	m, ok := decodeObject(body)
	if !ok {
		add("", "the body must be a JSON object")
		return nil, issues, nil
	}
	issues = append(issues, unknownFields(m, "", createFields...)...)
	req := &linkflow.NewLink{OrgID: org}
	str := func(name string, required bool, maxLen int) string {
		raw, present := m[name]
		if !present || isNull(raw) {
			if required {
				add(name, "is required")
			}
			return ""
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			add(name, "must be a string")
			return ""
		}
		if required && strings.TrimSpace(v) == "" {
			add(name, "must not be empty")
			return ""
		}
		if tooLong(v, maxLen) {
			add(name, "must be at most %d characters", maxLen)
		}
		return v
	}
	req.IntegrationID = str("integrationId", true, 100)
	req.WebhookURL = str("webhookUrl", false, 2048)
	req.ReturnURL = str("returnUrl", false, 2048)
	req.ExternalUserID = str("externalUserId", false, 255)
	req.Description = str("description", false, 1000)
	req.RequiredUsername = str("requiredUsername", false, 255)
	req.ConnectionID = str("connectionId", false, 128)

	if req.WebhookURL != "" {
		if u, err := url.Parse(req.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			add("webhookUrl", "must be a valid absolute http(s) URL")
		}
	}
	if req.ReturnURL != "" {
		schemes := func() ([]string, error) {
			o, err := s.cfg.Store.Org(ctx, org)
			if err != nil {
				return nil, fmt.Errorf("read the app schemes of %s: %w", org, err)
			}
			return o.AppSchemes, nil
		}
		msg, err := s.checkReturnURL(req.ReturnURL, schemes)
		if err != nil {
			// Not the caller's mistake (Redis, or a key roll): 503, not 400.
			return nil, nil, err
		}
		if msg != "" {
			add("returnUrl", "%s", msg)
		}
	}
	if raw, ok := m["debug"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &req.Debug); err != nil {
			add("debug", "must be a boolean")
		}
	}
	req.ExpiresIn = s.cfg.DefaultExpiry
	if raw, ok := m["expiresIn"]; ok && !isNull(raw) {
		var n json.Number
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		// A json.Number also decodes from a JSON string ("60"): only a bare
		// number is an integer here.
		if err := dec.Decode(&n); err != nil || bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) {
			add("expiresIn", "must be a positive integer of seconds")
		} else if secs, err := n.Int64(); err != nil || secs <= 0 {
			add("expiresIn", "must be a positive integer of seconds")
		} else if secs > int64(s.cfg.MaxExpiry/time.Second) { // compared in seconds: secs*time.Second can overflow
			add("expiresIn", "must be at most %d seconds (%s)", int64(s.cfg.MaxExpiry/time.Second), s.cfg.MaxExpiry)
		} else {
			req.ExpiresIn = time.Duration(secs) * time.Second
		}
	}
	var malformed []string
	req.Operations, malformed = s.parseOperations(m["operations"], add)
	if req.IntegrationID != "" && len(req.Operations) > 0 {
		// Parts already reported as malformed are not checked against the
		// catalog again: one problem, one issue.
		for _, is := range s.cfg.Registry.ValidateOperations(req.IntegrationID, req.Operations) {
			if !slices.ContainsFunc(malformed, func(p string) bool { return is.Path == p || strings.HasPrefix(is.Path, p+".") }) {
				issues = append(issues, is)
			}
		}
	} else if req.IntegrationID != "" {
		if _, ok := s.cfg.Registry.Integration(req.IntegrationID); !ok {
			issues = append(issues, s.cfg.Registry.UnknownIntegration(req.IntegrationID))
		}
	}
	if req.ConnectionID != "" {
		more, err := s.checkReconnect(ctx, org, req)
		if err != nil {
			return nil, nil, err
		}
		issues = append(issues, more...)
	}
	if len(issues) == 0 {
		req.Consent = s.consent(req.IntegrationID, req.Operations)
	}
	return req, issues, nil
}

// consent words what each operation's arguments commit the end user to
// (operations.Registry.Consent), for the hosted page; nil when nothing does.
func (s *Server) consent(integration string, ops []linkflow.Operation) []string {
	out := make([]string, len(ops))
	any := false
	for i, op := range ops {
		out[i] = s.cfg.Registry.Consent(integration, op)
		any = any || out[i] != ""
	}
	if !any {
		return nil
	}
	return out
}

// maxNameLen bounds names that must match the catalog (resources, actions):
// no catalog name is longer, and nothing longer is echoed in an error.
const maxNameLen = 100

// parseOperations decodes the operations array. It returns the paths of
// the parts it found malformed (an item that is not an object, arguments
// that are not an object), which the catalog then does not check.
func (s *Server) parseOperations(raw json.RawMessage, add func(string, string, ...any)) (ops []linkflow.Operation, malformed []string) {
	if isNull(raw) {
		add("operations", "is required")
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		add("operations", "must be an array")
		return nil, nil
	}
	if len(items) == 0 {
		add("operations", "must not be empty")
		return nil, nil
	}
	if len(items) > s.cfg.MaxOperations {
		add("operations", "must have at most %d operations", s.cfg.MaxOperations)
		return nil, nil
	}
	ops = make([]linkflow.Operation, len(items))
	for i, item := range items {
		base := fmt.Sprintf("operations[%d]", i)
		om, ok := decodeObject(item)
		if !ok {
			add(base, "must be an object")
			malformed = append(malformed, base)
			continue
		}
		for _, is := range unknownFields(om, base+".", opFields...) {
			add(is.Path, "%s", is.Message)
		}
		for _, f := range []struct {
			name string
			dst  *string
		}{{"resource", &ops[i].Resource}, {"action", &ops[i].Action}} {
			v, present := om[f.name]
			if !present || isNull(v) {
				continue // reported by the registry with the same path
			}
			if err := json.Unmarshal(v, f.dst); err != nil {
				add(base+"."+f.name, "must be a string")
				malformed = append(malformed, base+"."+f.name)
			} else if tooLong(*f.dst, maxNameLen) {
				add(base+"."+f.name, "must be at most %d characters", maxNameLen)
				malformed = append(malformed, base) // not looked up, nor echoed, in the catalog
			}
		}
		if a, ok := om["arguments"]; ok && !isNull(a) {
			if _, ok := decodeObject(a); !ok {
				add(base+".arguments", "must be an object")
				malformed = append(malformed, base+".arguments")
			} else {
				ops[i].Arguments = a
			}
		}
	}
	return ops, malformed
}

// checkReturnURL allows https, http only in dev (neither with a user name
// or password, a way to dress one host as another), and the custom app
// schemes the organization registered (appSchemes, read only when the URL
// uses another scheme); nothing else. An error is one of reading the
// registered schemes, not the caller's mistake.
func (s *Server) checkReturnURL(raw string, appSchemes func() ([]string, error)) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || !schemeRE.MatchString(u.Scheme) {
		return "must be a valid URL or app scheme (https://... or myapp://...)", nil
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme == "https" || scheme == "http") && u.User != nil {
		// https://good.example@evil.example goes to evil.example.
		return "must not hold a user name or password: https://a@b/ goes to b", nil
	}
	switch {
	case scheme == "https":
		if u.Host == "" {
			return "must be a valid URL or app scheme (https://... or myapp://...)", nil
		}
	case scheme == "http":
		if !s.cfg.Dev {
			return "must use https (or an app scheme registered for your organization)", nil
		}
		if u.Host == "" {
			return "must be a valid URL", nil
		}
	case !linkflow.ValidAppScheme(scheme):
		return fmt.Sprintf("the %s: scheme is not allowed: use https or an app scheme registered for your organization", scheme), nil
	default:
		registered, err := appSchemes()
		if err != nil {
			return "", err
		}
		if !slices.Contains(registered, scheme) {
			return fmt.Sprintf("the %s: scheme is not registered for your organization (linkflow orgs update --app-schemes)", scheme), nil
		}
		if u.Host == "" && u.Opaque == "" && u.Path == "" {
			return "must be a valid URL or app scheme (https://... or myapp://...)", nil
		}
	}
	return "", nil
}

// checkReconnect checks a link that renews an existing connection: the
// connection must be the organization's and of the same integration, and the
// end user must log in as its username.
func (s *Server) checkReconnect(ctx context.Context, org string, req *linkflow.NewLink) ([]linkflow.Issue, error) {
	c, err := s.cfg.Store.Connection(ctx, org, req.ConnectionID)
	switch {
	case errors.Is(err, linkflow.ErrNotFound):
		return []linkflow.Issue{{Path: "connectionId", Message: "no such connection"}}, nil
	case err != nil:
		return nil, err // Redis out of reach, say: not the request's fault
	}
	var issues []linkflow.Issue
	if c.IntegrationID != req.IntegrationID {
		issues = append(issues, linkflow.Issue{Path: "connectionId", Message: fmt.Sprintf("is a %s connection, not %s", c.IntegrationID, req.IntegrationID)})
	}
	if req.RequiredUsername != "" && req.RequiredUsername != c.Username {
		issues = append(issues, linkflow.Issue{Path: "requiredUsername", Message: "must match the connection's username"})
	}
	req.RequiredUsername = c.Username
	return issues, nil
}

// createdBody is the 201 body of POST /v1/links, field for field seed 001's.
type createdBody struct {
	LinkID        string               `json:"linkId"`
	ClaimCode     string               `json:"claimCode"`
	IntegrationID string               `json:"integrationId"`
	Operations    []linkflow.Operation `json:"operations"`
	Status        linkflow.Status      `json:"status"`
	AppClipURL    string               `json:"appClipUrl"`
	ReturnURL     string               `json:"returnUrl,omitempty"`
	ExpiresAt     int64                `json:"expiresAt"`
	CreatedAt     int64                `json:"createdAt"`
}

func (s *Server) createdResponse(l *linkflow.Link) ([]byte, error) {
	return json.Marshal(createdBody{
		LinkID: l.ID, ClaimCode: l.ClaimCode, IntegrationID: l.IntegrationID,
		Operations: l.Operations, Status: l.Status,
		AppClipURL: linkflow.AppClipURL(s.cfg.PublicURL, l.ID, l.ClaimCode),
		ReturnURL:  l.ReturnURLWith(url.Values{"linkId": {l.ID}}),
		ExpiresAt:  l.ExpiresAt.UnixMilli(), CreatedAt: l.CreatedAt.UnixMilli(),
	})
}
