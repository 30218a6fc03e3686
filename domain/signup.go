package domain

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"
)

// Sign-up events. An email verification is an aggregate of its own
// (CategoryVerification, aggregate: the user id) and so is an invitation
// (CategoryInvitation, aggregate: the invitation id): each is appended in
// the same atomic batch as the registration it belongs to, so a user
// registered in verified mode is never without its pending verification,
// and an invitation is used exactly once whatever the races.
const (
	TypeVerificationRequested = "verification.requested"
	TypeVerificationCompleted = "verification.completed"
	TypeInvitationIssued      = "invitation.issued"
	TypeInvitationUsed        = "invitation.used"
)

// Categories of the sign-up aggregates.
const (
	CategoryVerification = "verification"
	CategoryInvitation   = "invitation"
)

// InvitationIDPrefix starts an invitation id; a ULID follows.
const InvitationIDPrefix = "inv_"

// Sign-up bounds.
const (
	// VerificationTTL is how long a verification link works.
	VerificationTTL = 24 * time.Hour
	// ResendInterval is the least time between two verification links for
	// one account: asking more often sends nothing.
	ResendInterval = time.Minute
	// DefaultInvitationTTL and MaxInvitationTTL bound how long an
	// invitation works.
	DefaultInvitationTTL = 7 * 24 * time.Hour
	MaxInvitationTTL     = 30 * 24 * time.Hour
)

// tokenSecretLength is the base64url width of a token's 256 random bits.
const tokenSecretLength = 43

// MaxTokenLength bounds a token as parsed, before anything else.
const MaxTokenLength = 128

// Token is a single-use token of the sign-up flows: the aggregate it
// belongs to (a user id or an invitation id), a dot, and 256 random bits in
// base64url. The log keeps only its Hash. Its String is redacted.
type Token struct {
	Aggregate string
	secret    string
}

// NewToken draws a token for an aggregate from random.
func NewToken(aggregate string, random io.Reader) (Token, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(random, b); err != nil {
		return Token{}, Wrap(Internal, err, "")
	}
	return Token{Aggregate: aggregate, secret: base64.RawURLEncoding.EncodeToString(b)}, nil
}

// errBadToken is the one error of every malformed token: it says nothing
// of what was wrong.
var errBadToken = Errorf(Invalid, "malformed token")

// ParseToken parses a token as NewToken formats it. Errors: Invalid.
func ParseToken(s string) (Token, error) {
	if len(s) > MaxTokenLength {
		return Token{}, errBadToken
	}
	agg, secret, ok := strings.Cut(s, ".")
	if !ok || !(ValidUserID(agg) || ValidInvitationID(agg)) || len(secret) != tokenSecretLength {
		return Token{}, errBadToken
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(secret)
	if err != nil || len(b) != 32 {
		return Token{}, errBadToken
	}
	return Token{Aggregate: agg, secret: secret}, nil
}

// Reveal returns the token in full, for the one message that carries it.
func (t Token) Reveal() string { return t.Aggregate + "." + t.secret }

// IsZero reports whether t is the zero Token.
func (t Token) IsZero() bool { return t.secret == "" }

// String implements fmt.Stringer without the secret part.
func (t Token) String() string { return t.Aggregate + ".[REDACTED]" }

// GoString implements fmt.GoStringer without the secret part.
func (t Token) GoString() string { return "domain.Token{REDACTED}" }

// Hash returns the SHA-256 of the whole token: what the log keeps.
func (t Token) Hash() Hash { return sha256.Sum256([]byte(t.Reveal())) }

// matches compares t's hash with a stored one in constant time.
func (t Token) matches(stored Hash) bool {
	h := t.Hash()
	return !t.IsZero() && subtle.ConstantTimeCompare(h[:], stored[:]) == 1
}

// ValidInvitationID reports whether s has the form of an invitation id.
func ValidInvitationID(s string) bool {
	return strings.HasPrefix(s, InvitationIDPrefix) && validULID(s[len(InvitationIDPrefix):])
}

// InvitationEmailBinding ties an invitation to one address without putting
// the address in the log: a hash of the token's secret and the normalised
// address. Only the token's holder, who knows the address anyway, can test
// an address against it.
func InvitationEmailBinding(t Token, normalizedEmail string) Hash {
	return sha256.Sum256([]byte("keyledger invitation email\x00" + t.secret + "\x00" + normalizedEmail))
}

// VerificationRequested records that an account's email address must be
// proven before the account can be used: TokenHash is the hash of the
// token sent to the address, good until ExpiresAt. A later one replaces
// the token of an earlier one.
type VerificationRequested struct {
	TokenHash Hash      `json:"token_hash"`
	ExpiresAt time.Time `json:"expires_at"`
}

// VerificationCompleted records that the address's owner followed the
// link: the account is usable.
type VerificationCompleted struct{}

// InvitationIssued records an admin's invitation to register. EmailBinding,
// if set, limits it to one address (see InvitationEmailBinding).
type InvitationIssued struct {
	TokenHash    Hash      `json:"token_hash"`
	EmailBinding *Hash     `json:"email_binding,omitempty"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// InvitationUsed records the registration an invitation let in; an
// invitation is used once.
type InvitationUsed struct {
	UserID string `json:"user_id"`
}

// EventType implements EventData.
func (VerificationRequested) EventType() string { return TypeVerificationRequested }

// EventType implements EventData.
func (VerificationCompleted) EventType() string { return TypeVerificationCompleted }

// EventType implements EventData.
func (InvitationIssued) EventType() string { return TypeInvitationIssued }

// EventType implements EventData.
func (InvitationUsed) EventType() string { return TypeInvitationUsed }

// Verification is the email verification of one account (its aggregate id
// is the user id). An account with no Verification never needed one.
// Apply is its only mutator.
type Verification struct {
	UserID      string
	Pending     bool // registered, address not yet proven
	TokenHash   Hash
	RequestedAt time.Time
	ExpiresAt   time.Time
	Version     uint64
	LastHash    Hash
}

// Exists reports whether the account ever needed a verification.
func (v *Verification) Exists() bool { return v.Version > 0 }

// Apply folds one event into the verification.
func (v *Verification) Apply(e Event) error {
	if e.Version != v.Version+1 || (v.Exists() && e.Aggregate != v.UserID) {
		return fmt.Errorf("apply %s to verification %s: version %d after %d", e.Type, e.Aggregate, e.Version, v.Version)
	}
	switch d := e.Data.(type) {
	case VerificationRequested:
		if v.Exists() && !v.Pending {
			return fmt.Errorf("apply %s to %s: already verified", e.Type, e.Aggregate)
		}
		v.UserID, v.Pending, v.TokenHash, v.RequestedAt, v.ExpiresAt = e.Aggregate, true, d.TokenHash, e.Time, d.ExpiresAt.UTC()
	case VerificationCompleted:
		if !v.Pending {
			return fmt.Errorf("apply %s to %s: nothing pending", e.Type, e.Aggregate)
		}
		v.Pending, v.TokenHash = false, Hash{}
	default:
		return fmt.Errorf("apply %s to verification %s: not a verification event", e.Type, e.Aggregate)
	}
	v.Version, v.LastHash = e.Version, e.Hash
	return nil
}

// ErrVerificationInvalid is the one answer to a verification token that
// does not work: unknown, wrong, used or expired alike.
var ErrVerificationInvalid = Errorf(Invalid, "the verification token is invalid, used or expired: ask for a new link")

// ErrAlreadyVerified refuses a new link for an account already verified.
var ErrAlreadyVerified = Errorf(Conflict, "the address is already verified")

// ErrResendTooSoon refuses a new link asked for within ResendInterval of
// the last one.
var ErrResendTooSoon = Errorf(RateLimited, "a verification link was sent moments ago")

// Request returns the events that send the account (userID) a new
// verification token, valid VerificationTTL from now: the first at
// registration, or one that replaces the token of a pending one.
// Errors: Invalid (user id), Conflict (ErrAlreadyVerified), RateLimited
// (ErrResendTooSoon).
func (v *Verification) Request(userID string, token Token, now time.Time) ([]Event, error) {
	if !ValidUserID(userID) || token.Aggregate != userID || token.IsZero() {
		return nil, Errorf(Invalid, "malformed user id or token")
	}
	if v.Exists() {
		if !v.Pending {
			return nil, ErrAlreadyVerified
		}
		if now.Before(v.RequestedAt.Add(ResendInterval)) {
			return nil, ErrResendTooSoon
		}
	}
	now = now.UTC()
	return v.record(userID, userID, now, VerificationRequested{TokenHash: token.Hash(), ExpiresAt: now.Add(VerificationTTL)})
}

// Complete returns the event that marks the account verified, if token is
// its current token and has not expired. Errors: Invalid
// (ErrVerificationInvalid).
func (v *Verification) Complete(token Token, now time.Time) ([]Event, error) {
	if !v.Pending || token.Aggregate != v.UserID || !token.matches(v.TokenHash) || !now.Before(v.ExpiresAt) {
		return nil, ErrVerificationInvalid
	}
	return v.record(v.UserID, v.UserID, now, VerificationCompleted{})
}

func (v *Verification) record(aggregate, actor string, now time.Time, d EventData) ([]Event, error) {
	e := Event{Type: d.EventType(), Schema: SchemaOf(d.EventType()), Aggregate: aggregate, Version: v.Version + 1,
		Time: now.UTC(), Actor: actor, Prev: v.LastHash, Data: d}
	probe := *v
	if err := probe.Apply(e); err != nil {
		return nil, Wrap(Internal, err, "")
	}
	return []Event{e}, nil
}

// Invitation is an admin's single-use invitation to register. Apply is its
// only mutator.
type Invitation struct {
	ID           string
	TokenHash    Hash
	EmailBinding Hash // zero: any address
	IssuedAt     time.Time
	IssuedBy     string
	ExpiresAt    time.Time
	UsedBy       string // the user registered with it ("": unused)
	Version      uint64
	LastHash     Hash
}

// Exists reports whether the invitation was issued.
func (i *Invitation) Exists() bool { return i.Version > 0 }

// Apply folds one event into the invitation.
func (i *Invitation) Apply(e Event) error {
	if e.Version != i.Version+1 || (i.Exists() && e.Aggregate != i.ID) {
		return fmt.Errorf("apply %s to invitation %s: version %d after %d", e.Type, e.Aggregate, e.Version, i.Version)
	}
	switch d := e.Data.(type) {
	case InvitationIssued:
		if i.Exists() {
			return fmt.Errorf("apply %s to %s: already issued", e.Type, e.Aggregate)
		}
		i.ID, i.TokenHash, i.IssuedAt, i.IssuedBy, i.ExpiresAt = e.Aggregate, d.TokenHash, e.Time, e.Actor, d.ExpiresAt.UTC()
		if d.EmailBinding != nil {
			i.EmailBinding = *d.EmailBinding
		}
	case InvitationUsed:
		if !i.Exists() || i.UsedBy != "" {
			return fmt.Errorf("apply %s to %s: missing or used", e.Type, e.Aggregate)
		}
		i.UsedBy = d.UserID
	default:
		return fmt.Errorf("apply %s to invitation %s: not an invitation event", e.Type, e.Aggregate)
	}
	i.Version, i.LastHash = e.Version, e.Hash
	return nil
}

// IssueInvitation is the command that issues an invitation.
type IssueInvitation struct {
	Token     Token     // a NewToken of a fresh invitation id
	Email     string    // optional: the one address it admits (normalised here)
	ExpiresAt time.Time // after now, at most MaxInvitationTTL later
	Actor     string    // the admin
}

// Issue returns the event that issues the invitation cmd describes.
// Errors: Invalid (id, email, expiry), Conflict (the id is taken).
func (i *Invitation) Issue(cmd IssueInvitation, now time.Time) ([]Event, error) {
	if !ValidInvitationID(cmd.Token.Aggregate) || cmd.Token.IsZero() {
		return nil, Errorf(Invalid, "malformed invitation id")
	}
	if i.Exists() {
		return nil, Errorf(Conflict, "invitation already exists")
	}
	switch {
	case !cmd.ExpiresAt.After(now):
		return nil, Errorf(Invalid, "expires_in must be positive")
	case cmd.ExpiresAt.Sub(now) > MaxInvitationTTL:
		return nil, Errorf(Invalid, "an invitation works for at most %v", MaxInvitationTTL)
	}
	d := InvitationIssued{TokenHash: cmd.Token.Hash(), ExpiresAt: cmd.ExpiresAt.UTC()}
	if cmd.Email != "" {
		email, err := NormalizeEmail(cmd.Email)
		if err != nil {
			return nil, err
		}
		b := InvitationEmailBinding(cmd.Token, email)
		d.EmailBinding = &b
	}
	return i.record(cmd.Token.Aggregate, cmd.Actor, now, d)
}

// ErrInvitationInvalid is the one answer to an invitation that does not
// admit a registration: unknown, wrong, used, expired or for another
// address alike.
var ErrInvitationInvalid = Errorf(Forbidden, "the invitation is invalid, used, expired or for another address")

// Admits reports whether token, presented with the normalised email,
// may be used now. Errors: Forbidden (ErrInvitationInvalid).
func (i *Invitation) Admits(token Token, normalizedEmail string, now time.Time) error {
	if !i.Exists() || i.UsedBy != "" || token.Aggregate != i.ID || !token.matches(i.TokenHash) || !now.Before(i.ExpiresAt) {
		return ErrInvitationInvalid
	}
	if i.EmailBinding != (Hash{}) {
		b := InvitationEmailBinding(token, normalizedEmail)
		if subtle.ConstantTimeCompare(b[:], i.EmailBinding[:]) != 1 {
			return ErrInvitationInvalid
		}
	}
	return nil
}

// Use returns the event that spends the invitation on the registration of
// userID with the normalised email. Errors: Forbidden (ErrInvitationInvalid),
// Invalid (user id).
func (i *Invitation) Use(token Token, normalizedEmail, userID string, now time.Time) ([]Event, error) {
	if err := i.Admits(token, normalizedEmail, now); err != nil {
		return nil, err
	}
	if !ValidUserID(userID) {
		return nil, Errorf(Invalid, "malformed user id")
	}
	return i.record(i.ID, userID, now, InvitationUsed{UserID: userID})
}

func (i *Invitation) record(aggregate, actor string, now time.Time, d EventData) ([]Event, error) {
	e := Event{Type: d.EventType(), Schema: SchemaOf(d.EventType()), Aggregate: aggregate, Version: i.Version + 1,
		Time: now.UTC(), Actor: actor, Prev: i.LastHash, Data: d}
	probe := *i
	if err := probe.Apply(e); err != nil {
		return nil, Wrap(Internal, err, "")
	}
	return []Event{e}, nil
}
