package ledger

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
)

// EraseUser erases a user's personal data on an admin's behalf: it
// records user.erased (the user is locked out for good and the address may
// register again), revokes every key of the user, and destroys the user's
// data key, after which no process can open the user's email or password
// hash. Erasing an erased user finishes whatever an interrupted erasure
// left undone. Errors: NotFound, Invalid (reason), Conflict (lost too many
// races), Unavailable (run it again), Internal.
type EraseUser struct {
	Actor  string // the admin, recorded in the events
	UserID string
	Reason string // optional, recorded in the user.erased event
	// Request is the admin's signed request, kept in the events.
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (EraseUser) CommandName() string { return nameEraseUser }

// EraseUser erases the user cmd names and returns the keys it revoked.
// Errors: see EraseUser (the type).
func (s *Service) EraseUser(ctx context.Context, cmd EraseUser) (revoked []string, err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.erase(ctx, cmd.Actor, cmd.UserID, cmd.Reason, cmd.Request)
}

// EraseMe is a user erasing their own account, confirmed with their
// password. Errors: NotFound (no such user), Forbidden (wrong password),
// RateLimited, Unavailable (auth.ErrBusy, or run it again), Internal.
type EraseMe struct {
	UserID   string
	Password string // never logged: see LogValue
}

// CommandName implements Command.
func (EraseMe) CommandName() string { return nameEraseMe }

// LogValue implements slog.LogValuer, leaving the password out.
func (c EraseMe) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()), slog.String("user", c.UserID))
}

// EraseMe checks the password and erases the user, as EraseUser does.
// Errors: see EraseMe (the type).
func (s *Service) EraseMe(ctx context.Context, cmd EraseMe) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	u, ok := s.users.ByID(cmd.UserID)
	if !ok || u.Erased {
		return domain.Errorf(domain.NotFound, "user not found")
	}
	if u, err = s.reveal(ctx, u); err != nil {
		return err
	}
	if err := s.confirmPassword(u, cmd.Password, "wrong password: the account was not erased"); err != nil {
		return err
	}
	_, err = s.erase(ctx, u.ID, u.ID, "erased at the user's request", nil)
	return err
}

// confirmPassword checks the password a signed-in user gives to confirm
// a change of their account (u with its hash opened). Guesses through a
// stolen session are throttled like logins, under an account of their own
// (the session is its one client), so they cannot lock the owner's login;
// erasure and password changes share it. wrong is the Forbidden message.
// Errors: RateLimited, Unavailable (auth.ErrBusy), Forbidden, Internal.
func (s *Service) confirmPassword(u domain.User, password, wrong string) error {
	account := "confirm:" + u.ID
	if wait := s.throttle.Attempt(account, "", s.now()); wait > 0 {
		return domain.RateLimitedFor(wait, "too many wrong passwords, try again later")
	}
	good, err := s.passwords.Verify(u.PasswordHash, password)
	switch {
	case errors.Is(err, auth.ErrBusy):
		s.throttle.Refund(account, "")
		return err
	case err != nil:
		s.logger.Error("stored password hash unreadable", "user", u.ID, "err", err)
		return domain.Wrap(domain.Internal, err, "internal error")
	case !good:
		return domain.Errorf(domain.Forbidden, "%s", wrong)
	}
	s.throttle.Succeed(account, "")
	return nil
}

// keyReasonErased is the reason recorded on the keys an erasure revokes.
const keyReasonErased = "user erased"

func (s *Service) erase(ctx context.Context, actor, userID, reason string, req *domain.SignedRequest) ([]string, error) {
	err := s.updateUser(ctx, userID, func(u *domain.User) ([]domain.Event, error) {
		events, err := u.Erase(actor, reason, s.now())
		return withRequest(events, req), err
	})
	if err != nil {
		return nil, err
	}
	revoked, err := s.revokeKeysOf(ctx, AdminRevokeKey{Actor: actor, Reason: keyReasonErased, Request: req}, userID)
	if err != nil {
		return revoked, err
	}
	// The user leaves their teams; the teams' keys stay the teams'. A team
	// whose last owner this was stays, with no owner, until an admin
	// transfers it.
	if err := s.leaveTeams(ctx, actor, userID, req); err != nil {
		return revoked, err
	}
	if err := s.dataKeys.Destroy(ctx, userID); err != nil {
		s.logger.Error("erased user's data key not destroyed: run the erasure again", "user", userID, "err", err)
		return revoked, err
	}
	return revoked, nil
}
