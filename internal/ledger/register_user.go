package ledger

import (
	"context"
	"crypto/rand"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// RegisterUser registers a user with an email address and a password.
// The address is normalised and must be unused: the log accepts one
// reservation per address, so of concurrent registrations exactly one wins.
// Errors: Invalid (email, password), Conflict (address taken),
// Unavailable.
type RegisterUser struct {
	Email    string
	Password string // never logged: see LogValue
	// Preset fixes the user id and the event ids (zero fields: drawn
	// afresh).
	Preset Preset
}

// CommandName implements Command.
func (RegisterUser) CommandName() string { return nameRegisterUser }

// LogValue implements slog.LogValuer, leaving the password and the
// Preset out.
func (c RegisterUser) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()))
}

// RegisterUser registers the user cmd describes and returns it. An address
// already registered to cmd.Preset's user id was registered by an earlier
// run with that Preset: the run appends nothing and returns that user.
// (Its password hash is not compared: each run salts afresh.)
// Errors: see RegisterUser (the type).
func (s *Service) RegisterUser(ctx context.Context, cmd RegisterUser) (_ domain.User, err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.register(ctx, "", cmd.Email, cmd.Password, domain.RoleUser, nil, cmd.Preset, nil)
}

// also returns events to append with a registration, in its batch: the
// sign-up modes' verification or invitation (ids: the Preset's event ids
// left for them).
type also func(userID string, ids []string) ([]eventstore.Pending, error)

func (s *Service) register(ctx context.Context, actor, email, password string, role domain.Role, req *domain.SignedRequest, p Preset, with also) (domain.User, error) {
	email, err := domain.NormalizeEmail(email)
	if err != nil {
		return domain.User{}, err
	}
	if err := domain.ValidatePassword(password, email, s.common); err != nil {
		return domain.User{}, err
	}
	return s.registerHashed(ctx, actor, email, func() (string, error) { return s.passwords.Hash(password) }, role, req, p, with)
}

// registerHashed registers a normalised address with the password hash
// hash returns ("" for a user without password, who logs in through an
// OpenID provider only); hash runs only once the address proved free.
func (s *Service) registerHashed(ctx context.Context, actor, email string, hash func() (string, error), role domain.Role, req *domain.SignedRequest, p Preset, with also) (domain.User, error) {
	var err error
	if p, err = s.fill(p); err != nil {
		return domain.User{}, err
	}
	keyed, legacy, err := s.emailAggregates(ctx, email)
	if err != nil {
		return domain.User{}, err
	}
	if u, taken := s.users.ByEmailKey(keyed, legacy); taken {
		if u.ID == p.UserID {
			return s.reveal(ctx, u)
		}
		return domain.User{}, errEmailTaken
	}
	// An address whose holder was erased is reserved again after the
	// reservation's last event; a new one from scratch. A reservation
	// whose holder is not erased is taken, also while the holder's
	// registration, appended with it, is still on its way to the read
	// models.
	reservation, reservationSeq, holder := s.users.Reservation(keyed)
	if holder != "" {
		if holder == p.UserID {
			if u, ok, err := s.registered(ctx, p.UserID, email); err != nil || ok {
				return u, err
			}
		}
		return domain.User{}, errEmailTaken
	}
	passwordHash, err := hash()
	if err != nil {
		return domain.User{}, err
	}
	dataKey, err := s.dataKeys.Create(ctx, p.UserID)
	if err != nil {
		return domain.User{}, err
	}
	// The nonce always comes from crypto/rand, never from s.random (which
	// tests fix): a nonce repeated under one key would undo GCM.
	sealed, err := domain.SealPersonal(dataKey, p.UserID, domain.TypeUserRegistered, domain.UserRegisteredSchema,
		domain.Personal{Email: email, PasswordHash: passwordHash}, rand.Reader)
	if err != nil {
		return domain.User{}, err
	}
	events, err := domain.Register(domain.RegisterUser{UserID: p.UserID, EmailKey: keyed, Personal: sealed,
		Reservation: reservation, Role: role, Actor: actor}, s.now())
	if err != nil {
		return domain.User{}, err
	}
	events = withRequest(p.withIDs(events), req)
	pending := []eventstore.Pending{
		{Event: events[0], ExpectedSeq: reservationSeq},
		{Event: events[1]}, // the user must be new
	}
	if with != nil {
		more, err := with(p.UserID, p.EventIDs[min(len(events), len(p.EventIDs)):])
		if err != nil {
			return domain.User{}, err
		}
		pending = append(pending, more...)
	}
	if err := s.appendAndWait(ctx, pending...); err != nil {
		if domain.KindOf(err) != domain.Conflict {
			return domain.User{}, err
		}
		u, ok, err := s.registered(ctx, p.UserID, email)
		switch {
		case err != nil:
			return domain.User{}, err
		case ok:
			return u, nil
		}
		return domain.User{}, errEmailTaken
	}
	u, ok := s.users.ByID(p.UserID)
	if !ok {
		return domain.User{}, domain.Errorf(domain.Internal, "registered user %s not in read model", p.UserID)
	}
	if u, err = s.reveal(ctx, u); err != nil {
		return domain.User{}, err
	}
	if u.Email != email {
		// p was used before for another address, within the duplicate
		// window: JetStream dropped this append as a repeat of that one.
		return domain.User{}, domain.Errorf(domain.Conflict, "user id already registered")
	}
	return u, nil
}

// registered reports whether userID is in the log, registered with email:
// after a conflict, that tells an earlier run of the same registration
// (which the read models may not show yet) from someone else's.
// Errors: Unavailable.
func (s *Service) registered(ctx context.Context, userID, email string) (domain.User, bool, error) {
	seq, err := s.log.LastSequence(ctx, domain.CategoryUser, userID)
	if err != nil || seq == 0 {
		return domain.User{}, false, err
	}
	wctx, cancel := context.WithTimeout(ctx, s.wait)
	defer cancel()
	if err := s.progress.WaitFor(wctx, seq); err != nil {
		return domain.User{}, false, err
	}
	u, ok := s.users.ByID(userID)
	if !ok {
		return domain.User{}, false, nil
	}
	if u, err = s.reveal(ctx, u); err != nil {
		return domain.User{}, false, err
	}
	return u, u.Email == email, nil
}

var errEmailTaken = domain.Errorf(domain.Conflict, "email is already registered")
