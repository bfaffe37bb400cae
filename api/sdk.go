package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/linkflow/linkflow/sdk"
)

// The web drop-in's script (package sdk), for customers' pages:
//
//   - GET /sdk/v1.0.2/link.js (say) is that exact version, which never changes:
//     cached for a year, and the URL to pin with an integrity attribute;
//     every version served before stays served (package sdk);
//   - GET /sdk/v1/link.js and GET /sdk/link.js are the newest of the major
//     version and the newest: cached for an hour, so a fix reaches pages
//     that load them within the hour.
//
// Any origin may load it (CORS), so a script tag with crossorigin and
// integrity works. It is not part of the JSON API and not in openapi.yaml.

const (
	sdkMovingMaxAge = time.Hour
	sdkPinnedMaxAge = 365 * 24 * time.Hour
)

// sdkScript is GET /sdk/link.js and GET /sdk/{version}/link.js.
func (s *Server) sdkScript(w http.ResponseWriter, r *http.Request) {
	cache, script := "public, max-age="+seconds64(sdkMovingMaxAge), sdk.LinkJS()
	switch v := r.PathValue("version"); {
	case v == "" || v == sdk.Major():
	case strings.HasPrefix(v, "v"):
		// This version or one served before: pages pin them with their
		// integrity hash, so each stays served, unchanged.
		var ok bool
		if script, ok = sdk.Script(v[1:]); !ok {
			s.notFound(w, r)
			return
		}
		cache = "public, max-age=" + seconds64(sdkPinnedMaxAge) + ", immutable"
	default:
		s.notFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", cache)
	h.Set("ETag", `"`+strings.TrimPrefix(sdk.IntegrityOf(script), "sha384-")+`"`)
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "link.js", time.Time{}, strings.NewReader(script))
}

func seconds64(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
