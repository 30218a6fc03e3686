package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event types. They are part of the log format: never rename one.
const (
	TypeUserRegistered       = "user.registered"
	TypeEmailReserved        = "email.reserved"
	TypeKeyCreated           = "key.created"
	TypeKeySecretRegenerated = "key.secret_regenerated"
	TypeKeyRevoked           = "key.revoked"
	TypeLogCheckpoint        = "log.checkpoint"
	TypeUserDisabled         = "user.disabled"
	TypeUserEnabled          = "user.enabled"
	TypeUserErased           = "user.erased"
	TypeKeyDisabled          = "key.disabled"
	TypeKeyEnabled           = "key.enabled"
	TypeKeyRenamed           = "key.renamed"
	TypeKeyScopesChanged     = "key.scopes_changed"
	TypeKeyMetadataChanged   = "key.metadata_changed"
	TypeKeyExpiryChanged     = "key.expiry_changed"
	TypeUserPasswordChanged  = "user.password_changed"
	TypeUserSessionsRevoked  = "user.sessions_revoked"
	TypeUserSessionEnded     = "user.session_ended"
	TypeKeyRateLimitChanged  = "key.rate_limit_changed"
	TypeKeyCreditsChanged    = "key.credits_changed"
	TypeKeyCreditsAdded      = "key.credits_added"
)

// Categories name the kind of aggregate an event belongs to; an event type
// starts with its category and a dot.
const (
	CategoryUser  = "user"
	CategoryKey   = "key"
	CategoryEmail = "email"
	CategoryLog   = "log"
)

// CheckpointAggregate is the aggregate id of the log's checkpoints.
const CheckpointAggregate = "checkpoint"

// CurrentSchema is the schema written by this code for event types that
// have not changed since their first schema. SchemaOf gives the schema of
// each type.
const CurrentSchema = 1

// KeySecretSchema is the schema written for key.secret_regenerated (and
// was for key.created): schema 2 adds the public key that verifies signed
// requests (and, for key.created, signed_only). Schema 1 events of both
// types still decode, with no public key. The grace period of the previous
// secret (previous_expires_at) is an optional field of schema 2: a reader
// that does not know it ends the previous secret at once, which is the
// safe side.
const KeySecretSchema = 2

// UserRegisteredSchema is the schema written for user.registered: schema
// 2 keeps the email and password hash sealed under the user's data key
// (Personal) instead of in clear. Schema 1 events still decode, with the
// clear values.
const UserRegisteredSchema = 2

// KeyPolicySchema is the schema written for a key.created without limits
// (KeyLimitsSchema is that of one with them): schema 3 adds scopes and
// metadata. It is a new schema, not an optional field, because
// scopes restrict: a reader that ignored them would let a scoped key do
// everything, where a reader that does not know schema 3 skips the event
// and refuses the key. Schema 1 and 2 events still decode, with no scopes
// and no metadata.
const KeyPolicySchema = 3

// KeyLimitsSchema is the schema written for a key.created that sets a
// rate limit or credits: schema 4 adds them. Like scopes, limits
// restrict, so a reader that does not know schema 4 skips the event and
// refuses the key rather than validate it without its limits. A
// key.created without limits is still written as schema 3
// (KeyPolicySchema), which readers that do not know limits accept.
const KeyLimitsSchema = 4

// KeyTeamSchema is the schema written for a key.created of a key a team
// owns (team_id, and service_account for a service account's key),
// limits or not. A key of a user is still written as schema 3 or 4. It
// is a new schema because ownership decides who may stop a key: a reader
// that did not know team_id would validate the key as its creator's own,
// and a disabled team could not stop it there; a reader that does not
// know schema 5 skips the event and refuses the key.
const KeyTeamSchema = 5

// SchemaOf returns the newest schema this code writes for an event type
// (SchemaFor gives the one it writes for a given payload).
func SchemaOf(eventType string) int {
	switch eventType {
	case TypeKeyCreated:
		return KeyTeamSchema
	case TypeKeySecretRegenerated:
		return KeySecretSchema
	case TypeUserRegistered:
		return UserRegisteredSchema
	}
	return CurrentSchema
}

// SchemaFor returns the schema this code writes for a payload: that of
// its type (SchemaOf), but for key.created the oldest schema that holds
// it: KeyTeamSchema for a team's key, else KeyLimitsSchema for a key with
// limits, else KeyPolicySchema, so that readers that do not know teams or
// limits keep accepting the keys that need neither.
func SchemaFor(d EventData) int {
	if c, ok := d.(KeyCreated); ok {
		switch {
		case c.TeamID != "" || c.ServiceAccount != "":
			return KeyTeamSchema
		case c.RateLimit == nil && c.Credits == nil:
			return KeyPolicySchema
		}
		return KeyLimitsSchema
	}
	return SchemaOf(d.EventType())
}

// ErrUnknownEventType is returned by DecodeEvent for a type (or schema) this
// code does not know. Readers skip such events instead of failing: a newer
// writer may have added them.
var ErrUnknownEventType = errors.New("unknown event type")

// Event is one change to one aggregate, as stored in the log.
//
// Version counts the aggregate's own events (1..n). Prev is the Hash of the
// aggregate's previous event (zero for its first): the events of an
// aggregate form a hash chain. Sequence (the event's position in the whole
// log) and Hash (the SHA-256 of its encoded bytes) are set only on events
// read back from the log and are never encoded.
type Event struct {
	ID        string
	Type      string
	Schema    int
	Aggregate string
	Version   uint64
	Time      time.Time
	Actor     string
	Prev      Hash
	Data      EventData
	// Request, on an event an admin's signed request caused, keeps that
	// request's signature so an auditor can check who asked for it. It
	// is an optional envelope field: events without it encode as before.
	Request  *SignedRequest
	Sequence uint64
	Hash     Hash
}

// Category returns the aggregate kind the event belongs to ("key" for
// "key.created").
func (e Event) Category() string {
	c, _, _ := strings.Cut(e.Type, ".")
	return c
}

// EventData is the type-specific payload of an event.
type EventData interface {
	// EventType returns the event type constant the payload belongs to.
	EventType() string
}

// Hash is a SHA-256 digest. It encodes as lower-case hex.
type Hash [32]byte

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h[:])
	return out, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(h) {
		return fmt.Errorf("hash: want %d hex characters, got %d", 2*len(h), len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// UserRegistered records a new user. Personal (schema 2) is the user's
// email and password hash sealed under the user's data key (see
// SealPersonal); Role is empty for an ordinary user (RoleUser).
//
// Email and PasswordHash (an argon2id PHC string) are set only on schema 1
// events, which kept them in clear; they are never written.
type UserRegistered struct {
	Personal     Sealed `json:"personal"`
	Role         Role   `json:"role,omitempty"`
	Email        string `json:"-"`
	PasswordHash string `json:"-"`
}

// userRegisteredV1 is the schema 1 payload: email and hash in clear.
type userRegisteredV1 struct {
	Email        string `json:"email"`
	PasswordHash string `json:"password_hash"`
	Role         Role   `json:"role,omitempty"`
}

func (d userRegisteredV1) upcast() UserRegistered {
	return UserRegistered{Email: d.Email, PasswordHash: d.PasswordHash, Role: d.Role}
}

// UserErased records that a user's personal data is erased: the user is
// locked out for good, their keys are revoked, and their data key is
// destroyed, so the sealed values in their events no longer open. The
// address's reservation is released: it may register again.
type UserErased struct {
	Reason string `json:"reason,omitempty"`
}

// EventType implements EventData.
func (UserErased) EventType() string { return TypeUserErased }

// UserPasswordChanged records a user's new password. Personal is the
// user's email and the new password's argon2id hash, sealed under the
// user's data key for (user, TypeUserPasswordChanged, schema 1): it
// replaces what user.registered (or an earlier change) sealed. It ends
// every session of the user issued before it.
type UserPasswordChanged struct {
	Personal Sealed `json:"personal"`
}

// EventType implements EventData.
func (UserPasswordChanged) EventType() string { return TypeUserPasswordChanged }

// UserSessionsRevoked records that every session of the user issued
// before it ends, on every instance: the user's session epoch moves on.
type UserSessionsRevoked struct {
	Reason string `json:"reason,omitempty"`
}

// EventType implements EventData.
func (UserSessionsRevoked) EventType() string { return TypeUserSessionsRevoked }

// UserSessionEnded records that one session token (its jti, TokenID) ends
// before its expiry (ExpiresAt): a logout. Readers keep ended tokens until
// they expire, at most MaxEndedSessions per user; one more ends all the
// user's sessions instead (see User.Apply).
type UserSessionEnded struct {
	TokenID   string    `json:"token_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// EventType implements EventData.
func (UserSessionEnded) EventType() string { return TypeUserSessionEnded }

// UserDisabled records that a user may no longer log in, use sessions, or
// have keys validated.
type UserDisabled struct {
	Reason string `json:"reason,omitempty"`
}

// UserEnabled lifts a UserDisabled.
type UserEnabled struct {
	Reason string `json:"reason,omitempty"`
}

// EventType implements EventData.
func (UserDisabled) EventType() string { return TypeUserDisabled }

// EventType implements EventData.
func (UserEnabled) EventType() string { return TypeUserEnabled }

// EmailReserved claims an email address for a user. Its aggregate is
// EmailAggregate(key, email) (LegacyEmailAggregate(email) in older logs);
// only the first reservation of an address succeeds, and a later one only
// once the user holding it is erased.
type EmailReserved struct {
	UserID string `json:"user_id"`
}

// KeyCreated records a new API key. SecretHash is the SHA-256 of the secret;
// the secret itself never enters the log. PublicKey (schema 2) verifies the
// key's signed requests; it is zero in schema 1 events. A SignedOnly key
// refuses its secret sent in headers: only signed requests validate.
// Scopes and Metadata (schema 3, both optional) are what the key is
// allowed to do and the labels validation returns with it (a compact JSON
// object); they are empty in older events. RateLimit and Credits (schema
// 4, both optional) are the key's limits; nil in older events.
type KeyCreated struct {
	UserID     string          `json:"user_id"`
	Name       string          `json:"name,omitempty"`
	SecretHash Hash            `json:"secret_hash"`
	PublicKey  PublicKey       `json:"public_key"`
	SignedOnly bool            `json:"signed_only,omitempty"`
	ExpiresAt  *time.Time      `json:"expires_at,omitempty"`
	Scopes     []string        `json:"scopes,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	RateLimit  *RateLimit      `json:"rate_limit,omitempty"`
	Credits    *Credits        `json:"credits,omitempty"`
	// TeamID and ServiceAccount (schema 5 only) make the key a team's,
	// and one of its service accounts'; UserID is then the member who
	// created it.
	TeamID         string `json:"team_id,omitempty"`
	ServiceAccount string `json:"service_account,omitempty"`
}

// keyCreatedV4 is the schema 4 payload: no team. Decoding it through
// this type keeps stray team fields in an older event from being
// believed.
type keyCreatedV4 struct {
	UserID     string          `json:"user_id"`
	Name       string          `json:"name,omitempty"`
	SecretHash Hash            `json:"secret_hash"`
	PublicKey  PublicKey       `json:"public_key"`
	SignedOnly bool            `json:"signed_only,omitempty"`
	ExpiresAt  *time.Time      `json:"expires_at,omitempty"`
	Scopes     []string        `json:"scopes,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	RateLimit  *RateLimit      `json:"rate_limit,omitempty"`
	Credits    *Credits        `json:"credits,omitempty"`
}

func (d keyCreatedV4) upcast() KeyCreated {
	return KeyCreated{UserID: d.UserID, Name: d.Name, SecretHash: d.SecretHash, PublicKey: d.PublicKey,
		SignedOnly: d.SignedOnly, ExpiresAt: d.ExpiresAt, Scopes: d.Scopes, Metadata: d.Metadata,
		RateLimit: d.RateLimit, Credits: d.Credits}
}

// keyCreatedV3 is the schema 3 payload: no limits. Decoding it through
// this type keeps stray limit fields in an older event from being
// believed.
type keyCreatedV3 struct {
	UserID     string          `json:"user_id"`
	Name       string          `json:"name,omitempty"`
	SecretHash Hash            `json:"secret_hash"`
	PublicKey  PublicKey       `json:"public_key"`
	SignedOnly bool            `json:"signed_only,omitempty"`
	ExpiresAt  *time.Time      `json:"expires_at,omitempty"`
	Scopes     []string        `json:"scopes,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
}

func (d keyCreatedV3) upcast() KeyCreated {
	return KeyCreated{UserID: d.UserID, Name: d.Name, SecretHash: d.SecretHash, PublicKey: d.PublicKey,
		SignedOnly: d.SignedOnly, ExpiresAt: d.ExpiresAt, Scopes: d.Scopes, Metadata: d.Metadata}
}

// KeyRateLimitChanged records a key's rate limit from now on (nil: the
// key has none any more).
type KeyRateLimitChanged struct {
	RateLimit *RateLimit `json:"rate_limit"`
}

// KeyCreditsChanged records a key's credits set anew (nil: the key has
// none any more): the remaining credits from this event on, and the
// refill, anchored at this event's time. It starts a new credit epoch:
// what was spent and added before no longer counts.
type KeyCreditsChanged struct {
	Credits *Credits `json:"credits"`
}

// KeyCreditsAdded records a top-up of a key that has credits: Add more
// credits in its current epoch. Reason is an admin's (optional).
type KeyCreditsAdded struct {
	Add    uint64 `json:"add"`
	Reason string `json:"reason,omitempty"`
}

// EventType implements EventData.
func (KeyRateLimitChanged) EventType() string { return TypeKeyRateLimitChanged }

// EventType implements EventData.
func (KeyCreditsChanged) EventType() string { return TypeKeyCreditsChanged }

// EventType implements EventData.
func (KeyCreditsAdded) EventType() string { return TypeKeyCreditsAdded }

// KeySecretRegenerated records a new secret for a key; the old one stops
// validating, and so do requests signed with the old key pair. PublicKey is
// zero in schema 1 events. With PreviousExpiresAt (optional) the secret
// being replaced keeps validating, by its secret, until that instant: a
// grace period for its users to move to the new one. Without it any
// previous secret's grace period ends.
type KeySecretRegenerated struct {
	SecretHash        Hash       `json:"secret_hash"`
	PublicKey         PublicKey  `json:"public_key"`
	PreviousExpiresAt *time.Time `json:"previous_expires_at,omitempty"`
}

// keyCreatedV2 is the schema 2 payload: no scopes, no metadata. Decoding
// it through this type keeps stray fields of those names in an old event
// from being believed.
type keyCreatedV2 struct {
	UserID     string     `json:"user_id"`
	Name       string     `json:"name,omitempty"`
	SecretHash Hash       `json:"secret_hash"`
	PublicKey  PublicKey  `json:"public_key"`
	SignedOnly bool       `json:"signed_only,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

func (d keyCreatedV2) upcast() KeyCreated {
	return KeyCreated{UserID: d.UserID, Name: d.Name, SecretHash: d.SecretHash, PublicKey: d.PublicKey,
		SignedOnly: d.SignedOnly, ExpiresAt: d.ExpiresAt}
}

// KeyDisabled records that a key is paused: it stops validating until a
// KeyEnabled, and any grace period of its previous secret ends.
type KeyDisabled struct {
	Reason string `json:"reason,omitempty"`
}

// KeyEnabled lifts a KeyDisabled.
type KeyEnabled struct {
	Reason string `json:"reason,omitempty"`
}

// KeyRenamed records a key's new name ("" for none).
type KeyRenamed struct {
	Name string `json:"name"`
}

// KeyScopesChanged records the scopes a key is granted from now on,
// replacing the previous ones (none: the key grants no scope).
type KeyScopesChanged struct {
	Scopes []string `json:"scopes"`
}

// KeyMetadataChanged records a key's new metadata, a compact JSON object,
// replacing the previous one (empty: none).
type KeyMetadataChanged struct {
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// KeyExpiryChanged records a key's new expiry (nil: it never expires).
type KeyExpiryChanged struct {
	ExpiresAt *time.Time `json:"expires_at"`
}

// EventType implements EventData.
func (KeyDisabled) EventType() string { return TypeKeyDisabled }

// EventType implements EventData.
func (KeyEnabled) EventType() string { return TypeKeyEnabled }

// EventType implements EventData.
func (KeyRenamed) EventType() string { return TypeKeyRenamed }

// EventType implements EventData.
func (KeyScopesChanged) EventType() string { return TypeKeyScopesChanged }

// EventType implements EventData.
func (KeyMetadataChanged) EventType() string { return TypeKeyMetadataChanged }

// EventType implements EventData.
func (KeyExpiryChanged) EventType() string { return TypeKeyExpiryChanged }

// keyCreatedV1 and keySecretRegeneratedV1 are the schema 1 payloads: no
// public key. Decoding them through these types keeps a stray public_key
// field in an old event from being believed.
type keyCreatedV1 struct {
	UserID     string     `json:"user_id"`
	Name       string     `json:"name,omitempty"`
	SecretHash Hash       `json:"secret_hash"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

type keySecretRegeneratedV1 struct {
	SecretHash Hash `json:"secret_hash"`
}

// upcast turns schema 1 payloads into the current types.
func (d keyCreatedV1) upcast() KeyCreated {
	return KeyCreated{UserID: d.UserID, Name: d.Name, SecretHash: d.SecretHash, ExpiresAt: d.ExpiresAt}
}

func (d keySecretRegeneratedV1) upcast() KeySecretRegenerated {
	return KeySecretRegenerated{SecretHash: d.SecretHash}
}

// KeyRevoked records that a key stops validating for good.
type KeyRevoked struct {
	Reason string `json:"reason,omitempty"`
}

// LogCheckpoint commits, under the ledger's signature, to the whole log up
// to a stream sequence: Root is the RFC 6962 Merkle tree hash over the
// leaves of stream messages 1..Size, and Foreign lists the sequences in
// (previous checkpoint's Size, Size] that the ledger did not write.
type LogCheckpoint struct {
	Size    uint64   `json:"size"`
	Root    Hash     `json:"root"`
	Foreign []uint64 `json:"foreign,omitempty"`
}

// EventType implements EventData.
func (LogCheckpoint) EventType() string { return TypeLogCheckpoint }

// EventType implements EventData.
func (UserRegistered) EventType() string { return TypeUserRegistered }

// EventType implements EventData.
func (EmailReserved) EventType() string { return TypeEmailReserved }

// EventType implements EventData.
func (KeyCreated) EventType() string { return TypeKeyCreated }

// EventType implements EventData.
func (KeySecretRegenerated) EventType() string { return TypeKeySecretRegenerated }

// EventType implements EventData.
func (KeyRevoked) EventType() string { return TypeKeyRevoked }

// envelope is the JSON form of an Event.
type envelope struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Schema    int             `json:"schema"`
	Aggregate string          `json:"aggregate"`
	Version   uint64          `json:"version"`
	Time      time.Time       `json:"time"`
	Actor     string          `json:"actor"`
	Prev      *Hash           `json:"prev,omitempty"`
	Data      json.RawMessage `json:"data"`
	Request   *SignedRequest  `json:"request,omitempty"`
}

// EncodeEvent returns the JSON envelope of e. Time is written in UTC.
func EncodeEvent(e Event) ([]byte, error) {
	if e.Data == nil {
		return nil, fmt.Errorf("encode %s: no data", e.Type)
	}
	if e.Schema != SchemaFor(e.Data) {
		return nil, fmt.Errorf("encode %s: schema %d: %w", e.Type, e.Schema, ErrUnknownEventType)
	}
	if err := checkEnvelope(e); err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Type, err)
	}
	if e.Data.EventType() != e.Type {
		return nil, fmt.Errorf("encode %s: data is for %s", e.Type, e.Data.EventType())
	}
	if d, ok := e.Data.(UserRegistered); ok && (len(d.Personal) == 0 || d.Email != "" || d.PasswordHash != "") {
		return nil, fmt.Errorf("encode %s: personal data must be sealed, never in clear", e.Type)
	}
	if d, ok := e.Data.(UserPasswordChanged); ok && len(d.Personal) == 0 {
		return nil, fmt.Errorf("encode %s: no sealed personal data", e.Type)
	}
	if d, ok := e.Data.(UserSessionEnded); ok && (!ValidTokenID(d.TokenID) || d.ExpiresAt.IsZero()) {
		return nil, fmt.Errorf("encode %s: malformed token id or no expiry", e.Type)
	}
	if !limitsInBounds(e.Data) {
		return nil, fmt.Errorf("encode %s: limits out of bounds", e.Type)
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Type, err)
	}
	env := envelope{
		ID: e.ID, Type: e.Type, Schema: e.Schema, Aggregate: e.Aggregate,
		Version: e.Version, Time: e.Time.UTC(), Actor: e.Actor, Data: data, Request: e.Request,
	}
	if e.Prev != (Hash{}) {
		env.Prev = &e.Prev
	}
	return json.Marshal(env)
}

// DecodeEvent parses a JSON envelope written by EncodeEvent, in any schema
// this code has ever written. It returns an error wrapping
// ErrUnknownEventType for types or schemas it does not know.
func DecodeEvent(b []byte) (Event, error) {
	if e, ok := decodeFast(b); ok {
		return e, nil
	}
	return decodeEventStd(b)
}

// decodeEventStd is DecodeEvent through encoding/json, for every input.
func decodeEventStd(b []byte) (Event, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	e := Event{
		ID: env.ID, Type: env.Type, Schema: env.Schema, Aggregate: env.Aggregate,
		Version: env.Version, Time: env.Time.UTC(), Actor: env.Actor, Hash: sha256.Sum256(b),
		Request: env.Request,
	}
	if env.Prev != nil {
		e.Prev = *env.Prev
	}
	var data EventData
	switch {
	case env.Schema == 1 && env.Type == TypeUserRegistered:
		data = decodeOld[userRegisteredV1](env.Data)
	case env.Schema == 2 && env.Type == TypeUserRegistered:
		if d, ok := decodeData[UserRegistered](env.Data).(UserRegistered); ok && len(d.Personal) > 0 {
			data = d
		}
	case env.Schema == 1 && env.Type == TypeUserErased:
		data = decodeData[UserErased](env.Data)
	case env.Schema == 1 && env.Type == TypeEmailReserved:
		data = decodeData[EmailReserved](env.Data)
	case env.Schema == 1 && env.Type == TypeKeyCreated:
		data = decodeOld[keyCreatedV1](env.Data)
	case env.Schema == 2 && env.Type == TypeKeyCreated:
		if d, ok := decodeOld[keyCreatedV2](env.Data).(KeyCreated); ok && !d.PublicKey.IsZero() {
			data = d
		}
	case env.Schema == 3 && env.Type == TypeKeyCreated:
		if d, ok := decodeOld[keyCreatedV3](env.Data).(KeyCreated); ok && !d.PublicKey.IsZero() {
			data = d
		}
	case env.Schema == 4 && env.Type == TypeKeyCreated:
		// Schema 4 is written only for a key with limits (SchemaFor).
		if d, ok := decodeOld[keyCreatedV4](env.Data).(KeyCreated); ok && !d.PublicKey.IsZero() &&
			(d.RateLimit != nil || d.Credits != nil) {
			data = d
		}
	case env.Schema == 5 && env.Type == TypeKeyCreated:
		// Schema 5 is written only for a team's key (SchemaFor).
		if d, ok := decodeData[KeyCreated](env.Data).(KeyCreated); ok && !d.PublicKey.IsZero() &&
			ValidTeamID(d.TeamID) && (d.ServiceAccount == "" || ValidServiceAccountID(d.ServiceAccount)) {
			data = d
		}
	case env.Schema == 1 && teamTypes[env.Type]:
		data = decodeTeamEvent(env.Type, env.Data)
	case env.Schema == 1 && env.Type == TypeKeyRateLimitChanged:
		data = decodeData[KeyRateLimitChanged](env.Data)
	case env.Schema == 1 && env.Type == TypeKeyCreditsChanged:
		data = decodeData[KeyCreditsChanged](env.Data)
	case env.Schema == 1 && env.Type == TypeKeyCreditsAdded:
		data = decodeData[KeyCreditsAdded](env.Data)
	case env.Schema == 1 && env.Type == TypeKeySecretRegenerated:
		data = decodeOld[keySecretRegeneratedV1](env.Data)
	case env.Schema == 2 && env.Type == TypeKeySecretRegenerated:
		if d, ok := decodeData[KeySecretRegenerated](env.Data).(KeySecretRegenerated); ok && !d.PublicKey.IsZero() {
			data = d
		}
	case env.Schema == 1 && env.Type == TypeKeyRevoked:
		data = decodeData[KeyRevoked](env.Data)
	case env.Schema == 1 && env.Type == TypeKeyDisabled:
		data = decodeData[KeyDisabled](env.Data)
	case env.Schema == 1 && env.Type == TypeKeyEnabled:
		data = decodeData[KeyEnabled](env.Data)
	case env.Schema == 1 && env.Type == TypeKeyRenamed:
		data = decodeData[KeyRenamed](env.Data)
	case env.Schema == 1 && env.Type == TypeKeyScopesChanged:
		data = decodeData[KeyScopesChanged](env.Data)
	case env.Schema == 1 && env.Type == TypeKeyMetadataChanged:
		data = decodeData[KeyMetadataChanged](env.Data)
	case env.Schema == 1 && env.Type == TypeKeyExpiryChanged:
		data = decodeData[KeyExpiryChanged](env.Data)
	case env.Schema == 1 && env.Type == TypeLogCheckpoint:
		data = decodeData[LogCheckpoint](env.Data)
	case env.Schema == 1 && env.Type == TypeUserPasswordChanged:
		if d, ok := decodeData[UserPasswordChanged](env.Data).(UserPasswordChanged); ok && len(d.Personal) > 0 {
			data = d
		}
	case env.Schema == 1 && env.Type == TypeUserSessionsRevoked:
		data = decodeData[UserSessionsRevoked](env.Data)
	case env.Schema == 1 && env.Type == TypeUserSessionEnded:
		if d, ok := decodeData[UserSessionEnded](env.Data).(UserSessionEnded); ok && ValidTokenID(d.TokenID) && !d.ExpiresAt.IsZero() {
			data = d
		}
	case env.Schema == 1 && env.Type == TypeUserDisabled:
		data = decodeData[UserDisabled](env.Data)
	case env.Schema == 1 && env.Type == TypeUserEnabled:
		data = decodeData[UserEnabled](env.Data)
	case env.Schema == 1 && env.Type == TypeLedgerGenesis:
		data = decodeData[LedgerGenesis](env.Data)
	case env.Schema == 1 && env.Type == TypeLedgerKeyAdded:
		data = decodeData[LedgerKeyAdded](env.Data)
	case env.Schema == 1 && env.Type == TypeLedgerKeyRetired:
		data = decodeData[LedgerKeyRetired](env.Data)
	case env.Schema == 1 && env.Type == TypeAdminKeyEnrolled:
		data = decodeData[AdminKeyEnrolled](env.Data)
	case env.Schema == 1 && env.Type == TypeAdminKeyRevoked:
		data = decodeData[AdminKeyRevoked](env.Data)
	case env.Schema == 1 && env.Type == TypeVerificationRequested:
		data = decodeData[VerificationRequested](env.Data)
	case env.Schema == 1 && env.Type == TypeVerificationCompleted:
		data = decodeData[VerificationCompleted](env.Data)
	case env.Schema == 1 && env.Type == TypeInvitationIssued:
		data = decodeData[InvitationIssued](env.Data)
	case env.Schema == 1 && env.Type == TypeInvitationUsed:
		data = decodeData[InvitationUsed](env.Data)
	case env.Schema == 1 && env.Type == TypeIdentityLinked:
		if d, ok := decodeData[IdentityLinked](env.Data).(IdentityLinked); ok && ValidUserID(d.UserID) {
			data = d
		}
	default:
		return e, fmt.Errorf("decode event %s schema %d: %w", env.Type, env.Schema, ErrUnknownEventType)
	}
	if data == nil || !limitsInBounds(data) {
		return e, fmt.Errorf("decode event %s: bad data", env.Type)
	}
	if err := checkEnvelope(e); err != nil {
		return e, fmt.Errorf("decode event %s: %w", env.Type, err)
	}
	e.Data = data
	return e, nil
}

// checkEnvelope holds writer and reader to the same rules, so nothing is
// written that a reader would reject or skip.
func checkEnvelope(e Event) error {
	switch {
	case e.Schema < 1 || e.Schema > SchemaOf(e.Type):
		return fmt.Errorf("schema %d: %w", e.Schema, ErrUnknownEventType)
	case e.ID == "" || e.Aggregate == "" || e.Version == 0 || e.Time.IsZero():
		return errors.New("incomplete envelope")
	case e.Time.UTC().Year() < 1 || e.Time.UTC().Year() > 9999:
		return errors.New("time out of range")
	}
	return nil
}

// limitsInBounds holds the limits an event carries to the bounds every
// command checks, for writer and reader alike. Out of bounds, a limit
// was set by no command; a refill interval or a window left out would
// read as zero, which cannot be written again.
func limitsInBounds(d EventData) bool {
	switch d := d.(type) {
	case KeyCreated:
		return (d.RateLimit == nil || d.RateLimit.Validate() == nil) && (d.Credits == nil || d.Credits.Validate() == nil)
	case KeyRateLimitChanged:
		return d.RateLimit == nil || d.RateLimit.Validate() == nil
	case KeyCreditsChanged:
		return d.Credits == nil || d.Credits.Validate() == nil
	case KeyCreditsAdded:
		return d.Add >= 1 && d.Add <= MaxCredits
	}
	return true
}

// decodeData decodes raw into a T, or returns nil. Unknown fields are
// ignored: adding an optional field does not bump the schema.
func decodeData[T EventData](raw json.RawMessage) EventData {
	v, ok := decodePayload[T](raw)
	if !ok {
		return nil
	}
	return v
}

// decodeOld decodes a payload of an older schema and upcasts it, or
// returns nil.
func decodeOld[T interface{ upcast() U }, U EventData](raw json.RawMessage) EventData {
	v, ok := decodePayload[T](raw)
	if !ok {
		return nil
	}
	return v.upcast()
}

func decodePayload[T any](raw json.RawMessage) (T, bool) {
	var v T
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &v) != nil {
		return v, false
	}
	return v, true
}
