package ledger

import (
	"context"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// RegisterUser registers a user with an email address and a password. The
// address is normalised and must be unused: the log accepts one reservation
// per address, so of concurrent registrations exactly one wins.
// Errors: Invalid (email, password), Conflict (address taken), Unavailable.
func (s *Service) RegisterUser(ctx context.Context, email, password string) (domain.User, error) {
	return s.register(ctx, "", email, password, domain.RoleUser)
}

func (s *Service) register(ctx context.Context, actor, email, password string, role domain.Role) (domain.User, error) {
	email, err := domain.NormalizeEmail(email)
	if err != nil {
		return domain.User{}, err
	}
	if err := domain.ValidatePassword(password); err != nil {
		return domain.User{}, err
	}
	if _, taken := s.users.ByEmail(email); taken {
		return domain.User{}, errEmailTaken
	}
	hash, err := s.passwords.Hash(password)
	if err != nil {
		return domain.User{}, err
	}
	id := s.newID(domain.UserIDPrefix)
	events, err := domain.Register(domain.RegisterUser{UserID: id, Email: email, PasswordHash: hash, Role: role, Actor: actor}, s.now())
	if err != nil {
		return domain.User{}, err
	}
	pending := make([]eventstore.Pending, len(events))
	for i, e := range events {
		pending[i] = eventstore.Pending{Event: e} // both aggregates must be new
	}
	if err := s.appendAndWait(ctx, pending...); err != nil {
		if domain.KindOf(err) == domain.Conflict {
			return domain.User{}, errEmailTaken
		}
		return domain.User{}, err
	}
	u, ok := s.users.ByID(id)
	if !ok {
		return domain.User{}, domain.Errorf(domain.Internal, "registered user %s not in read model", id)
	}
	return u, nil
}

var errEmailTaken = domain.Errorf(domain.Conflict, "email is already registered")
