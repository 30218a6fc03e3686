package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// AdminRevokeKey revokes any key on an admin's behalf.
// Errors: NotFound, Invalid (reason), Conflict (lost too many races),
// Unavailable.
type AdminRevokeKey struct {
	Actor  string // the admin, recorded in the event
	APIKey string
	Reason string // optional, recorded in the event
	// Request is the admin's signed request, kept in the events (nil for
	// an admin acting with a session).
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (AdminRevokeKey) CommandName() string { return nameAdminRevokeKey }

// AdminRevokeKey revokes the key cmd names, recording its actor and
// reason. Revoking a revoked key succeeds and records nothing.
// Errors: see AdminRevokeKey (the type).
func (s *Service) AdminRevokeKey(ctx context.Context, cmd AdminRevokeKey) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.adminRevokeKey(ctx, cmd)
}

// adminRevokeKey is AdminRevokeKey unobserved, for commands made of it.
func (s *Service) adminRevokeKey(ctx context.Context, cmd AdminRevokeKey) error {
	return s.updateKey(ctx, cmd.APIKey, func(k *domain.Key) ([]domain.Event, error) {
		events, err := k.RevokeAsAdmin(cmd.Actor, cmd.Reason, s.now())
		return withRequest(events, cmd.Request), err
	})
}
