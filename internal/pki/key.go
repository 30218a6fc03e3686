// Package pki makes the keys, certificate signing requests and self-signed
// certificates that keyledger's TLS endpoints need, the way openssl's `req`
// command does: it generates RSA, ECDSA (P-256) and Ed25519 keys, parses
// distinguished names in openssl's -subj syntax, encodes and decodes PEM,
// and writes files without clobbering existing ones unless asked to.
//
// Everything here is stateless and safe for concurrent use.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
)

// KeyType is a kind of private key that GenerateKey makes.
type KeyType string

// The key types GenerateKey makes.
const (
	RSA     KeyType = "rsa"     // RSA, DefaultRSABits unless told otherwise
	ECDSA   KeyType = "ecdsa"   // ECDSA on NIST P-256 (prime256v1)
	Ed25519 KeyType = "ed25519" // Ed25519
)

// DefaultRSABits is the size of RSA keys when none is given, as in
// `openssl req -newkey rsa:2048`.
const DefaultRSABits = 2048

// MinRSABits is the smallest RSA key NewCSR and NewSelfSigned accept.
const MinRSABits = 2048

// ParseKeyType parses "rsa", "ecdsa" or "ed25519" (any case).
func ParseKeyType(s string) (KeyType, error) {
	switch t := KeyType(strings.ToLower(s)); t {
	case RSA, ECDSA, Ed25519:
		return t, nil
	}
	return "", fmt.Errorf("key type %q: want rsa, ecdsa or ed25519", s)
}

// GenerateKey returns a new private key of type typ. For RSA, bits is 2048,
// 3072 or 4096, and 0 means DefaultRSABits; the other types have a fixed
// size and take bits 0.
func GenerateKey(typ KeyType, bits int) (crypto.Signer, error) {
	switch typ {
	case RSA:
		if bits == 0 {
			bits = DefaultRSABits
		}
		if bits != 2048 && bits != 3072 && bits != 4096 {
			return nil, fmt.Errorf("generate RSA key: %d bits: want 2048, 3072 or 4096", bits)
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, fmt.Errorf("generate RSA key: %w", err)
		}
		return k, nil
	case ECDSA, Ed25519:
		if bits != 0 {
			return nil, fmt.Errorf("generate %s key: the size is fixed; got %d bits", typ, bits)
		}
		if typ == Ed25519 {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return nil, fmt.Errorf("generate Ed25519 key: %w", err)
			}
			return k, nil
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ECDSA key: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("generate key: unknown key type %q", typ)
}

// DescribeKey names a public key's algorithm and size: "RSA 2048",
// "ECDSA P-256", "Ed25519".
func DescribeKey(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// checkKey enforces what a key must be to sign a CSR or a certificate here.
func checkKey(key crypto.Signer) error {
	if key == nil {
		return errors.New("no private key")
	}
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits {
			return fmt.Errorf("RSA key of %d bits: want at least %d", n, MinRSABits)
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("ECDSA key on %s: want P-256, P-384 or P-521", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("unsupported key type %T", key.Public())
}
