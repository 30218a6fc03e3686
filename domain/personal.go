package domain

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// DataKeySize is the size of a user's data key (AES-256) and of the key
// email reservations are hashed under.
const DataKeySize = 32

// Personal is what identifies a person in a user's events. It is written
// to the log only sealed (see SealPersonal) under the user's data key:
// destroying that key erases it from every copy of the log at once.
type Personal struct {
	Email        string `json:"email"`
	PasswordHash string `json:"password_hash"`
}

// Sealed is a Personal encrypted with AES-256-GCM: a 12-byte nonce, then the
// ciphertext and its tag, as raw bytes in a string (so that values holding
// one stay comparable). It encodes as standard base64 text.
type Sealed string

// MarshalText implements encoding.TextMarshaler.
func (s Sealed) MarshalText() ([]byte, error) {
	return []byte(base64.StdEncoding.EncodeToString([]byte(s))), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Sealed) UnmarshalText(b []byte) error {
	raw, err := base64.StdEncoding.Strict().DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("sealed personal data: %w", err)
	}
	*s = Sealed(raw)
	return nil
}

// sealPad rounds the plaintext up to a multiple of this many bytes, so that
// a ciphertext's length says little about the email's.
const sealPad = 64

// ErrSealBroken is returned (wrapped) by OpenPersonal when a sealed value
// does not open under the key and binding given: the wrong key, the wrong
// user, event or schema, or altered bytes.
var ErrSealBroken = errors.New("sealed personal data does not open")

// sealAAD binds a ciphertext to the user, event type and schema it was
// written for, so that it cannot be copied into another user's event.
func sealAAD(userID, eventType string, schema int) []byte {
	return []byte("keyledger/personal/v1\x00" + userID + "\x00" + eventType + "\x00" + strconv.Itoa(schema))
}

func personalAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != DataKeySize {
		return nil, Errorf(Internal, "data key must be %d bytes", DataKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, Wrap(Internal, err, "")
	}
	return cipher.NewGCM(block)
}

// SealPersonal encrypts p under key for the user's event of type eventType
// and schema, with a fresh nonce read from random. Errors: Internal.
func SealPersonal(key []byte, userID, eventType string, schema int, p Personal, random io.Reader) (Sealed, error) {
	aead, err := personalAEAD(key)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return "", Wrap(Internal, err, "")
	}
	if n := len(plain) % sealPad; n != 0 {
		plain = append(plain, bytes.Repeat([]byte(" "), sealPad-n)...) // JSON ignores trailing space
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := io.ReadFull(random, out); err != nil {
		return "", Wrap(Internal, err, "")
	}
	return Sealed(aead.Seal(out, out, plain, sealAAD(userID, eventType, schema))), nil
}

// OpenPersonal decrypts what SealPersonal sealed with the same key and
// binding. Errors: Internal, wrapping ErrSealBroken when it does not open.
func OpenPersonal(key []byte, userID, eventType string, schema int, s Sealed) (Personal, error) {
	aead, err := personalAEAD(key)
	if err != nil {
		return Personal{}, err
	}
	if len(s) < aead.NonceSize()+aead.Overhead() {
		return Personal{}, Wrap(Internal, ErrSealBroken, "")
	}
	b := []byte(s)
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], sealAAD(userID, eventType, schema))
	if err != nil {
		return Personal{}, Wrap(Internal, ErrSealBroken, "")
	}
	var p Personal
	if err := json.Unmarshal(plain, &p); err != nil {
		return Personal{}, Wrap(Internal, fmt.Errorf("%w: %v", ErrSealBroken, err), "")
	}
	return p, nil
}

// EmailAggregate returns the aggregate id of an email reservation: the hex
// HMAC-SHA256 of the normalised address under key, a secret every ledger
// instance shares. Without the key, a list of addresses does not tell
// which of them are reserved.
func EmailAggregate(key []byte, normalizedEmail string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(normalizedEmail))
	return hex.EncodeToString(m.Sum(nil))
}

// LegacyEmailAggregate is the aggregate id logs written before keyed
// reservations used: the bare hex SHA-256 of the normalised address. It is
// only read (an address reserved that way stays taken), never written.
func LegacyEmailAggregate(normalizedEmail string) string {
	sum := sha256.Sum256([]byte(normalizedEmail))
	return hex.EncodeToString(sum[:])
}
