package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
	"unicode/utf8"
)

// Identity events. An identity at an OpenID provider (its issuer and the
// subject it names the person by) is an aggregate of its own
// (CategoryIdentity), like an email reservation: its id is a keyed hash
// (IdentityAggregate), so the log never shows whom the provider knows the
// user as, and only the first link of an identity succeeds, or a later one
// once the user holding it is erased.
const (
	TypeIdentityLinked = "identity.linked"
)

// CategoryIdentity is the category of identity aggregates.
const CategoryIdentity = "identity"

// Bounds of the values an OpenID provider sends, checked before anything
// is hashed or sealed.
const (
	MaxIssuerLength  = 512
	MaxSubjectLength = 255 // OpenID Connect Core 1.0, section 2
)

// IdentityLinked records that an identity at an OpenID provider logs in as
// UserID. It is appended with the user's registration (a first login
// through the provider) or on its own (an existing account, once its
// owner confirmed with their password).
type IdentityLinked struct {
	UserID string `json:"user_id"`
}

// EventType implements EventData.
func (IdentityLinked) EventType() string { return TypeIdentityLinked }

// ValidateIdentity checks an issuer and subject as a provider's verified ID
// token gave them: non-empty valid UTF-8 within the bounds, no control
// characters. Errors: Invalid.
func ValidateIdentity(issuer, subject string) error {
	for _, v := range []struct {
		s   string
		max int
	}{{issuer, MaxIssuerLength}, {subject, MaxSubjectLength}} {
		if v.s == "" || len(v.s) > v.max || !utf8.ValidString(v.s) ||
			strings.ContainsFunc(v.s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return Errorf(Invalid, "malformed identity issuer or subject")
		}
	}
	return nil
}

// IdentityAggregate returns the aggregate id of an identity: the hex
// HMAC-SHA256, under key (the key email reservations are hashed under),
// of a label, the issuer and the subject, NUL-separated. The label keeps
// it apart from every email reservation; neither an issuer nor a subject
// holds a NUL (ValidateIdentity), so no two identities share an input.
func IdentityAggregate(key []byte, issuer, subject string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("keyledger/identity/v1\x00" + issuer + "\x00" + subject))
	return hex.EncodeToString(m.Sum(nil))
}

// LinkIdentity is the command that links an identity to a user.
type LinkIdentity struct {
	// Aggregate is the IdentityAggregate of the identity.
	Aggregate string
	UserID    string
	// Identity is the identity aggregate's state so far: zero for an
	// identity never linked, else that of an erased user's, which this
	// link follows.
	Identity Reservation
	Actor    string // empty: the user themself
}

// Link returns the event that links an identity to a user. It returns
// Invalid for a malformed command.
func Link(cmd LinkIdentity, now time.Time) ([]Event, error) {
	if !ValidUserID(cmd.UserID) || !validEmailKey(cmd.Aggregate) {
		return nil, Errorf(Invalid, "malformed user id or identity")
	}
	actor := cmd.Actor
	if actor == "" {
		actor = cmd.UserID
	}
	return []Event{{Type: TypeIdentityLinked, Schema: SchemaOf(TypeIdentityLinked), Aggregate: cmd.Aggregate,
		Version: cmd.Identity.Version + 1, Prev: cmd.Identity.LastHash, Time: now.UTC(), Actor: actor,
		Data: IdentityLinked{UserID: cmd.UserID}}}, nil
}
