package luascript

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestSourceExpandsIncludes(t *testing.T) {
	fsys := fstest.MapFS{
		"lua/lib.lua":     {Data: []byte("local function f() return 1 end\n")},
		"lua/main.lua":    {Data: []byte("-- main\n--#include lib\nreturn f()\n")},
		"lua/nested.lua":  {Data: []byte("--#include main\n")},
		"lua/missing.lua": {Data: []byte("--#include nope\n")},
	}
	got, err := Source(fsys, "main")
	if err != nil {
		t.Fatal(err)
	}
	if want := "-- main\nlocal function f() return 1 end\nreturn f()\n"; got != want {
		t.Fatalf("Source(main) = %q, want %q", got, want)
	}
	if _, err := Source(fsys, "nested"); err == nil || !strings.Contains(err.Error(), "includes nothing") {
		t.Fatalf("a nested include: err = %v", err)
	}
	if _, err := Source(fsys, "missing"); err == nil {
		t.Fatal("a missing include: no error")
	}
}
