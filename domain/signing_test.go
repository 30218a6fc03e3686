package domain_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

// signingVector freezes the derivation of a key pair from a secret: the
// HKDF seed, the public key, and the Ed25519 signature of Message.
type signingVector struct {
	APIKey    string `json:"api_key"`
	Secret    string `json:"secret"`
	Seed      string `json:"seed"`
	PublicKey string `json:"public_key"`
	Message   string `json:"message"`
	Signature string `json:"signature"`
}

const signingVectorsFile = "testdata/signing/vectors.json"

// TestSecret_SigningKey checks the derivation against the frozen vectors in
// testdata/signing: clients in any language can check theirs against the
// same file. go test -update writes the file only if it is missing.
func TestSecret_SigningKey(t *testing.T) {
	t.Parallel()
	if *update {
		writeSigningVectors(t)
	}
	b, err := os.ReadFile(signingVectorsFile)
	if err != nil {
		t.Fatalf("got %v, want the frozen vectors (create them once with go test -update)", err)
	}
	var vectors []signingVector
	if err := json.Unmarshal(b, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) < 3 {
		t.Fatalf("got %d vectors, want at least 3", len(vectors))
	}
	for _, v := range vectors {
		t.Run(v.APIKey+"/"+v.Secret[:8], func(t *testing.T) {
			s, err := domain.ParseSecret(v.Secret)
			if err != nil {
				t.Fatalf("ParseSecret: got %v, want nil", err)
			}
			priv, err := s.SigningKey(v.APIKey)
			if err != nil {
				t.Fatalf("SigningKey: got %v, want nil", err)
			}
			checkField(t, "seed", hex.EncodeToString(priv.Seed()), v.Seed)
			checkField(t, "seed (RFC 5869 by hand)", hex.EncodeToString(hkdfByHand(secretEntropy(t, v.Secret), []byte(v.APIKey))), v.Seed)
			pub, err := s.PublicKey(v.APIKey)
			if err != nil {
				t.Fatalf("PublicKey: got %v, want nil", err)
			}
			checkField(t, "public key", hex.EncodeToString(pub[:]), v.PublicKey)
			checkField(t, "signature", hex.EncodeToString(ed25519.Sign(priv, []byte(v.Message))), v.Signature)
			sig, _ := hex.DecodeString(v.Signature)
			if !ed25519.Verify(pub[:], []byte(v.Message), sig) {
				t.Errorf("Verify: got false, want true")
			}
		})
	}
}

// TestSecret_SigningKeyBinds: the pair depends on the secret and on the API
// key, and the zero or an out-of-range secret derives nothing.
func TestSecret_SigningKeyBinds(t *testing.T) {
	t.Parallel()
	s1, s2 := secretFrom(t, 1), secretFrom(t, 2)
	pub := func(s domain.Secret, k string) domain.PublicKey {
		p, err := s.PublicKey(k)
		if err != nil {
			t.Fatalf("PublicKey: got %v, want nil", err)
		}
		return p
	}
	if pub(s1, apiKey) == pub(s2, apiKey) {
		t.Errorf("two secrets: got the same public key, want different")
	}
	if pub(s1, apiKey) == pub(s1, otherAPIKey) {
		t.Errorf("two API keys: got the same public key, want different")
	}
	if _, err := (domain.Secret{}).SigningKey(apiKey); !errors.Is(err, domain.ErrBadCredentials) {
		t.Errorf("zero secret: got %v, want %v", err, domain.ErrBadCredentials)
	}
	// 43 base62 digits can hold a little more than 256 bits; such a value
	// has a valid checksum but no 32-byte form.
	head := domain.SecretPrefix + strings.Repeat("z", 43)
	big, err := domain.ParseSecret(head + base62Checksum(head))
	if err != nil {
		t.Fatalf("ParseSecret: got %v, want nil", err)
	}
	if _, err := big.SigningKey(apiKey); !errors.Is(err, domain.ErrBadCredentials) {
		t.Errorf("secret over 256 bits: got %v, want %v", err, domain.ErrBadCredentials)
	}
}

// hkdfByHand is RFC 5869 HKDF-SHA-256 written out (extract, then one
// expand block), to check SigningKey against the spec, not against itself.
func hkdfByHand(ikm, salt []byte) []byte {
	ext := hmac.New(sha256.New, salt)
	ext.Write(ikm)
	prk := ext.Sum(nil)
	exp := hmac.New(sha256.New, prk)
	exp.Write([]byte(domain.SigningKeyInfo))
	exp.Write([]byte{1})
	return exp.Sum(nil)
}

// secretEntropy decodes a secret's base62 body by long multiplication on
// bytes, independently of the domain's code.
func secretEntropy(t *testing.T, secret string) []byte {
	t.Helper()
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]byte, 32)
	for _, c := range secret[len(domain.SecretPrefix) : len(domain.SecretPrefix)+43] {
		carry := strings.IndexRune(alphabet, c)
		for i := len(out) - 1; i >= 0; i-- {
			v := int(out[i])*62 + carry
			out[i], carry = byte(v), v>>8
		}
		if carry != 0 {
			t.Fatalf("secret body over 256 bits")
		}
	}
	return out
}

func base62Checksum(head string) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	n := crc32.ChecksumIEEE([]byte(head))
	out := make([]byte, 6)
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = alphabet[n%62]
		n /= 62
	}
	return string(out)
}

func writeSigningVectors(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(signingVectorsFile); err == nil {
		t.Logf("%s exists and is frozen: not rewritten", signingVectorsFile)
		return
	}
	var vectors []signingVector
	for _, c := range []struct {
		key  string
		fill byte
	}{{apiKey, 0x00}, {apiKey, 0x01}, {otherAPIKey, 0x01}, {apiKey, 0xff}} {
		s, err := domain.NewSecret(bytes.NewReader(bytes.Repeat([]byte{c.fill}, 32)))
		if err != nil {
			t.Fatal(err)
		}
		priv, err := s.SigningKey(c.key)
		if err != nil {
			t.Fatal(err)
		}
		msg := "keyledger signing vector"
		vectors = append(vectors, signingVector{APIKey: c.key, Secret: s.Reveal(), Seed: hex.EncodeToString(priv.Seed()),
			PublicKey: hex.EncodeToString(priv.Public().(ed25519.PublicKey)), Message: msg,
			Signature: hex.EncodeToString(ed25519.Sign(priv, []byte(msg)))})
	}
	b, err := json.MarshalIndent(vectors, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(signingVectorsFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(signingVectorsFile, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
