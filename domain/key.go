package domain

import (
	"crypto/subtle"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// KeyStatus is what a key is at a given time.
type KeyStatus string

// Key statuses.
const (
	StatusActive  KeyStatus = "active"
	StatusRevoked KeyStatus = "revoked"
	StatusExpired KeyStatus = "expired"
)

// MaxKeyNameLength is the longest key name, in characters.
const MaxKeyNameLength = 100

// Key is the API-key aggregate: the state folded from its events. The zero
// Key is a key that does not exist yet. Apply is its only mutator.
type Key struct {
	APIKey              string
	UserID              string
	Name                string
	SecretHash          Hash
	PublicKey           PublicKey // verifies signed requests; zero for keys from before them
	SignedOnly          bool      // the secret itself is refused: only signed requests validate
	CreatedAt           time.Time
	ExpiresAt           time.Time // zero: never expires
	SecretRegeneratedAt time.Time // zero: never regenerated
	RevokedAt           time.Time // zero: not revoked
	Version             uint64
	LastHash            Hash // Hash of the last event applied: the next event's Prev
}

// Exists reports whether the key has been created.
func (k *Key) Exists() bool { return k.Version > 0 }

// Revoked reports whether the key has been revoked.
func (k *Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// Standing returns what decides whether the key may be used;
// ownerDisabled says whether its owner is disabled, which the key itself
// does not know.
func (k *Key) Standing(ownerDisabled bool) Standing {
	return Standing{Exists: k.Exists(), Revoked: k.Revoked(), ExpiresAt: k.ExpiresAt, SignedOnly: k.SignedOnly,
		CanSign: !k.PublicKey.IsZero(), OwnerDisabled: ownerDisabled}
}

// Usable returns whether the key is in force at now, its credential
// aside: ReasonOK, or ReasonUnknownKey, ReasonRevoked, ReasonExpired,
// ReasonUserDisabled (see Standing.Decide).
func (k *Key) Usable(now time.Time, ownerDisabled bool) Reason {
	return k.Standing(ownerDisabled).Decide(now)
}

// StatusAt returns the key's status at now (see Standing.Status). A key
// that does not exist is reported active: check Exists first.
func (k *Key) StatusAt(now time.Time) KeyStatus {
	return k.Standing(false).Status(now)
}

// Apply folds one event into the key. It is used for new events and replay
// alike, and rejects events that do not follow the key's history.
func (k *Key) Apply(e Event) error {
	if e.Version != k.Version+1 {
		return fmt.Errorf("apply %s to %s: version %d after %d", e.Type, e.Aggregate, e.Version, k.Version)
	}
	if k.Exists() && e.Aggregate != k.APIKey {
		return fmt.Errorf("apply %s of %s to key %s", e.Type, e.Aggregate, k.APIKey)
	}
	switch d := e.Data.(type) {
	case KeyCreated:
		if k.Exists() {
			return fmt.Errorf("apply %s to %s: key exists", e.Type, e.Aggregate)
		}
		k.APIKey, k.UserID, k.Name, k.SecretHash, k.CreatedAt = e.Aggregate, d.UserID, d.Name, d.SecretHash, e.Time
		k.PublicKey, k.SignedOnly = d.PublicKey, d.SignedOnly
		if d.ExpiresAt != nil {
			k.ExpiresAt = d.ExpiresAt.UTC()
		}
	case KeySecretRegenerated:
		if !k.Exists() || k.Revoked() {
			return fmt.Errorf("apply %s to %s: key missing or revoked", e.Type, e.Aggregate)
		}
		k.SecretHash, k.PublicKey, k.SecretRegeneratedAt = d.SecretHash, d.PublicKey, e.Time
	case KeyRevoked:
		if !k.Exists() || k.Revoked() {
			return fmt.Errorf("apply %s to %s: key missing or revoked", e.Type, e.Aggregate)
		}
		k.RevokedAt = e.Time
	default:
		return fmt.Errorf("apply %s to key %s: not a key event", e.Type, e.Aggregate)
	}
	k.Version, k.LastHash = e.Version, e.Hash
	return nil
}

// CreateKey is the command that makes a new key for a user.
type CreateKey struct {
	APIKey     string    // a fresh NewAPIKey value
	UserID     string    // the owner
	Name       string    // optional label
	SecretHash Hash      // SHA-256 of the new secret
	PublicKey  PublicKey // the new secret's PublicKey(APIKey)
	SignedOnly bool      // refuse the secret in headers; accept only signed requests
	ExpiresAt  time.Time // zero: never
}

// Create returns the events that create the key described by cmd. k must be
// the zero Key. It returns Invalid for a bad name or an expiry not in the
// future, and Conflict if the key exists.
func (k *Key) Create(cmd CreateKey, now time.Time) ([]Event, error) {
	if k.Exists() {
		return nil, Errorf(Conflict, "key already exists")
	}
	if !ValidAPIKey(cmd.APIKey) {
		return nil, Errorf(Invalid, "malformed api key")
	}
	if !ValidUserID(cmd.UserID) {
		return nil, Errorf(Invalid, "malformed owner id")
	}
	if cmd.SecretHash == (Hash{}) || cmd.PublicKey.IsZero() {
		return nil, Errorf(Invalid, "missing secret hash or public key")
	}
	if err := ValidateKeyName(cmd.Name); err != nil {
		return nil, err
	}
	d := KeyCreated{UserID: cmd.UserID, Name: cmd.Name, SecretHash: cmd.SecretHash, PublicKey: cmd.PublicKey,
		SignedOnly: cmd.SignedOnly}
	if !cmd.ExpiresAt.IsZero() {
		if !cmd.ExpiresAt.After(now) {
			return nil, Errorf(Invalid, "expires_at must be in the future")
		}
		t := cmd.ExpiresAt.UTC()
		d.ExpiresAt = &t
	}
	return k.record(cmd.APIKey, cmd.UserID, now, d)
}

// Revoke returns the events that revoke the key on behalf of userID. Only
// the owner may revoke: anyone else gets NotFound, exactly like a missing
// key. Revoking a revoked key returns no events and no error.
func (k *Key) Revoke(userID string, now time.Time) ([]Event, error) {
	if err := k.checkOwner(userID); err != nil {
		return nil, err
	}
	if k.Revoked() {
		return nil, nil
	}
	return k.record(k.APIKey, userID, now, KeyRevoked{})
}

// RevokeAsAdmin returns the events that revoke the key on behalf of an
// admin (actor "admin:<name>"), whoever owns it, recording the reason.
// Revoking a revoked key returns no events. Errors: NotFound, Invalid.
func (k *Key) RevokeAsAdmin(actor, reason string, now time.Time) ([]Event, error) {
	if !k.Exists() {
		return nil, Errorf(NotFound, "api key not found")
	}
	if k.Revoked() {
		return nil, nil
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	return k.record(k.APIKey, actor, now, KeyRevoked{Reason: reason})
}

// RegenerateSecret returns the events that replace the key's secret with
// the one hashed to newHash and its public key with newPublic, on behalf of
// userID. It returns NotFound for a missing key or one userID does not
// own, Conflict for a revoked or expired key, and Invalid for a missing
// hash or public key.
func (k *Key) RegenerateSecret(userID string, newHash Hash, newPublic PublicKey, now time.Time) ([]Event, error) {
	if err := k.checkOwner(userID); err != nil {
		return nil, err
	}
	if newHash == (Hash{}) || newPublic.IsZero() {
		return nil, Errorf(Invalid, "missing secret hash or public key")
	}
	switch k.StatusAt(now) {
	case StatusRevoked:
		return nil, Errorf(Conflict, "key is revoked")
	case StatusExpired:
		return nil, Errorf(Conflict, "key has expired")
	}
	return k.record(k.APIKey, userID, now, KeySecretRegenerated{SecretHash: newHash, PublicKey: newPublic})
}

// CheckSecret decides a validation of the key by secret at now, with
// ownerDisabled saying whether its owner is disabled: ReasonOK, or the
// reason for refusing (see Standing.DecideSecret). The hash comparison
// takes constant time.
func (k *Key) CheckSecret(secret Secret, ownerDisabled bool, now time.Time) Reason {
	return k.Standing(ownerDisabled).DecideSecret(SecretMatches(k.SecretHash, secret), now)
}

// SecretMatches reports whether secret hashes to stored: one SHA-256 and a
// constant-time compare, whatever the inputs. A zero Secret never matches.
func SecretMatches(stored Hash, secret Secret) bool {
	h := secret.Hash()
	return subtle.ConstantTimeCompare(h[:], stored[:]) == 1 && !secret.IsZero()
}

func (k *Key) checkOwner(userID string) error {
	if !k.Exists() || k.UserID != userID {
		return Errorf(NotFound, "api key not found")
	}
	return nil
}

// record builds one event that follows the key's current version, and
// checks it applies.
func (k *Key) record(apiKey, actor string, now time.Time, d EventData) ([]Event, error) {
	e := Event{
		Type: d.EventType(), Schema: SchemaOf(d.EventType()), Aggregate: apiKey,
		Version: k.Version + 1, Time: now.UTC(), Actor: actor, Prev: k.LastHash, Data: d,
	}
	probe := *k
	if err := probe.Apply(e); err != nil {
		return nil, Wrap(Internal, err, "")
	}
	return []Event{e}, nil
}

// ValidateKeyName checks a key's optional label: at most MaxKeyNameLength
// characters, valid UTF-8, no control characters, no surrounding spaces.
func ValidateKeyName(name string) error {
	switch {
	case !utf8.ValidString(name):
		return Errorf(Invalid, "name must be valid UTF-8")
	case utf8.RuneCountInString(name) > MaxKeyNameLength:
		return Errorf(Invalid, "name must be at most %d characters", MaxKeyNameLength)
	case strings.TrimSpace(name) != name:
		return Errorf(Invalid, "name must not start or end with spaces")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return Errorf(Invalid, "name must not contain control characters")
	}
	return nil
}
