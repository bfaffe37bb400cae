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

// plainError is a custom format's reason, in plain words and without the
// value: the only format errors an issue repeats.
type plainError string

func (e plainError) Error() string { return string(e) }

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
				return plainError("fails the Luhn check")
			}
			return nil
		}},
		{Name: "card-expiry", Validate: func(v any) error {
			s, ok := v.(string)
			if !ok {
				return nil
			}
			if err := CheckCardExpiry(s, r.now()); err != nil {
				return plainError(err.Error())
			}
			return nil
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
	default:
		*out = append(*out, linkflow.Issue{Path: path, Message: plainWords(ve.ErrorKind)})
	}
}

// plainWords says what is wrong with a value in words, not in JSON Schema's
// keywords ("must not be empty", not "minLength: got 0, want 1"). It never
// repeats the value itself, which may be a secret (a security code).
func plainWords(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return "must be " + orList(article(k.Want)) + ", not " + article([]string{k.Got})[0]
	case *kind.MinLength:
		if k.Want == 1 {
			return "must not be empty"
		}
		return printer.Sprintf("must have at least %d characters", k.Want)
	case *kind.MaxLength:
		return printer.Sprintf("must have at most %d characters", k.Want)
	case *kind.Minimum:
		return "must be at least " + k.Want.RatString()
	case *kind.Maximum:
		return "must be at most " + k.Want.RatString()
	case *kind.ExclusiveMinimum:
		return "must be more than " + k.Want.RatString()
	case *kind.ExclusiveMaximum:
		return "must be less than " + k.Want.RatString()
	case *kind.MultipleOf:
		return "must be a multiple of " + k.Want.RatString()
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			b, _ := json.Marshal(w)
			want[i] = string(b)
		}
		return "must be one of " + orList(want)
	case *kind.Const:
		b, _ := json.Marshal(k.Want)
		return "must be " + string(b)
	case *kind.MinItems:
		return printer.Sprintf("must have at least %d items", k.Want)
	case *kind.MaxItems:
		return printer.Sprintf("must have at most %d items", k.Want)
	case *kind.UniqueItems:
		return "must not hold the same item twice"
	case *kind.MinProperties:
		return printer.Sprintf("must have at least %d fields", k.Want)
	case *kind.MaxProperties:
		return printer.Sprintf("must have at most %d fields", k.Want)
	case *kind.Pattern:
		return "is not in the expected format (the pattern " + k.Want + ")"
	case *kind.Format:
		// JSON Schema's own formats' errors quote the value ("date":
		// parsing time "<value>" as ...); linkflow's own say why in words.
		var plain plainError
		if errors.As(k.Err, &plain) {
			return plain.Error()
		}
		return "must be a valid " + k.Want
	}
	return k.LocalizedString(printer)
}

// article names JSON types for people: "a string", "an integer", "null".
func article(types []string) []string {
	out := make([]string, len(types))
	for i, t := range types {
		switch t {
		case "null":
			out[i] = "null"
		case "integer", "object", "array":
			out[i] = "an " + t
		default:
			out[i] = "a " + t
		}
	}
	return out
}

// orList joins "a", "b" and "c" as "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
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
