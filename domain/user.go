package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Password length limits, in characters. 15 is the NIST SP 800-63B-4
// minimum for a password used as the only factor; the maximum only bounds
// hashing work and is far above what anyone types.
const (
	MinPasswordLength = 15
	MaxPasswordLength = 1024
)

// MaxEmailLength is the longest email address accepted (RFC 5321 path limit).
const MaxEmailLength = 254

// User is the user aggregate. The zero User does not exist yet. Apply is
// its only mutator.
type User struct {
	ID           string
	Email        string
	PasswordHash string
	Role         Role
	Disabled     bool
	CreatedAt    time.Time
	Version      uint64
	LastHash     Hash // Hash of the last event applied: the next event's Prev
}

// Exists reports whether the user has registered.
func (u *User) Exists() bool { return u.Version > 0 }

// Apply folds one event into the user.
func (u *User) Apply(e Event) error {
	if e.Version != u.Version+1 {
		return fmt.Errorf("apply %s to %s: version %d after %d", e.Type, e.Aggregate, e.Version, u.Version)
	}
	if u.Exists() && e.Aggregate != u.ID {
		return fmt.Errorf("apply %s of %s to user %s", e.Type, e.Aggregate, u.ID)
	}
	switch d := e.Data.(type) {
	case UserRegistered:
		if u.Exists() {
			return fmt.Errorf("apply %s to %s: user exists", e.Type, e.Aggregate)
		}
		u.ID, u.Email, u.PasswordHash, u.CreatedAt = e.Aggregate, d.Email, d.PasswordHash, e.Time
		u.Role = d.Role
		if u.Role == "" {
			u.Role = RoleUser
		}
	case UserDisabled:
		if !u.Exists() || u.Disabled {
			return fmt.Errorf("apply %s to %s: user missing or disabled", e.Type, e.Aggregate)
		}
		u.Disabled = true
	case UserEnabled:
		if !u.Exists() || !u.Disabled {
			return fmt.Errorf("apply %s to %s: user missing or not disabled", e.Type, e.Aggregate)
		}
		u.Disabled = false
	default:
		return fmt.Errorf("apply %s to user %s: not a user event", e.Type, e.Aggregate)
	}
	u.Version, u.LastHash = e.Version, e.Hash
	return nil
}

// RegisterUser is the command that registers a user.
type RegisterUser struct {
	UserID       string // a fresh NewUserID value
	Email        string // as typed; it is normalised
	PasswordHash string // argon2id PHC string of a password that passed ValidatePassword
	Role         Role   // RoleUser (or empty) or RoleAdmin
	Actor        string // who registers the user: empty for the user themself
}

// Role is what a user may do.
type Role string

// Roles.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// IsAdmin reports whether the user is an active admin.
func (u *User) IsAdmin() bool { return u.Exists() && !u.Disabled && u.Role == RoleAdmin }

// Disable returns the events that lock a user out, by actor (an admin).
// Disabling a disabled user returns no events. Errors: NotFound.
func (u *User) Disable(actor, reason string, now time.Time) ([]Event, error) {
	if !u.Exists() {
		return nil, Errorf(NotFound, "user not found")
	}
	if u.Disabled {
		return nil, nil
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	return u.record(actor, now, UserDisabled{Reason: reason})
}

// Enable returns the events that let a disabled user back in. Enabling an
// enabled user returns no events. Errors: NotFound.
func (u *User) Enable(actor, reason string, now time.Time) ([]Event, error) {
	if !u.Exists() {
		return nil, Errorf(NotFound, "user not found")
	}
	if !u.Disabled {
		return nil, nil
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	return u.record(actor, now, UserEnabled{Reason: reason})
}

func (u *User) record(actor string, now time.Time, d EventData) ([]Event, error) {
	e := Event{Type: d.EventType(), Schema: CurrentSchema, Aggregate: u.ID, Version: u.Version + 1,
		Time: now.UTC(), Actor: actor, Prev: u.LastHash, Data: d}
	probe := *u
	if err := probe.Apply(e); err != nil {
		return nil, Wrap(Internal, err, "")
	}
	return []Event{e}, nil
}

// MaxReasonLength bounds the reason recorded with an admin action.
const MaxReasonLength = 500

// ValidateReason checks the free-text reason of an admin action.
func ValidateReason(reason string) error {
	switch {
	case !utf8.ValidString(reason):
		return Errorf(Invalid, "reason must be valid UTF-8")
	case utf8.RuneCountInString(reason) > MaxReasonLength:
		return Errorf(Invalid, "reason must be at most %d characters", MaxReasonLength)
	}
	return nil
}

// AdminActor is the actor recorded for an admin's command.
func AdminActor(name string) string { return "admin:" + name }

// Register returns the events that register a user: a reservation of the
// email address (which the log accepts only once per address) and the
// user's own first event. It returns Invalid for a bad email.
func Register(cmd RegisterUser, now time.Time) ([]Event, error) {
	email, err := NormalizeEmail(cmd.Email)
	if err != nil {
		return nil, err
	}
	if !ValidUserID(cmd.UserID) || cmd.PasswordHash == "" {
		return nil, Errorf(Invalid, "malformed user id or missing password hash")
	}
	role := cmd.Role
	switch role {
	case RoleUser:
		role = "" // the default, not written
	case "", RoleAdmin:
	default:
		return nil, Errorf(Invalid, "unknown role %q", cmd.Role)
	}
	actor := cmd.Actor
	if actor == "" {
		actor = cmd.UserID
	}
	now = now.UTC()
	return []Event{
		{Type: TypeEmailReserved, Schema: CurrentSchema, Aggregate: EmailAggregate(email), Version: 1,
			Time: now, Actor: actor, Data: EmailReserved{UserID: cmd.UserID}},
		{Type: TypeUserRegistered, Schema: CurrentSchema, Aggregate: cmd.UserID, Version: 1,
			Time: now, Actor: actor, Data: UserRegistered{Email: email, PasswordHash: cmd.PasswordHash, Role: role}},
	}, nil
}

// NormalizeEmail trims and lower-cases an address and checks that it is a
// plain addr-spec (no display name, no comments) with a domain.
func NormalizeEmail(s string) (string, error) {
	email := strings.ToLower(strings.TrimSpace(s))
	if email == "" {
		return "", Errorf(Invalid, "email is required")
	}
	if len(email) > MaxEmailLength {
		return "", Errorf(Invalid, "email must be at most %d characters", MaxEmailLength)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return "", Errorf(Invalid, "email is not a valid address")
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(email, " \t\r\n") {
		return "", Errorf(Invalid, "email is not a valid address")
	}
	return email, nil
}

// EmailAggregate returns the aggregate id of an email reservation: the
// hex SHA-256 of the normalised address, so the address itself is not in
// the subject name.
func EmailAggregate(normalizedEmail string) string {
	sum := sha256.Sum256([]byte(normalizedEmail))
	return hex.EncodeToString(sum[:])
}
