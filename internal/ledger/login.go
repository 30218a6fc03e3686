package ledger

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
)

// Login checks an email address and password. A wrong password, an
// unknown address and a disabled user give the same error after the same
// work.
// An erased user's address is unknown. The right password to an account
// whose address is not verified yet gives Forbidden.
// Errors: Unauthorized, Forbidden, RateLimited (with RetryAfter, see domain.RetryAfterOf),
// Unavailable (auth.ErrBusy, or the data keys cannot be read), Internal.
type Login struct {
	Email    string
	Password string // never logged: see LogValue
	// Client identifies where the attempt comes from (the client address,
	// as a rate-limit key); failures are throttled per email and client.
	// Never logged.
	Client string
}

// CommandName implements Command.
func (Login) CommandName() string { return nameLogin }

// LogValue implements slog.LogValuer, leaving the password out.
func (c Login) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()))
}

// Login checks cmd's credentials and returns the user. Repeated failures
// for one email are throttled per client (see auth.Throttle), so that
// nobody can lock the owner out of the right password. When every password
// hashing slot stays taken, it gives up without checking, and the attempt
// does not count. Errors: see Login (the type).
func (s *Service) Login(ctx context.Context, cmd Login) (_ domain.User, err error) {
	defer s.observed(cmd, time.Now(), &err)
	email, password := cmd.Email, cmd.Password
	normalized, nerr := domain.NormalizeEmail(email)
	if nerr != nil {
		normalized = email // still throttled and still hashed: same cost
	}
	now := s.now()
	if wait := s.throttle.Attempt(normalized, cmd.Client, now); wait > 0 {
		return domain.User{}, domain.RateLimitedFor(wait, "too many failed attempts, try again later")
	}
	u, found, ferr := s.findByEmail(ctx, normalized)
	if ferr != nil {
		s.throttle.Refund(normalized, cmd.Client) // not a guess: nothing was checked
		return domain.User{}, ferr
	}
	ok, verr := s.passwords.Verify(u.PasswordHash, password)
	if errors.Is(verr, auth.ErrBusy) {
		s.throttle.Refund(normalized, cmd.Client)
		return domain.User{}, verr
	}
	if verr != nil {
		s.logger.Error("stored password hash unreadable", "user", u.ID, "err", verr)
	}
	if !found || !ok || verr != nil || u.Disabled {
		return domain.User{}, errBadLogin // counted as a failure by Attempt
	}
	s.throttle.Succeed(normalized, cmd.Client)
	if err := s.checkVerified(u.ID); err != nil {
		return domain.User{}, err
	}
	return u, nil
}

var errBadLogin = domain.Errorf(domain.Unauthorized, "invalid email or password")
