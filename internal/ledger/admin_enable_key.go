package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// AdminEnableKey enables any key on an admin's behalf.
// Errors: NotFound, Conflict (revoked key), Invalid (reason), Unavailable.
type AdminEnableKey struct {
	Actor  string // the admin, recorded in the event
	APIKey string
	Reason string // optional, recorded in the event
	// Request is the admin's signed request, kept in the event.
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (AdminEnableKey) CommandName() string { return nameAdminEnableKey }

// AdminEnableKey enables the key cmd names, recording its actor and
// reason. Enabling a key that is not disabled succeeds and records
// nothing. Errors: see AdminEnableKey (the type).
func (s *Service) AdminEnableKey(ctx context.Context, cmd AdminEnableKey) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.updateKey(ctx, cmd.APIKey, func(k *domain.Key) ([]domain.Event, error) {
		events, err := k.EnableAsAdmin(cmd.Actor, cmd.Reason, s.now())
		return withRequest(events, cmd.Request), err
	})
}
