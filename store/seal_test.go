package store

import (
	"errors"
	"strings"
	"testing"
)

func TestKeyringSealOpen(t *testing.T) {
	t.Parallel()
	kr, err := ParseKeyring(GenerateKey("a"))
	if err != nil {
		t.Fatal(err)
	}
	sealed := kr.Seal([]byte("4111111111111111"), "link:l1:args")
	if strings.Contains(sealed, "4111") || !strings.HasPrefix(sealed, "v1.a.") {
		t.Fatalf("sealed value %q", sealed)
	}
	pt, err := kr.Open(sealed, "link:l1:args")
	if err != nil || string(pt) != "4111111111111111" {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := kr.Open(sealed, "link:l2:args"); !errors.Is(err, ErrUnsealable) {
		t.Fatalf("opened with the wrong place: %v", err)
	}
	tampered := sealed[:len(sealed)-2] + "AA"
	if _, err := kr.Open(tampered, "link:l1:args"); !errors.Is(err, ErrUnsealable) {
		t.Fatalf("opened a tampered value: %v", err)
	}
}

func TestKeyringRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := GenerateKey("old"), GenerateKey("new")
	before, _ := ParseKeyring(oldKey)
	sealed := before.Seal([]byte("secret"), "x")

	after, err := ParseKeyring(newKey + "," + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if after.IsCurrent(sealed) {
		t.Fatal("a value sealed with the old key counts as current")
	}
	if pt, err := after.Open(sealed, "x"); err != nil || string(pt) != "secret" {
		t.Fatalf("old value does not open after rotation: %v", err)
	}
	if !after.IsCurrent(after.Seal([]byte("y"), "x")) {
		t.Fatal("new values are not sealed with the first key")
	}
	onlyNew, _ := ParseKeyring(newKey)
	if _, err := onlyNew.Open(sealed, "x"); !errors.Is(err, ErrUnsealable) {
		t.Fatalf("opened without its key: %v", err)
	}
}

func TestParseKeyringRejects(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"", "a:notbase64!!", "a:AAAA", GenerateKey("a") + "," + GenerateKey("a"), GenerateKey("a.b")} {
		if _, err := ParseKeyring(spec); err == nil {
			t.Errorf("ParseKeyring(%q) accepted", spec)
		}
	}
}
