package linkflow

import (
	"regexp"
	"strings"
)

// App schemes: the custom URL schemes ("myapp://callback") an organization
// registers for its links' return URLs, so that the end user comes back to
// the organization's app. Nothing else but https (and http in dev) is
// accepted: a return URL is where linkflow sends the end user's browser, and
// schemes such as intent:, ms-msdt: or search-ms: make a browser do far more
// than open a page.

// MaxAppSchemes bounds the app schemes of one organization.
const MaxAppSchemes = 10

// AppSchemeRule says what an app scheme must look like.
const AppSchemeRule = "an app scheme is 2 to 40 characters: a letter, then letters, digits, '+', '-' or '.'; " +
	"not http, https, or a scheme browsers give powers to (javascript, data, file, intent, ms-*, search-ms, ...)"

var appSchemeRE = regexp.MustCompile(`^[a-z][a-z0-9+.-]{1,39}$`)

// reservedSchemes can run code, reach the local machine or hand the URL to
// another program: never an app scheme.
var reservedSchemes = map[string]bool{
	"http": true, "https": true, "javascript": true, "data": true, "vbscript": true, "file": true, "blob": true,
	"about": true, "intent": true, "view-source": true, "feed": true, "search-ms": true, "search": true,
	"jar": true, "filesystem": true, "chrome": true, "chrome-extension": true, "moz-extension": true,
	"resource": true, "shell": true, "res": true, "mhtml": true, "ws": true, "wss": true, "ftp": true,
	"smb": true, "nfs": true, "mailto": true, "tel": true, "sms": true, "wss+unix": true,
}

// ValidAppScheme reports whether scheme may be registered as an app scheme.
func ValidAppScheme(scheme string) bool {
	s := strings.ToLower(scheme)
	return appSchemeRE.MatchString(s) && !reservedSchemes[s] && !strings.HasPrefix(s, "ms-") &&
		!strings.HasSuffix(s, "-extension")
}
