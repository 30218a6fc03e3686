package eventstore

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Headers that carry an event's signature: the ledger signs every event it
// appends with its Ed25519 key, over the subject and the exact payload
// bytes, so readers act only on events the ledger wrote.
const (
	HeaderSignature = "Keyledger-Sig"
	HeaderSigner    = "Keyledger-Signer"
)

// metadataSigningKeys is the stream metadata entry listing the public keys
// of ledgers allowed to write (comma-separated base64url). Changing stream
// metadata takes JetStream admin rights, not merely the right to publish;
// readers that must not trust even that pin their keys (WithTrustedKeys).
const metadataSigningKeys = "keyledger_signing_keys"

// signaturePrefix separates event signatures from anything else a key
// might sign.
const signaturePrefix = "keyledger/v1/event\n"

// ErrForged marks a message the ledger did not sign: no signature, a bad
// one, a key nobody trusts, or an event stored on a subject that is not
// its own. Readers skip such messages.
var ErrForged = errors.New("event not signed by a trusted ledger key")

// WithSigningKey sets the Ed25519 key the store signs appended events with;
// its public half is registered in the stream's metadata. A writable store
// requires it (see ErrNoSigningKey); a read-only one refuses it. Given more
// than once, the last one counts.
func WithSigningKey(key ed25519.PrivateKey) Option {
	return func(s *Store) error {
		if len(key) != ed25519.PrivateKeySize {
			return errors.New("signing key: not an Ed25519 private key")
		}
		s.signer = key
		return nil
	}
}

// WithTrustedKeys pins the ledger public keys whose signatures readers
// accept, instead of those listed in the stream's metadata.
func WithTrustedKeys(keys ...ed25519.PublicKey) Option {
	return func(s *Store) error {
		if len(keys) == 0 {
			return errors.New("trusted keys: none given")
		}
		for _, k := range keys {
			if len(k) != ed25519.PublicKeySize {
				return errors.New("trusted keys: not an Ed25519 public key")
			}
		}
		s.pinned = true
		s.trust.set(keys)
		return nil
	}
}

// KeyID names a ledger public key: the first 12 characters of the
// base64url SHA-256 of the key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

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

// trustSet is the set of accepted ledger keys, by key id.
type trustSet struct {
	mu        sync.RWMutex
	keys      map[string]ed25519.PublicKey
	refreshed time.Time
}

func (t *trustSet) set(keys []ed25519.PublicKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys = make(map[string]ed25519.PublicKey, len(keys))
	for _, k := range keys {
		t.keys[KeyID(k)] = k
	}
}

func (t *trustSet) get(id string) (ed25519.PublicKey, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	k, ok := t.keys[id]
	return k, ok
}

func (t *trustSet) list() []ed25519.PublicKey {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]ed25519.PublicKey, 0, len(t.keys))
	for _, k := range t.keys {
		out = append(out, k)
	}
	return out
}

func signedBytes(subject string, data []byte) []byte {
	b := make([]byte, 0, len(signaturePrefix)+len(subject)+1+len(data))
	b = append(b, signaturePrefix...)
	b = append(b, subject...)
	b = append(b, '\n')
	return append(b, data...)
}

// sign sets the signature headers of m.
func (s *Store) sign(m *nats.Msg) { Sign(s.signer, m) }

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

// verify checks a stored message's signature against the trusted keys. An
// unknown signer makes it re-read the stream's keys, unless keys are
// pinned, when the message was stored after the keys were last read: a
// ledger registers its key before it writes, so one that joined later is
// trusted without a restart, and old forged messages cost no look-up.
func (s *Store) verify(ctx context.Context, subject string, header nats.Header, data []byte, storedAt time.Time) error {
	id := header.Get(HeaderSigner)
	sig, err := base64.RawURLEncoding.DecodeString(header.Get(HeaderSignature))
	if id == "" || err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: missing or malformed signature", ErrForged)
	}
	key, ok := s.trust.get(id)
	if !ok && !s.pinned {
		s.refreshTrust(ctx, storedAt)
		key, ok = s.trust.get(id)
	}
	if !ok {
		return fmt.Errorf("%w: unknown signer %s", ErrForged, id)
	}
	if !ed25519.Verify(key, signedBytes(subject, data), sig) {
		return fmt.Errorf("%w: bad signature by %s", ErrForged, id)
	}
	return nil
}

// clockSkew is how far the NATS server's clock (which stamps stored
// messages) may run behind this one without a new ledger's events being
// refused.
const clockSkew = 5 * time.Minute

// refreshTrust re-reads the signing keys from the stream's metadata,
// unless they were read well after storedAt.
func (s *Store) refreshTrust(ctx context.Context, storedAt time.Time) {
	s.trust.mu.RLock()
	fresh := s.trust.refreshed.Add(-clockSkew).After(storedAt)
	s.trust.mu.RUnlock()
	if fresh {
		return
	}
	asOf := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return
	}
	if keys := parseKeyList(info.Config.Metadata[metadataSigningKeys]); len(keys) > 0 {
		s.trust.set(keys)
		s.trust.mu.Lock()
		s.trust.refreshed = asOf
		s.trust.mu.Unlock()
	}
}

// TrustedKeys returns the ledger public keys the store accepts.
func (s *Store) TrustedKeys() []ed25519.PublicKey { return s.trust.list() }

// SigningKey returns the public key the store signs with (nil for a
// read-only store).
func (s *Store) SigningKey() ed25519.PublicKey {
	if s.signer == nil {
		return nil
	}
	return s.signer.Public().(ed25519.PublicKey)
}

func parseKeyList(v string) []ed25519.PublicKey {
	var keys []ed25519.PublicKey
	for _, part := range strings.Split(v, ",") {
		if k, err := DecodePublicKey(part); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// setUpSigning prepares signing and trust once the stream is known: a
// writable store registers its public key in the stream's metadata; a
// reader loads the listed keys unless it has pinned its own.
func (s *Store) setUpSigning(ctx context.Context) error {
	if s.signer != nil {
		s.signerID = KeyID(s.SigningKey())
		if err := s.registerKey(ctx); err != nil {
			return err
		}
	}
	if !s.pinned {
		keys := parseKeyList(s.stream.CachedInfo().Config.Metadata[metadataSigningKeys])
		if len(keys) == 0 && s.readOnly {
			return fmt.Errorf("stream %s lists no ledger signing keys: start the ledger first, or pin its key", s.name)
		}
		s.trust.set(keys)
		s.trust.refreshed = time.Now()
	}
	return nil
}

// registerKey adds the store's public key to the stream's metadata if it
// is not there, and checks that it stuck (two ledgers may race).
func (s *Store) registerKey(ctx context.Context) error {
	mine := EncodePublicKey(s.SigningKey())
	for attempt := 0; attempt < 5; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, s.timeout)
		info, err := s.stream.Info(rctx)
		if err != nil {
			cancel()
			return fmt.Errorf("stream %s: %w", s.name, err)
		}
		cfg := info.Config
		listed := strings.Split(cfg.Metadata[metadataSigningKeys], ",")
		if slices.Contains(listed, mine) {
			cancel()
			return nil
		}
		if cfg.Metadata == nil {
			cfg.Metadata = map[string]string{}
		}
		cfg.Metadata[metadataSigningKeys] = strings.Trim(cfg.Metadata[metadataSigningKeys]+","+mine, ",")
		stream, err := s.js.UpdateStream(rctx, cfg)
		cancel()
		if err != nil {
			return fmt.Errorf("register signing key on stream %s: %w", s.name, err)
		}
		s.stream = stream
	}
	return fmt.Errorf("register signing key on stream %s: lost the race five times", s.name)
}
