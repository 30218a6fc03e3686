package eventstore

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/domain"
)

// Headers that carry an event's signature: the ledger signs every event it
// appends with its Ed25519 key, over the subject and the exact payload
// bytes, so readers act only on events the ledger wrote.
const (
	HeaderSignature = "Keyledger-Sig"
	HeaderSigner    = "Keyledger-Signer"
)

// signaturePrefix separates event signatures from anything else a key
// might sign.
const signaturePrefix = "keyledger/v1/event\n"

// ErrForged marks a message the ledger did not sign: no signature, a bad
// one, a key nobody trusts, or an event stored on a subject that is not
// its own. Readers skip such messages.
var ErrForged = errors.New("event not signed by a trusted ledger key")

// WithSigningKey sets the Ed25519 key the store signs appended events with.
// A writable store requires it (see ErrNoSigningKey) and opens only if the
// log trusts it (see New); a read-only one refuses it. Given more than
// once, the last one counts.
func WithSigningKey(key ed25519.PrivateKey) Option {
	return func(s *Store) error {
		if len(key) != ed25519.PrivateKeySize {
			return errors.New("signing key: not an Ed25519 private key")
		}
		s.signer = key
		return nil
	}
}

// WithTrustedKeys pins the trust root: the store accepts only a log whose
// genesis is signed by one of keys, and from there follows the log's own
// key events (a key added by a trusted key is trusted too, a retired one
// no longer). A genesis signed by any other key is refused as forged. On a
// log that has no genesis yet (written before trust events existed), the
// pinned keys are trusted from its start. Without a pin a store trusts
// the log's genesis, whoever wrote it: readers outside the ledger's
// operators should pin.
func WithTrustedKeys(keys ...ed25519.PublicKey) Option {
	return func(s *Store) error {
		if len(keys) == 0 {
			return errors.New("trusted keys: none given")
		}
		pins := map[string]ed25519.PublicKey{}
		for _, k := range keys {
			if len(k) != ed25519.PublicKeySize {
				return errors.New("trusted keys: not an Ed25519 public key")
			}
			pins[KeyID(k)] = k
		}
		s.trust.pinned = pins
		return nil
	}
}

// KeyID names a ledger public key: the first 12 characters of the
// base64url SHA-256 of the key.
func KeyID(pub ed25519.PublicKey) string { return domain.LedgerKeyID(pub) }

// EncodePublicKey and DecodePublicKey are the text form of a ledger public
// key (base64url, unpadded), as printed by `keyledger audit pubkey`.
func EncodePublicKey(pub ed25519.PublicKey) string { return base64.RawURLEncoding.EncodeToString(pub) }

// DecodePublicKey parses the text form of a ledger public key.
func DecodePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ledger public key %q: want %d bytes of unpadded base64url", s, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

func signedBytes(subject string, data []byte) []byte {
	b := make([]byte, 0, len(signaturePrefix)+len(subject)+1+len(data))
	b = append(b, signaturePrefix...)
	b = append(b, subject...)
	b = append(b, '\n')
	return append(b, data...)
}

// sign sets the signature headers of m, as Sign, and remembers the
// signature, so that this store's subscriptions recognise the event as
// one it wrote itself (see ownSignatures) instead of verifying it again.
func (s *Store) sign(m *nats.Msg) {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	sig := ed25519.Sign(s.signer, signedBytes(m.Subject, m.Data))
	id := s.signerID // KeyID of the signer, set when the store opens
	if id == "" {
		id = KeyID(s.signer.Public().(ed25519.PublicKey))
	}
	m.Header.Set(HeaderSigner, id)
	m.Header.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))
	s.own.add(ownDigest(m.Subject, m.Data, sig))
}

// Sign sets the signature headers of a message about to be published with
// key: over its subject and payload, which must not change afterwards.
func Sign(key ed25519.PrivateKey, m *nats.Msg) {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	sig := ed25519.Sign(key, signedBytes(m.Subject, m.Data))
	m.Header.Set(HeaderSigner, KeyID(key.Public().(ed25519.PublicKey)))
	m.Header.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))
}
