// Package redact hides the passwords in the URLs of Redis and NATS servers,
// for errors and logs: an operator's startup error or dev's log line names
// the server it means without handing its password to the log collector.
package redact

import (
	"errors"
	"net/url"
	"strings"
)

// URLs hides the passwords of a URL or a comma-separated list of URLs
// (Redis's, NATS's; a bare host:port is one). A part that does not parse
// is replaced whole: where its password ends is then anyone's guess
// ("redis://user:password" with the host left out reads as a host and a
// port).
func URLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		raw, scheme := p, strings.Contains(p, "://")
		if !scheme {
			raw = "x://" + p
		}
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			parts[i] = "(a URL that does not parse)"
		case u.User != nil:
			parts[i] = u.Redacted()
			if !scheme {
				parts[i] = strings.TrimPrefix(parts[i], "x://")
			}
		}
	}
	return strings.Join(parts, ",")
}

// ParseError is err with what it quotes of a URL taken out: net/url's
// errors (and so go-redis's ParseURL's) quote the whole URL they could not
// parse, password and all, and their reasons quote the characters after a
// malformed %-escape, a bad character or the port that is not one (which,
// in "user:password" given without a host, is the password). Other errors
// are returned as they are.
func ParseError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	var esc url.EscapeError
	if errors.As(ue.Err, &esc) {
		return errors.New("a malformed %-escape")
	}
	var host url.InvalidHostError
	if errors.As(ue.Err, &host) {
		return errors.New("an invalid character in the host name")
	}
	if strings.HasPrefix(ue.Err.Error(), "invalid port ") {
		return errors.New("an invalid port after the host")
	}
	return ue.Err
}
