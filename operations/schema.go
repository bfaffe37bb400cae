package operations

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/linkflow/linkflow"
)

var printer = message.NewPrinter(language.English)

// Custom formats the catalog's schemas use beyond JSON Schema's own:
//   - "luhn": a string of digits whose Luhn checksum is valid (card numbers);
//   - "card-expiry": MM/YY, not before the current month.
func (r *Registry) formats() []*jsonschema.Format {
	return []*jsonschema.Format{
		{Name: "luhn", Validate: func(v any) error {
			s, ok := v.(string)
			if !ok {
				return nil
			}
			if !LuhnValid(s) {
				return errors.New("fails the Luhn check")
			}
			return nil
		}},
		{Name: "card-expiry", Validate: func(v any) error {
			s, ok := v.(string)
			if !ok {
				return nil
			}
			return CheckCardExpiry(s, r.now())
		}},
	}
}

func (r *Registry) compile(schema json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	for _, f := range r.formats() {
		c.RegisterFormat(f)
	}
	if err := c.AddResource("mem://arguments.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("mem://arguments.json")
}

// validateArguments checks args against the action's schema; an action
// without a schema accepts no arguments or an empty object.
func (r *Registry) validateArguments(act *Action, path string, args json.RawMessage) []linkflow.Issue {
	if act.schema == nil {
		if len(bytes.TrimSpace(args)) == 0 || bytes.Equal(bytes.TrimSpace(args), []byte("{}")) || bytes.Equal(bytes.TrimSpace(args), []byte("null")) {
			return nil
		}
		return []linkflow.Issue{{Path: path, Message: "this action takes no arguments"}}
	}
	var doc any = map[string]any{}
	if len(bytes.TrimSpace(args)) > 0 && !bytes.Equal(bytes.TrimSpace(args), []byte("null")) {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
		if err != nil {
			return []linkflow.Issue{{Path: path, Message: "must be a JSON object"}}
		}
		doc = v
	}
	err := act.schema.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []linkflow.Issue{{Path: path, Message: err.Error()}}
	}
	var issues []linkflow.Issue
	collectIssues(ve, path, &issues)
	sort.SliceStable(issues, func(i, j int) bool { return issues[i].Path < issues[j].Path })
	return dedupe(issues)
}

// collectIssues flattens the leaves of a validation error tree into issues.
func collectIssues(ve *jsonschema.ValidationError, base string, out *[]linkflow.Issue) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collectIssues(c, base, out)
		}
		return
	}
	path := base + instancePath(ve.InstanceLocation)
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			*out = append(*out, linkflow.Issue{Path: path + "." + m, Message: "is required"})
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			*out = append(*out, linkflow.Issue{Path: path + "." + p, Message: "is not allowed"})
		}
	case *kind.Pattern:
		// The library's message quotes the value, which may be a secret (a
		// security code); say what was expected instead.
		*out = append(*out, linkflow.Issue{Path: path, Message: "does not match the pattern " + k.Want})
	case *kind.Format:
		msg := "is not valid"
		if k.Err != nil {
			msg = k.Err.Error()
		}
		*out = append(*out, linkflow.Issue{Path: path, Message: msg})
	default:
		*out = append(*out, linkflow.Issue{Path: path, Message: ve.ErrorKind.LocalizedString(printer)})
	}
}

func instancePath(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil {
			fmt.Fprintf(&b, "[%s]", tok)
			continue
		}
		b.WriteString(".")
		b.WriteString(tok)
	}
	return b.String()
}

func dedupe(issues []linkflow.Issue) []linkflow.Issue {
	seen := map[linkflow.Issue]bool{}
	out := issues[:0]
	for _, is := range issues {
		if !seen[is] {
			seen[is] = true
			out = append(out, is)
		}
	}
	return out
}

// LuhnValid reports whether s is all digits and passes the Luhn checksum.
func LuhnValid(s string) bool {
	if s == "" {
		return false
	}
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

var expiryRE = regexp.MustCompile(`^(0[1-9]|1[0-2])/([0-9]{2})$`)

// CheckCardExpiry checks that s is MM/YY and not before now's month.
func CheckCardExpiry(s string, now time.Time) error {
	m := expiryRE.FindStringSubmatch(s)
	if m == nil {
		return errors.New("must be MM/YY")
	}
	month, _ := strconv.Atoi(m[1])
	year, _ := strconv.Atoi(m[2])
	year += 2000
	now = now.UTC()
	if year < now.Year() || (year == now.Year() && time.Month(month) < now.Month()) {
		return errors.New("is in the past")
	}
	return nil
}
