package ledger

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// RevokeKey revokes one of userID's keys for good. Revoking a revoked key
// succeeds and records nothing. Errors: NotFound (missing, or not the
// caller's), Conflict (lost too many races), Unavailable.
func (s *Service) RevokeKey(ctx context.Context, userID, apiKey string) error {
	return s.RevokeKeyWith(ctx, userID, apiKey, Preset{})
}

// RevokeKeyWith is RevokeKey with the event id taken from p (drawn if
// zero). Revocation is idempotent by itself; the fixed id makes a repeated
// append within JetStream's duplicate window a duplicate too.
// Errors: as RevokeKey.
func (s *Service) RevokeKeyWith(ctx context.Context, userID, apiKey string, p Preset) error {
	p, err := s.fill(p)
	if err != nil {
		return err
	}
	return s.updateKey(ctx, apiKey, func(k *domain.Key) ([]domain.Event, error) {
		events, err := k.Revoke(userID, s.now())
		return p.withIDs(events), err
	})
}
