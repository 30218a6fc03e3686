package domain

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
)

// SigningKeyInfo is the HKDF info string of request-signing keys. It is
// part of the derivation: changing it changes every key pair.
const SigningKeyInfo = "keyledger/v1/ed25519"

// PublicKey is the Ed25519 public key that verifies a key's signed
// requests. It is derived from the key's secret (see Secret.SigningKey),
// so the log and every read model can verify a request without holding
// anything that can make one. It encodes as lower-case hex.
type PublicKey [ed25519.PublicKeySize]byte

// IsZero reports whether p is unset (a key created before signed requests
// existed, until its secret is regenerated).
func (p PublicKey) IsZero() bool { return p == PublicKey{} }

// MarshalText implements encoding.TextMarshaler.
func (p PublicKey) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(p)))
	hex.Encode(out, p[:])
	return out, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *PublicKey) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(p) {
		return fmt.Errorf("public key: want %d hex characters, got %d", 2*len(p), len(b))
	}
	_, err := hex.Decode(p[:], b)
	return err
}

// SigningKey derives the Ed25519 private key that signs requests made with
// apiKey and this secret:
//
//	seed = HKDF-SHA-256(ikm = the secret's 32 bytes, salt = apiKey, info = SigningKeyInfo)
//
// where the secret's 32 bytes are the big-endian value of its 43 base62
// digits. Binding the API key as salt gives two keys that somehow shared a
// secret different key pairs. It returns ErrBadCredentials for the zero
// Secret or digits that do not fit 256 bits.
func (s Secret) SigningKey(apiKey string) (ed25519.PrivateKey, error) {
	ikm, ok := s.entropy()
	if !ok {
		return nil, ErrBadCredentials
	}
	seed, err := hkdf.Key(sha256.New, ikm[:], []byte(apiKey), SigningKeyInfo, ed25519.SeedSize)
	if err != nil {
		return nil, Wrap(Internal, err, "")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// PublicKey returns the public half of SigningKey(apiKey).
func (s Secret) PublicKey(apiKey string) (PublicKey, error) {
	priv, err := s.SigningKey(apiKey)
	if err != nil {
		return PublicKey{}, err
	}
	var p PublicKey
	copy(p[:], priv.Public().(ed25519.PublicKey))
	return p, nil
}

// entropy decodes the secret's base62 body back into its 32 bytes.
func (s Secret) entropy() ([secretBytes]byte, bool) {
	var out [secretBytes]byte
	v := s.Reveal()
	if len(v) != SecretLength {
		return out, false
	}
	n, base := new(big.Int), big.NewInt(62)
	for i := len(SecretPrefix); i < len(SecretPrefix)+secretBodyLength; i++ {
		n.Mul(n, base)
		n.Add(n, big.NewInt(int64(base62Digit(v[i]))))
	}
	if n.BitLen() > 8*secretBytes {
		return out, false
	}
	n.FillBytes(out[:])
	return out, true
}

// base62Digit is the value of a base62 character (checked by ParseSecret).
func base62Digit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	default:
		return int(c-'a') + 36
	}
}
