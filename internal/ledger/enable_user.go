package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// EnableUser lets a disabled user back in, on an admin's behalf.
// Errors: NotFound, Invalid (reason), Conflict (lost too many races),
// Unavailable.
type EnableUser struct {
	Actor  string // the admin, recorded in the event
	UserID string
	Reason string // optional, recorded in the event
	// Request is the admin's signed request, kept in the events (nil for
	// an admin acting with a session).
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (EnableUser) CommandName() string { return nameEnableUser }

// EnableUser enables the user cmd names. Enabling an enabled user
// succeeds and records nothing. Errors: see EnableUser (the type).
func (s *Service) EnableUser(ctx context.Context, cmd EnableUser) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.updateUser(ctx, cmd.UserID, func(u *domain.User) ([]domain.Event, error) {
		events, err := u.Enable(cmd.Actor, cmd.Reason, s.now())
		return withRequest(events, cmd.Request), err
	})
}
