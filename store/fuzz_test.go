package store

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzKeyringOpen opens arbitrary sealed values. Properties: no panic; what
// does not open is ErrUnsealable; a value opens only at the place it was
// sealed for; Seal then Open gives the plaintext back.
func FuzzKeyringOpen(f *testing.F) {
	kr, err := ParseKeyring(GenerateKey("k1") + "," + GenerateKey("k2"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(kr.Seal([]byte("pass_good"), "link:link_1:password"), "link:link_1:password", []byte("x"))
	f.Add("v1.k1.", "a", []byte(""))
	f.Add("v1.nokey.AAAA", "a", []byte("y"))
	f.Add("v2.k1.AAAA", "", []byte("z"))
	f.Fuzz(func(t *testing.T, sealed, aad string, plaintext []byte) {
		if pt, err := kr.Open(sealed, aad); err != nil {
			if !errors.Is(err, ErrUnsealable) {
				t.Fatalf("Open(%q): %v is not ErrUnsealable", sealed, err)
			}
		} else if !kr.IsCurrent(sealed) && SealedWith(sealed) != "k2" {
			t.Fatalf("opened %q sealed with an unknown key: %q", sealed, pt)
		}
		s := kr.Seal(plaintext, aad)
		pt, err := kr.Open(s, aad)
		if err != nil || !bytes.Equal(pt, plaintext) {
			t.Fatalf("round trip: %q, %v", pt, err)
		}
		if _, err := kr.Open(s, aad+"x"); err == nil {
			t.Fatal("a value opened at another place")
		}
	})
}

// FuzzDecodeLink decodes arbitrary link hashes, as a corrupted or older
// record would be. Properties: no panic; the decoded link keeps the fields
// that need no parsing.
func FuzzDecodeLink(f *testing.F) {
	f.Add("link_1", "pending", `[{"resource":"a","action":"b"}]`, "", `{"code":"X","message":"m"}`, `{"id":"c"}`, "12")
	f.Add("", "", "{", "x", "[", "null", "-1")
	f.Fuzz(func(t *testing.T, id, status, ops, result, linkErr, challenge, num string) {
		m := map[string]string{fID: id, fStatus: status, fOps: ops, fResult: result, fError: linkErr,
			fChallenge: challenge, fCreatedAt: num, fAttempts: num, fVersion: num, fExpiresAt: num}
		l, err := decodeLink(m)
		if err != nil {
			return
		}
		if l.ID != id || string(l.Status) != status {
			t.Fatalf("decoded %+v from id %q status %q", l, id, status)
		}
		if result != "" && !bytes.Equal(l.Result, []byte(result)) {
			t.Fatalf("result %q became %q", result, l.Result)
		}
	})
}

// FuzzDecodeConnection decodes arbitrary connection hashes. Properties: no
// panic; metadata is kept as it is; times never panic on any number.
func FuzzDecodeConnection(f *testing.F) {
	f.Add("conn_1", "healthy", `{"a":1}`, "1700000000000", "1")
	f.Add("", "", "", "-9223372036854775808", "x")
	f.Fuzz(func(t *testing.T, id, status, metadata, at, disabled string) {
		c := decodeConnection(map[string]string{cID: id, cStatus: status, cMetadata: metadata,
			cCreatedAt: at, cUpdatedAt: at, cDisabled: disabled})
		if c.ID != id || (metadata != "" && string(c.Metadata) != metadata) {
			t.Fatalf("decoded %+v", c)
		}
		if !utf8.ValidString(id) {
			return
		}
		_ = c.View(false) // builds the API's view without panicking
	})
}
