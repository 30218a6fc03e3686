package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
)

// RevokeSessions ends every session of a user on every instance, at the
// user's own request or an admin's: it records user.sessions_revoked.
// Errors: NotFound (also for an erased user), Invalid (reason), Conflict
// (lost too many races), Unavailable.
type RevokeSessions struct {
	Actor  string // the user, or the admin; recorded in the event
	UserID string
	Reason string // optional, recorded in the event
	// Request is the admin's signed request, kept in the event (nil for a
	// session).
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (RevokeSessions) CommandName() string { return nameRevokeSessions }

// RevokeSessions ends the sessions of the user cmd names. Errors: see
// RevokeSessions (the type).
func (s *Service) RevokeSessions(ctx context.Context, cmd RevokeSessions) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.updateUser(ctx, cmd.UserID, func(u *domain.User) ([]domain.Event, error) {
		events, err := u.RevokeSessions(cmd.Actor, cmd.Reason, s.now())
		return withRequest(events, cmd.Request), err
	})
}

// EndSession ends one session on every instance (a logout): it records
// user.session_ended with the token's id and expiry.
// Errors: NotFound, Invalid, Conflict (lost too many races), Unavailable.
type EndSession struct {
	Session auth.Session // as verified
}

// CommandName implements Command.
func (EndSession) CommandName() string { return nameEndSession }

// EndSession ends the session cmd names. Ending an ended or expired
// session succeeds and records nothing. Errors: see EndSession (the type).
func (s *Service) EndSession(ctx context.Context, cmd EndSession) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.updateUser(ctx, cmd.Session.UserID, func(u *domain.User) ([]domain.Event, error) {
		return u.EndSession(cmd.Session.TokenID, cmd.Session.ExpiresAt, s.now())
	})
}
