// Package luascript loads the Lua scripts a package embeds and recognizes
// Redis's answer for a script it does not know. Both the store and the
// sandbox provider run their atomic steps as scripts by SHA (EVALSHA);
// Redis forgets them on a restart or a failover, and answers NOSCRIPT.
//
// A script may share a function with others: a line
//
//	--#include NAME
//
// is replaced by lua/NAME.lua (one level; an included file includes
// nothing), so the function is written once and each script that needs it
// still runs as one EVALSHA.
package luascript

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/redis/go-redis/v9"
)

const includeDirective = "--#include "

// Load returns the script lua/<name>.lua of fsys. A missing script, or a
// missing or nested include, is a programming error: Load panics, at
// package initialization.
func Load(fsys fs.FS, name string) *redis.Script {
	src, err := Source(fsys, name)
	if err != nil {
		panic(err)
	}
	return redis.NewScript(src)
}

// Source is the text of lua/<name>.lua with its includes expanded.
func Source(fsys fs.FS, name string) (string, error) {
	src, err := fs.ReadFile(fsys, "lua/"+name+".lua")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for line := range strings.Lines(string(src)) {
		inc, ok := strings.CutPrefix(line, includeDirective)
		if !ok {
			b.WriteString(line)
			continue
		}
		inc = strings.TrimSpace(inc)
		part, err := fs.ReadFile(fsys, "lua/"+inc+".lua")
		if err != nil {
			return "", fmt.Errorf("lua/%s.lua: include %s: %w", name, inc, err)
		}
		if strings.Contains(string(part), "\n"+includeDirective) || strings.HasPrefix(string(part), includeDirective) {
			return "", fmt.Errorf("lua/%s.lua: include %s: an included file includes nothing", name, inc)
		}
		b.Write(part)
		if len(part) > 0 && part[len(part)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String(), nil
}

// IsNoScript reports whether err is Redis's answer to EVALSHA for a script
// it does not know.
func IsNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
