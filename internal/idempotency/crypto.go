package idempotency

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"

	"github.com/keyledger/keyledger/domain"
)

// SecretSize is the size of the server-held secret New takes.
const SecretSize = 32

// Labels that keep the hashes and keys of this package apart from each
// other and from anything else.
const (
	labelName        = "keyledger/v1/idempotency/name"
	labelSalt        = "keyledger/v1/idempotency/salt"
	labelFingerprint = "keyledger/v1/idempotency/fingerprint"
	infoRecordKey    = "keyledger/v1/idempotency"
)

// formatV1 is the first byte of every stored value: AES-256-GCM, then the
// 12-byte nonce, then the ciphertext of the record's JSON.
const formatV1 = 1

// claim derives a record's name and cipher from its key.
//
// The name is SHA-256 over (scope, Idempotency-Key): it needs no secret,
// so it stays the same when the server's secret changes and an old record
// is then found (and refused as unreadable) rather than missed (and the
// command run twice). The record's encryption key is HKDF-SHA-256 of the
// server's secret, salted with another hash of (scope, Idempotency-Key):
// reading a record takes both the secret and the client's key.
func (s *Store) claim(key Key, fp [32]byte) (*Claim, error) {
	name := digest(labelName, key.Scope, key.Value)
	salt := digest(labelSalt, key.Scope, key.Value)
	k, err := hkdf.Key(sha256.New, s.secret, salt[:], infoRecordKey, 32)
	if err != nil {
		return nil, domain.Wrap(domain.Internal, err, "")
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, domain.Wrap(domain.Internal, err, "")
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, domain.Wrap(domain.Internal, err, "")
	}
	return &Claim{name: hex.EncodeToString(name[:]), aead: aead, fingerprint: fp[:]}, nil
}

// seal encrypts a record, bound to the record's name.
func (c *Claim) seal(r record) ([]byte, error) {
	plain, err := json.Marshal(r)
	if err != nil {
		return nil, domain.Wrap(domain.Internal, err, "")
	}
	out := make([]byte, 1+c.aead.NonceSize(), 1+c.aead.NonceSize()+len(plain)+c.aead.Overhead())
	out[0] = formatV1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, domain.Wrap(domain.Internal, err, "")
	}
	return c.aead.Seal(out, out[1:], plain, []byte(c.name)), nil
}

// open decrypts a stored value. Errors: unreadable (IdempotencyKeyReused)
// for a value in another format, stored under another name, or sealed with
// another secret.
func (c *Claim) open(value []byte) (record, error) {
	n := c.aead.NonceSize()
	if len(value) < 1+n || value[0] != formatV1 {
		return record{}, unreadable
	}
	plain, err := c.aead.Open(nil, value[1:1+n], value[1+n:], []byte(c.name))
	if err != nil {
		return record{}, unreadable
	}
	return decode(plain)
}

// digest is SHA-256 over a label and fields, each prefixed with its
// length, so that no two lists of fields hash alike.
func digest(label string, fields ...string) [32]byte {
	h := sha256.New()
	writeField(h, []byte(label))
	for _, f := range fields {
		writeField(h, []byte(f))
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// Fingerprint identifies a request: SHA-256 over its method, route
// pattern, path values, scope and exact body bytes. A retry must send the
// same; anything else with the same Idempotency-Key is ErrReused.
func Fingerprint(method, route string, pathValues []string, scope string, body []byte) [32]byte {
	h := sha256.New()
	writeField(h, []byte(labelFingerprint))
	writeField(h, []byte(method))
	writeField(h, []byte(route))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(pathValues)))
	h.Write(n[:])
	for _, v := range pathValues {
		writeField(h, []byte(v))
	}
	writeField(h, []byte(scope))
	writeField(h, body)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// MaxKeyLength is the longest Idempotency-Key accepted.
const MaxKeyLength = 255

// ValidateKey checks an Idempotency-Key header value: 1 to MaxKeyLength
// printable ASCII characters (space to tilde). Errors: Invalid.
func ValidateKey(v string) error {
	if len(v) == 0 || len(v) > MaxKeyLength {
		return domain.Errorf(domain.Invalid, "Idempotency-Key must be 1 to %d characters", MaxKeyLength)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return domain.Errorf(domain.Invalid, "Idempotency-Key must be printable ASCII")
		}
	}
	return nil
}

// unreadable is the answer for a record this server cannot read: written
// under another server secret (the ledger's signing key was rotated) or
// not by this code. Whether it holds this request's outcome cannot be
// known, so the key cannot be used again; the request can, with a new key.
var unreadable = domain.Errorf(domain.IdempotencyKeyReused,
	"the record of this Idempotency-Key cannot be read (the server's key changed); send the request with a new Idempotency-Key")
