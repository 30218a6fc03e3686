package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// RevokeKey revokes one of a user's keys for good.
// Errors: NotFound (missing, or not the caller's), Conflict (lost too many
// races), Unavailable.
type RevokeKey struct {
	UserID string // the caller, who must own the key
	APIKey string
	// Preset fixes the event id (drawn if zero). Revocation is idempotent
	// by itself; the fixed id makes a repeated append within JetStream's
	// duplicate window a duplicate too.
	Preset Preset
}

// CommandName implements Command.
func (RevokeKey) CommandName() string { return nameRevokeKey }

// RevokeKey revokes the key cmd names. Revoking a revoked key succeeds and
// records nothing. Errors: see RevokeKey (the type).
func (s *Service) RevokeKey(ctx context.Context, cmd RevokeKey) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	p, err := s.fill(cmd.Preset)
	if err != nil {
		return err
	}
	return s.updateKey(ctx, cmd.APIKey, func(k *domain.Key) ([]domain.Event, error) {
		if err := s.forCaller(k, cmd.UserID, domain.KeyManage); err != nil {
			return nil, err
		}
		events, err := k.Revoke(cmd.UserID, s.now())
		return p.withIDs(events), err
	})
}
