package domain

import (
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
//
// Email and PasswordHash are set by Apply only from schema 1 events, which
// kept them in clear; newer events keep them in Personal, sealed under the
// user's data key, and whoever holds that key fills them in. An Erased user
// has neither: the events remain, the data key is destroyed.
//
// Personal is the latest sealed value, of user.registered or of the last
// user.password_changed: PersonalType and PersonalSchema are the event type
// and schema it was sealed for, which OpenPersonal needs.
//
// SessionEpoch counts the events that ended all the user's sessions
// (user.password_changed, user.disabled, user.erased,
// user.sessions_revoked): a session token carries the epoch it was issued
// in and is valid only while that is still the user's. EndedSessions holds
// the ids (jti) of single sessions ended by a logout, with their expiry,
// until they expire; it is never shared between copies of a User that
// Apply changed (copy on write).
type User struct {
	ID             string
	Email          string
	PasswordHash   string
	Personal       Sealed
	PersonalType   string
	PersonalSchema int
	SessionEpoch   uint64
	EndedSessions  map[string]time.Time
	Role           Role
	Disabled       bool // also true once Erased
	Erased         bool
	CreatedAt      time.Time
	Version        uint64
	LastHash       Hash // Hash of the last event applied: the next event's Prev
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
		u.Personal = d.Personal
		if d.Personal != "" {
			u.PersonalType, u.PersonalSchema = e.Type, e.Schema
		}
		u.Role = d.Role
		if u.Role == "" {
			u.Role = RoleUser
		}
	case UserDisabled:
		if !u.Exists() || u.Disabled {
			return fmt.Errorf("apply %s to %s: user missing or disabled", e.Type, e.Aggregate)
		}
		u.Disabled = true
		u.endAllSessions()
	case UserEnabled:
		if !u.Exists() || !u.Disabled || u.Erased {
			return fmt.Errorf("apply %s to %s: user missing, erased or not disabled", e.Type, e.Aggregate)
		}
		u.Disabled = false
	case UserErased:
		if !u.Exists() || u.Erased {
			return fmt.Errorf("apply %s to %s: user missing or erased", e.Type, e.Aggregate)
		}
		u.Erased, u.Disabled = true, true
		u.Email, u.PasswordHash, u.Personal = "", "", ""
		u.PersonalType, u.PersonalSchema = "", 0
		u.endAllSessions()
	case UserPasswordChanged:
		if !u.Exists() || u.Erased || len(d.Personal) == 0 {
			return fmt.Errorf("apply %s to %s: user missing or erased, or no sealed data", e.Type, e.Aggregate)
		}
		// The clear hash of a schema 1 registration is stale now: only
		// the sealed value holds the password.
		u.PasswordHash = ""
		u.Personal, u.PersonalType, u.PersonalSchema = d.Personal, e.Type, e.Schema
		u.endAllSessions()
	case UserSessionsRevoked:
		if !u.Exists() {
			return fmt.Errorf("apply %s to %s: user missing", e.Type, e.Aggregate)
		}
		u.endAllSessions()
	case UserSessionEnded:
		if !u.Exists() || !ValidTokenID(d.TokenID) {
			return fmt.Errorf("apply %s to %s: user missing or malformed token id", e.Type, e.Aggregate)
		}
		u.endSession(d.TokenID, d.ExpiresAt, e.Time)
	default:
		return fmt.Errorf("apply %s to user %s: not a user event", e.Type, e.Aggregate)
	}
	u.Version, u.LastHash = e.Version, e.Hash
	return nil
}

// MaxEndedSessions bounds the single sessions a user has ended (logged
// out) that have not expired yet, which readers keep in memory. Ending
// one more ends all the user's sessions instead (the epoch moves on), so
// no user can grow a reader's memory without limit.
const MaxEndedSessions = 32

// MaxTokenIDLength bounds a session token id (jti).
const MaxTokenIDLength = 64

// ValidTokenID reports whether s has the form of a session token id: 1 to
// MaxTokenIDLength characters of the base64url alphabet.
func ValidTokenID(s string) bool {
	if s == "" || len(s) > MaxTokenIDLength {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// endAllSessions moves the session epoch on: every session issued before
// ends, so the single ended ones need not be kept.
func (u *User) endAllSessions() {
	u.SessionEpoch++
	u.EndedSessions = nil
}

// endSession keeps tokenID as ended until expiresAt, dropping the ended
// sessions that expired by now (the event's time). Over MaxEndedSessions
// it ends all sessions instead. The map is copied, never changed in
// place: copies of the User may share it.
func (u *User) endSession(tokenID string, expiresAt, now time.Time) {
	kept := make(map[string]time.Time, len(u.EndedSessions)+1)
	for id, exp := range u.EndedSessions {
		if exp.After(now) {
			kept[id] = exp
		}
	}
	if _, ended := kept[tokenID]; !ended && len(kept) >= MaxEndedSessions {
		u.endAllSessions()
		return
	}
	kept[tokenID] = expiresAt
	u.EndedSessions = kept
}

// SessionValid reports whether a session token issued in epoch with id
// tokenID still holds for the user: the user exists, is neither disabled
// nor erased, no event has ended all sessions since the token was issued,
// and the token was not ended on its own. The token's signature and
// expiry are checked by whoever parsed it.
func (u *User) SessionValid(epoch uint64, tokenID string) bool {
	if !u.Exists() || u.Disabled || u.Erased || epoch != u.SessionEpoch {
		return false
	}
	_, ended := u.EndedSessions[tokenID]
	return !ended
}

// ChangePassword returns the event that replaces the user's password:
// personal is the user's email and new password hash (a password that
// passed ValidatePassword), sealed for (u.ID, TypeUserPasswordChanged,
// schema 1). It ends all the user's sessions. Errors: NotFound (also for
// an erased user), Forbidden (disabled), Invalid (nothing sealed).
func (u *User) ChangePassword(personal Sealed, now time.Time) ([]Event, error) {
	switch {
	case !u.Exists() || u.Erased:
		return nil, Errorf(NotFound, "user not found")
	case u.Disabled:
		return nil, Errorf(Forbidden, "user disabled")
	case len(personal) == 0:
		return nil, Errorf(Invalid, "missing sealed personal data")
	}
	return u.record(u.ID, now, UserPasswordChanged{Personal: personal})
}

// RevokeSessions returns the event that ends every session of the user,
// by actor (the user or an admin). Errors: NotFound (also for an erased
// user, whose sessions ended with the erasure), Invalid (reason).
func (u *User) RevokeSessions(actor, reason string, now time.Time) ([]Event, error) {
	if !u.Exists() || u.Erased {
		return nil, Errorf(NotFound, "user not found")
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	return u.record(actor, now, UserSessionsRevoked{Reason: reason})
}

// EndSession returns the event that ends one session of the user (a
// logout): the token with id tokenID, valid until expiresAt. A token that
// expired by now or was already ended needs no event. Errors: NotFound
// (also for an erased user), Invalid (malformed token id).
func (u *User) EndSession(tokenID string, expiresAt, now time.Time) ([]Event, error) {
	if !u.Exists() || u.Erased {
		return nil, Errorf(NotFound, "user not found")
	}
	if !ValidTokenID(tokenID) {
		return nil, Errorf(Invalid, "malformed session token id")
	}
	if _, ended := u.EndedSessions[tokenID]; ended || !expiresAt.After(now) {
		return nil, nil
	}
	return u.record(u.ID, now, UserSessionEnded{TokenID: tokenID, ExpiresAt: expiresAt.UTC()})
}

// RegisterUser is the command that registers a user.
type RegisterUser struct {
	UserID string // a fresh NewUserID value
	// EmailKey is the EmailAggregate of the normalised address.
	EmailKey string
	// Personal is the user's email and password hash (an argon2id PHC
	// string of a password that passed ValidatePassword), sealed under the
	// user's data key for (UserID, TypeUserRegistered, UserRegisteredSchema).
	Personal Sealed
	// Reservation is the address's reservation so far: zero for an address
	// never reserved, else that of an erased user, which this one follows.
	Reservation Reservation
	Role        Role   // RoleUser (or empty) or RoleAdmin
	Actor       string // who registers the user: empty for the user themself
}

// Reservation is the state of an email reservation aggregate: its version
// and the hash of its last event.
type Reservation struct {
	Version  uint64
	LastHash Hash
}

// Role is what a user may do.
type Role string

// Roles.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// IsAdmin reports whether the user is an active admin.
func (u *User) IsAdmin() bool { return u.Exists() && !u.Disabled && !u.Erased && u.Role == RoleAdmin }

// Disable returns the events that lock a user out, by actor (an admin).
// Disabling a disabled user returns no events. Errors: NotFound (also for
// an erased user).
func (u *User) Disable(actor, reason string, now time.Time) ([]Event, error) {
	if !u.Exists() || u.Erased {
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
// enabled user returns no events. Errors: NotFound (also for an erased
// user).
func (u *User) Enable(actor, reason string, now time.Time) ([]Event, error) {
	if !u.Exists() || u.Erased {
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

// Erase returns the event that erases a user, by actor (the user or an
// admin): the user is locked out for good and their personal data is to be
// destroyed with their data key. Erasing an erased user returns no events.
// Errors: NotFound, Invalid (reason).
func (u *User) Erase(actor, reason string, now time.Time) ([]Event, error) {
	if !u.Exists() {
		return nil, Errorf(NotFound, "user not found")
	}
	if u.Erased {
		return nil, nil
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	return u.record(actor, now, UserErased{Reason: reason})
}

func (u *User) record(actor string, now time.Time, d EventData) ([]Event, error) {
	e := Event{Type: d.EventType(), Schema: SchemaOf(d.EventType()), Aggregate: u.ID, Version: u.Version + 1,
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
// email address (which the log accepts only once per reservation version)
// and the user's own first event, which keeps the email and password hash
// sealed. It returns Invalid for a malformed command.
func Register(cmd RegisterUser, now time.Time) ([]Event, error) {
	if !ValidUserID(cmd.UserID) || len(cmd.Personal) == 0 || !validEmailKey(cmd.EmailKey) {
		return nil, Errorf(Invalid, "malformed user id, email key or missing personal data")
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
		{Type: TypeEmailReserved, Schema: SchemaOf(TypeEmailReserved), Aggregate: cmd.EmailKey,
			Version: cmd.Reservation.Version + 1, Prev: cmd.Reservation.LastHash,
			Time: now, Actor: actor, Data: EmailReserved{UserID: cmd.UserID}},
		{Type: TypeUserRegistered, Schema: SchemaOf(TypeUserRegistered), Aggregate: cmd.UserID, Version: 1,
			Time: now, Actor: actor, Data: UserRegistered{Personal: cmd.Personal, Role: role}},
	}, nil
}

// validEmailKey reports whether s has the form of an EmailAggregate: 64
// lower-case hex digits.
func validEmailKey(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
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
