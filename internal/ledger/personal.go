package ledger

import (
	"context"
	"errors"

	"github.com/keyledger/keyledger/domain"
)

// DataKeys keeps the secrets behind erasable personal data
// (internal/datakeys is the implementation).
type DataKeys interface {
	// EmailKey returns the key email reservations are hashed under.
	// Errors: Unavailable, Internal.
	EmailKey(ctx context.Context) ([]byte, error)
	// Create returns a new user's data key (the same one on a retry).
	// Errors: Invalid, Unavailable, Internal.
	Create(ctx context.Context, userID string) ([]byte, error)
	// Get returns a user's data key. Errors: NotFound (none: never made,
	// or destroyed), Unavailable, Internal.
	Get(ctx context.Context, userID string) ([]byte, error)
	// Destroy erases a user's data key for good. Errors: Invalid,
	// Unavailable, Internal.
	Destroy(ctx context.Context, userID string) error
}

// emailAggregates returns the reservation aggregates of a normalised
// address: the keyed one, which registrations write, and the bare hash
// that logs written before used, which still holds their addresses.
// Errors: Unavailable, Internal.
func (s *Service) emailAggregates(ctx context.Context, email string) (keyed, legacy string, err error) {
	key, err := s.dataKeys.EmailKey(ctx)
	if err != nil {
		return "", "", err
	}
	return domain.EmailAggregate(key, email), domain.LegacyEmailAggregate(email), nil
}

// reveal fills in a user's email and password hash by opening the latest
// sealed record (of user.registered or the last user.password_changed)
// with the user's data key. A user without sealed data (registered
// before sealing, or erased) is returned as is. A user who is not erased
// but whose data key is missing or does not open the record is an
// inconsistency: logged, counted, and an Internal error, never a crash.
// Errors: Unavailable, Internal.
func (s *Service) reveal(ctx context.Context, u domain.User) (domain.User, error) {
	if u.Personal == "" || u.Erased {
		return u, nil
	}
	key, err := s.dataKeys.Get(ctx, u.ID)
	if err == nil {
		var p domain.Personal
		p, err = domain.OpenPersonal(key, u.ID, u.PersonalType, u.PersonalSchema, u.Personal)
		if err == nil {
			u.Email, u.PasswordHash = p.Email, p.PasswordHash
			return u, nil
		}
	}
	if domain.KindOf(err) == domain.Unavailable {
		return domain.User{}, err
	}
	s.missingKeys.Add(1)
	s.logger.Error("personal data of a user who is not erased cannot be opened: data key missing or wrong",
		"user", u.ID, "err", err)
	return domain.User{}, domain.Wrap(domain.Internal, err, "internal error")
}

// MissingDataKeys counts the times the personal data of a user who is not
// erased could not be opened (see reveal): a metric that must stay 0.
func (s *Service) MissingDataKeys() uint64 { return s.missingKeys.Load() }

// findByEmail returns the user a normalised address belongs to, with the
// clear values: the address's reservation names the user, and the user's
// own record must carry the same address. Errors: Unavailable, Internal.
func (s *Service) findByEmail(ctx context.Context, email string) (domain.User, bool, error) {
	keyed, legacy, err := s.emailAggregates(ctx, email)
	if err != nil {
		return domain.User{}, false, err
	}
	u, ok := s.users.ByEmailKey(keyed, legacy)
	if !ok {
		return domain.User{}, false, nil
	}
	if u, err = s.reveal(ctx, u); err != nil {
		return domain.User{}, false, err
	}
	if u.Email != email {
		return domain.User{}, false, nil
	}
	return u, true, nil
}

// UserByEmail returns the user a normalised address belongs to, if any,
// with the email and password hash opened. Errors: Unavailable, Internal.
func (s *Service) UserByEmail(ctx context.Context, email string) (domain.User, bool, error) {
	return s.findByEmail(ctx, email)
}

// UserByID returns a user with the email and password hash opened (an
// erased user has neither). Errors: NotFound, Unavailable, Internal.
func (s *Service) UserByID(ctx context.Context, userID string) (domain.User, error) {
	u, ok := s.users.ByID(userID)
	if !ok {
		return domain.User{}, domain.Errorf(domain.NotFound, "user not found")
	}
	return s.reveal(ctx, u)
}

var errNoDataKeys = errors.New("ledger: missing dependency (data keys)")

// RevealUser returns u with its personal data (email) unsealed, for the
// user themself (GET /users/me). Errors: Unavailable, Internal.
func (s *Service) RevealUser(ctx context.Context, u domain.User) (domain.User, error) {
	return s.reveal(ctx, u)
}
