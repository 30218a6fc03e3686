package ledger

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections"
)

// Registration is who may register themselves (POST /users).
type Registration string

// Registration modes.
const (
	// RegistrationOpen lets anyone register; the account is usable at once.
	RegistrationOpen Registration = "open"
	// RegistrationVerified lets anyone register, but the account is usable
	// only once the link mailed to its address has been followed.
	RegistrationVerified Registration = "verified"
	// RegistrationInvite lets in only holders of an admin's invitation.
	RegistrationInvite Registration = "invite"
	// RegistrationClosed lets nobody register: admins create accounts.
	RegistrationClosed Registration = "closed"
)

// ParseRegistration returns the mode s names. Errors: Invalid.
func ParseRegistration(s string) (Registration, error) {
	switch r := Registration(s); r {
	case RegistrationOpen, RegistrationVerified, RegistrationInvite, RegistrationClosed:
		return r, nil
	}
	return "", domain.Errorf(domain.Invalid, "registration mode %q: want open, verified, invite or closed", s)
}

// Mailer sends the sign-up messages. Its methods queue and return at once:
// a slow mail server never holds up a request. It must be safe for
// concurrent use.
type Mailer interface {
	// Verification sends to the (normalised) address the token that
	// proves it.
	Verification(to string, token domain.Token)
	// AlreadyRegistered tells the owner of the address that someone tried
	// to register it again.
	AlreadyRegistered(to string)
}

// SignUp registers a user on their own behalf, as the registration mode
// allows: open (usable at once), verified (usable once the mailed link is
// followed; a taken address answers exactly like a free one and its owner
// gets a message instead), invite (Invitation required, used up),
// closed (refused).
// Errors: Invalid (email, password, malformed invitation), Forbidden
// (closed; invite without a working invitation), Conflict (address taken,
// in modes other than verified), Unavailable.
type SignUp struct {
	Email      string
	Password   string // never logged: see LogValue
	Invitation string // the invitation token, in invite mode
	// Preset fixes the user id and the event ids (zero fields: drawn
	// afresh).
	Preset Preset
}

// CommandName implements Command: sign-ups count as registrations.
func (SignUp) CommandName() string { return nameRegisterUser }

// LogValue implements slog.LogValuer, leaving the password, the
// invitation and the Preset out.
func (c SignUp) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()))
}

// SignedUp is the outcome of a SignUp.
type SignedUp struct {
	// Pending is true in verified mode: the account, if the address was
	// free, waits for its verification, and User is zero whatever
	// happened (the caller must not learn whether the address was taken).
	Pending bool
	// Email is the normalised address.
	Email string
	// User is the new user, unless Pending.
	User domain.User
}

// ErrRegistrationClosed refuses a sign-up in closed mode.
var ErrRegistrationClosed = domain.Errorf(domain.Forbidden, "registration is closed: ask an administrator for an account")

// ErrInvitationRequired refuses a sign-up without invitation in invite mode.
var ErrInvitationRequired = domain.Errorf(domain.Forbidden, "registration needs an invitation: ask an administrator for one")

// Registration returns the service's registration mode.
func (s *Service) Registration() Registration { return s.registration }

// SignUp runs cmd in the service's registration mode. Errors: see SignUp
// (the type).
func (s *Service) SignUp(ctx context.Context, cmd SignUp) (_ SignedUp, err error) {
	defer s.observed(cmd, time.Now(), &err)
	switch s.registration {
	case RegistrationOpen:
		u, err := s.register(ctx, "", cmd.Email, cmd.Password, domain.RoleUser, nil, cmd.Preset, nil)
		return SignedUp{Email: u.Email, User: u}, err
	case RegistrationVerified:
		return s.signUpVerified(ctx, cmd)
	case RegistrationInvite:
		return s.signUpInvited(ctx, cmd)
	}
	return SignedUp{}, ErrRegistrationClosed
}

// signUpVerified registers an account that waits for its verification.
// Whether the address was free or not, it does the same password hashing
// and answers the same; a message goes to the address either way.
func (s *Service) signUpVerified(ctx context.Context, cmd SignUp) (SignedUp, error) {
	email, err := domain.NormalizeEmail(cmd.Email)
	if err != nil {
		return SignedUp{}, err
	}
	if err := domain.ValidatePassword(cmd.Password, email, s.common); err != nil {
		return SignedUp{}, err
	}
	p, err := s.fill(cmd.Preset)
	if err != nil {
		return SignedUp{}, err
	}
	done := SignedUp{Pending: true, Email: email}
	u, taken, err := s.findByEmail(ctx, email)
	if err != nil {
		return SignedUp{}, err
	}
	if taken {
		if u.ID == p.UserID {
			return done, nil // an earlier run with p
		}
		// The hash a registration would compute, so that a taken address
		// costs what a free one does.
		if _, err := s.passwords.Hash(cmd.Password); err != nil {
			return SignedUp{}, err
		}
		s.mailer.AlreadyRegistered(email)
		return done, nil
	}
	var token domain.Token
	_, err = s.register(ctx, "", email, cmd.Password, domain.RoleUser, nil, p, func(userID string, ids []string) ([]eventstore.Pending, error) {
		if token, err = domain.NewToken(userID, s.random); err != nil {
			return nil, err
		}
		var none domain.Verification
		events, err := none.Request(userID, token, s.now())
		if err != nil {
			return nil, err
		}
		return pendingNew(Preset{EventIDs: ids}.withIDs(events)), nil
	})
	switch {
	case errors.Is(err, errEmailTaken):
		// Registered by someone else in the meantime.
		s.mailer.AlreadyRegistered(email)
		return done, nil
	case err != nil:
		return SignedUp{}, err
	}
	if !token.IsZero() { // zero: an earlier run with p registered it
		s.mailer.Verification(email, token)
	}
	return done, nil
}

// signUpInvited registers an account with an invitation, which the same
// atomic append uses up: of concurrent registrations with one invitation,
// exactly one succeeds.
func (s *Service) signUpInvited(ctx context.Context, cmd SignUp) (SignedUp, error) {
	if cmd.Invitation == "" {
		return SignedUp{}, ErrInvitationRequired
	}
	token, err := domain.ParseToken(cmd.Invitation)
	if err != nil || !domain.ValidInvitationID(token.Aggregate) {
		return SignedUp{}, domain.ErrInvitationInvalid
	}
	email, err := domain.NormalizeEmail(cmd.Email)
	if err != nil {
		return SignedUp{}, err
	}
	// Check before hashing the password; the append checks again.
	inv, _ := s.invitations.Get(token.Aggregate)
	if err := inv.Admits(token, email, s.now()); err != nil {
		return SignedUp{}, err
	}
	u, err := s.register(ctx, "", email, cmd.Password, domain.RoleUser, nil, cmd.Preset, func(userID string, ids []string) ([]eventstore.Pending, error) {
		inv, seq := s.invitations.Get(token.Aggregate)
		events, err := inv.Use(token, email, userID, s.now())
		if err != nil {
			return nil, err
		}
		events = Preset{EventIDs: ids}.withIDs(events)
		return []eventstore.Pending{{Event: events[0], ExpectedSeq: seq}}, nil
	})
	if errors.Is(err, errEmailTaken) {
		// A registration's batch fails whole when the invitation was used
		// in the meantime, and looks like a taken address: tell them apart.
		if used, uerr := s.invitationUsed(ctx, token.Aggregate); uerr != nil {
			return SignedUp{}, uerr
		} else if used {
			return SignedUp{}, domain.ErrInvitationInvalid
		}
	}
	if err != nil {
		return SignedUp{}, err
	}
	return SignedUp{Email: u.Email, User: u}, nil
}

// invitationUsed reports whether an invitation is used, as the log has it
// now. Errors: Unavailable.
func (s *Service) invitationUsed(ctx context.Context, id string) (bool, error) {
	seq, err := s.log.LastSequence(ctx, domain.CategoryInvitation, id)
	if err != nil {
		return false, err
	}
	wctx, cancel := context.WithTimeout(ctx, s.wait)
	defer cancel()
	if err := s.progress.WaitFor(wctx, seq); err != nil {
		return false, err
	}
	inv, _ := s.invitations.Get(id)
	return inv.UsedBy != "", nil
}

// pendingNew wraps the first events of new aggregates for Append.
func pendingNew(events []domain.Event) []eventstore.Pending {
	out := make([]eventstore.Pending, len(events))
	for i, e := range events {
		out[i] = eventstore.Pending{Event: e}
	}
	return out
}

// errEmailNotVerified refuses a login with the right password to an
// account whose address is not verified yet: only who knows the password
// learns that the account exists.
var errEmailNotVerified = domain.Errorf(domain.Forbidden,
	"email address not verified: follow the link sent to it, or ask for a new one (POST /users/verify/resend)")

// checkVerified returns errEmailNotVerified for a user whose address is
// not verified yet.
func (s *Service) checkVerified(userID string) error {
	if s.verifications.Pending(userID) {
		return errEmailNotVerified
	}
	return nil
}

// nilMailer is the Mailer of a Service configured without one: it sends
// nothing, loudly.
type nilMailer struct{ logger *slog.Logger }

func (m nilMailer) Verification(string, domain.Token) {
	m.logger.Error("verification mail not sent: no mail server configured")
}

func (m nilMailer) AlreadyRegistered(string) {
	m.logger.Error("mail not sent: no mail server configured")
}

// signUpConfig takes the sign-up part of cfg.
func (s *Service) signUpConfig(cfg Config) error {
	s.verifications, s.invitations, s.registration, s.mailer = cfg.Verifications, cfg.Invitations, cfg.Registration, cfg.Mailer
	if s.verifications == nil {
		s.verifications = projections.NewVerifications()
	}
	if s.invitations == nil {
		s.invitations = projections.NewInvitations()
	}
	if s.registration == "" {
		s.registration = RegistrationOpen
	}
	if _, err := ParseRegistration(string(s.registration)); err != nil {
		return err
	}
	if s.mailer == nil {
		if s.registration == RegistrationVerified {
			return errors.New("ledger: verified registration needs a Mailer")
		}
		s.mailer = nilMailer{s.logger}
	}
	return nil
}
