package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/linkflow/linkflow"
)

// Keyring seals secrets with AES-256-GCM. The first key seals; every key
// opens. Each sealed value names the key that sealed it, so keys rotate
// without downtime: add a new key first in the list, keep the old ones until
// `linkflow keys rotate-data` has re-sealed every record.
//
// A sealed value looks like "v1.<keyId>.<base64url(nonce|ciphertext)>". Every
// Seal binds the value to its place (associated data such as
// "link:<id>:password") so a sealed value copied elsewhere does not open.
type Keyring struct {
	primary *sealKey
	byID    map[string]*sealKey
}

type sealKey struct {
	id   string
	aead cipher.AEAD
}

// ErrUnsealable is returned when a sealed value cannot be opened: unknown key,
// tampered bytes or the wrong place (linkflow.ErrUnsealable).
var ErrUnsealable = linkflow.ErrUnsealable

// ParseKeyring reads keys in the form of LINKFLOW_ENCRYPTION_KEYS: a
// comma-separated list of "id:base64key" (or a bare base64 key, whose id is
// derived from it). Each key is 32 bytes (AES-256).
func ParseKeyring(spec string) (*Keyring, error) {
	kr := &Keyring{byID: map[string]*sealKey{}}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, found := strings.Cut(part, ":")
		if !found {
			b64, id = id, ""
		}
		raw, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("encryption key %q: %w", id, err)
		}
		if len(raw) != 32 {
			return nil, fmt.Errorf("encryption key %q: want 32 bytes, got %d", id, len(raw))
		}
		if id == "" {
			sum := sha256.Sum256(raw)
			id = hex.EncodeToString(sum[:4])
		}
		if strings.ContainsAny(id, ".") {
			return nil, fmt.Errorf("encryption key id %q: must not contain '.'", id)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		k := &sealKey{id: id, aead: aead}
		if _, dup := kr.byID[id]; dup {
			return nil, fmt.Errorf("encryption key id %q given twice", id)
		}
		kr.byID[id] = k
		if kr.primary == nil {
			kr.primary = k
		}
	}
	if kr.primary == nil {
		return nil, errors.New("no encryption key given")
	}
	return kr, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// GenerateKey returns a new random key in the "id:base64key" form.
func GenerateKey(id string) string {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	return id + ":" + base64.StdEncoding.EncodeToString(raw)
}

// PrimaryID is the id of the key that seals.
func (k *Keyring) PrimaryID() string { return k.primary.id }

// Has says whether the keyring has a key of that id.
func (k *Keyring) Has(id string) bool { return k.byID[id] != nil }

// sealedPrefix begins every sealed value.
const sealedPrefix = "v1."

// Seal encrypts plaintext for the place named by aad.
func (k *Keyring) Seal(plaintext []byte, aad string) string {
	nonce := make([]byte, k.primary.aead.NonceSize(), k.primary.aead.NonceSize()+len(plaintext)+k.primary.aead.Overhead())
	_, _ = rand.Read(nonce)
	ct := k.primary.aead.Seal(nonce, nonce, plaintext, []byte(aad))
	return sealedPrefix + k.primary.id + "." + base64.RawURLEncoding.EncodeToString(ct)
}

// Open decrypts a value sealed for the place named by aad.
func (k *Keyring) Open(sealed, aad string) ([]byte, error) {
	rest, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return nil, ErrUnsealable
	}
	id, b64, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, ErrUnsealable
	}
	key := k.byID[id]
	if key == nil {
		return nil, fmt.Errorf("%w: %w %q", ErrUnsealable, linkflow.ErrUnknownKey, id)
	}
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil || len(raw) < key.aead.NonceSize() {
		return nil, ErrUnsealable
	}
	pt, err := key.aead.Open(nil, raw[:key.aead.NonceSize()], raw[key.aead.NonceSize():], []byte(aad))
	if err != nil {
		return nil, ErrUnsealable
	}
	return pt, nil
}

// SealedWith returns the id of the key a value was sealed with.
func SealedWith(sealed string) string {
	rest, _ := strings.CutPrefix(sealed, sealedPrefix)
	id, _, _ := strings.Cut(rest, ".")
	return id
}

// IsCurrent reports whether sealed was sealed with the primary key.
func (k *Keyring) IsCurrent(sealed string) bool { return SealedWith(sealed) == k.primary.id }
