// Package luascript loads the Lua scripts a package embeds and recognizes
// Redis's answer for a script it does not know. Both the store and the
// sandbox provider run their atomic steps as scripts by SHA (EVALSHA);
// Redis forgets them on a restart or a failover, and answers NOSCRIPT.
package luascript

import (
	"io/fs"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Load returns the script lua/<name>.lua of fsys. A missing script is a
// programming error: Load panics, at package initialization.
func Load(fsys fs.FS, name string) *redis.Script {
	src, err := fs.ReadFile(fsys, "lua/"+name+".lua")
	if err != nil {
		panic(err)
	}
	return redis.NewScript(string(src))
}

// IsNoScript reports whether err is Redis's answer to EVALSHA for a script
// it does not know.
func IsNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
