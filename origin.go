package linkflow

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Allowed origins: the web pages ("https://app.example.com") an organization
// lets embed its links' hosted page with the web drop-in. The hosted page
// lists them in its Content-Security-Policy frame-ancestors, and posts its
// messages (which carry no secret) only to one of them, by exact origin. An
// origin is compared as browsers compare them, so one entry is one scheme,
// one host and one port: no path, no wildcard.

// MaxAllowedOrigins bounds the allowed origins of one organization.
const MaxAllowedOrigins = 20

// AllowedOriginRule says what an allowed origin must look like.
const AllowedOriginRule = "an allowed origin is https://host or https://host:port (http only for localhost, 127.0.0.1 " +
	"or [::1], which only a dev API honours), with no path (not even /), query, fragment, user or wildcard"

// ErrInvalidOrigin is the error ParseOrigin wraps.
var ErrInvalidOrigin = errors.New("invalid origin")

var hostLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ParseOrigin checks that s is an origin that may be allowed and returns it
// as browsers serialise it (window.location.origin): scheme and host in
// lower case, the port only when it is not the scheme's default.
func ParseOrigin(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrInvalidOrigin, truncate(s, 80), why)
	}
	if len(s) > 300 {
		return bad("too long")
	}
	if strings.ContainsAny(s, "*\\ \t\r\n;,'\"") {
		return bad("wildcards, spaces, quotes, commas and semicolons are not allowed")
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return bad("must be https://host")
	}
	switch {
	case u.Opaque != "" || u.Host == "":
		return bad("must be " + scheme + "://host")
	case u.User != nil:
		return bad("must not carry a user or password")
	case u.Path != "" || u.RawPath != "":
		return bad("must not have a path (not even a trailing /)")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return bad("must not have a query or a fragment")
	}
	host := strings.ToLower(u.Hostname())
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" || ip.Is4In6() {
			return bad("not a usable IP address")
		}
		host = ip.String()
		if ip.Is6() {
			host = "[" + host + "]"
		}
	} else if !validHostname(host) {
		return bad("not a valid host name (use its ASCII form, xn--...)")
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return bad("not a valid port")
		}
		if (scheme == "https" && n == 443) || (scheme == "http" && n == 80) {
			port = ""
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("not a valid port")
	}
	if scheme == "http" && host != "localhost" && host != "127.0.0.1" && host != "[::1]" {
		return bad("must use https (http is only for localhost, 127.0.0.1 and [::1])")
	}
	o := scheme + "://" + host
	if port != "" {
		o += ":" + port
	}
	return o, nil
}

// DevOrigin reports whether an origin ParseOrigin returned is an http one,
// on the local machine: allowed for development, honoured only by an API
// that runs in dev mode.
func DevOrigin(origin string) bool { return strings.HasPrefix(origin, "http://") }

// ParseOrigins checks a list of origins (ParseOrigin) and returns them
// normalised, without duplicates, in their order; at most MaxAllowedOrigins.
func ParseOrigins(list []string) ([]string, error) {
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for _, s := range list {
		o, err := ParseOrigin(s)
		if err != nil {
			return nil, err
		}
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	if len(out) > MaxAllowedOrigins {
		return nil, fmt.Errorf("%w: at most %d allowed origins", ErrInvalidOrigin, MaxAllowedOrigins)
	}
	return out, nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for l := range strings.SplitSeq(h, ".") {
		if !hostLabelRE.MatchString(l) {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
