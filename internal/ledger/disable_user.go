package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// DisableUser locks a user out on an admin's behalf: login fails, sessions
// are refused, and the user's keys stop validating on every node.
// Errors: NotFound, Invalid (reason), Conflict (lost too many races),
// Unavailable.
type DisableUser struct {
	Actor  string // the admin, recorded in the event
	UserID string
	Reason string // optional, recorded in the event
	// Request is the admin's signed request, kept in the events (nil for
	// an admin acting with a session).
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (DisableUser) CommandName() string { return nameDisableUser }

// DisableUser disables the user cmd names. Disabling a disabled user
// succeeds and records nothing. Errors: see DisableUser (the type).
func (s *Service) DisableUser(ctx context.Context, cmd DisableUser) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.updateUser(ctx, cmd.UserID, func(u *domain.User) ([]domain.Event, error) {
		events, err := u.Disable(cmd.Actor, cmd.Reason, s.now())
		return withRequest(events, cmd.Request), err
	})
}
