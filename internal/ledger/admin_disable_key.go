package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// AdminDisableKey disables any key on an admin's behalf.
// Errors: NotFound, Conflict (revoked key), Invalid (reason), Unavailable.
type AdminDisableKey struct {
	Actor  string // the admin, recorded in the event
	APIKey string
	Reason string // optional, recorded in the event
	// Request is the admin's signed request, kept in the event.
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (AdminDisableKey) CommandName() string { return nameAdminDisableKey }

// AdminDisableKey disables the key cmd names, recording its actor and
// reason. Disabling a disabled key succeeds and records nothing.
// Errors: see AdminDisableKey (the type).
func (s *Service) AdminDisableKey(ctx context.Context, cmd AdminDisableKey) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.updateKey(ctx, cmd.APIKey, func(k *domain.Key) ([]domain.Event, error) {
		events, err := k.DisableAsAdmin(cmd.Actor, cmd.Reason, s.now())
		return withRequest(events, cmd.Request), err
	})
}
