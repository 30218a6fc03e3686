package ledger

import (
	"context"
	"errors"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
)

// Login checks an email address and password and returns the user. A wrong
// password, an unknown address and a disabled user give the same error
// after the same work.
// Repeated failures for one address are throttled. When every password
// hashing slot stays taken, it gives up without checking, and the attempt
// does not count against the address.
// Errors: Unauthorized, RateLimited (see RetryAfter), Unavailable
// (auth.ErrBusy).
func (s *Service) Login(ctx context.Context, email, password string) (domain.User, error) {
	normalized, err := domain.NormalizeEmail(email)
	if err != nil {
		normalized = email // still throttled and still hashed: same cost
	}
	now := s.now()
	if wait := s.throttle.Attempt(normalized, now); wait > 0 {
		return domain.User{}, domain.RateLimitedFor(wait, "too many failed attempts, try again later")
	}
	u, found := s.users.ByEmail(normalized)
	ok, verr := s.passwords.Verify(u.PasswordHash, password)
	if errors.Is(verr, auth.ErrBusy) {
		s.throttle.Refund(normalized)
		return domain.User{}, verr
	}
	if verr != nil {
		s.logger.Error("stored password hash unreadable", "user", u.ID, "err", verr)
	}
	if !found || !ok || verr != nil || u.Disabled {
		return domain.User{}, errBadLogin // counted as a failure by Attempt
	}
	s.throttle.Succeed(normalized)
	return u, nil
}

var errBadLogin = domain.Errorf(domain.Unauthorized, "invalid email or password")
