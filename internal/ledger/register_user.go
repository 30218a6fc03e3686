package ledger

import (
	"context"
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
	if err := domain.ValidatePassword(password); err != nil {
		return domain.User{}, err
	}
	if p, err = s.fill(p); err != nil {
		return domain.User{}, err
	}
	if u, taken := s.users.ByEmail(email); taken {
		if u.ID == p.UserID {
			return u, nil
		}
		return domain.User{}, errEmailTaken
	}
	hash, err := s.passwords.Hash(password)
	if err != nil {
		return domain.User{}, err
	}
	events, err := domain.Register(domain.RegisterUser{UserID: p.UserID, Email: email, PasswordHash: hash, Role: role, Actor: actor}, s.now())
	if err != nil {
		return domain.User{}, err
	}
	events = withRequest(p.withIDs(events), req)
	pending := make([]eventstore.Pending, len(events))
	for i, e := range events {
		pending[i] = eventstore.Pending{Event: e} // both aggregates must be new
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
	return u, ok && u.Email == email, nil
}

var errEmailTaken = domain.Errorf(domain.Conflict, "email is already registered")
