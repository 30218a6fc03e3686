package ledger

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// RevokeKey revokes one of userID's keys for good. Revoking a revoked key
// succeeds and records nothing. Errors: NotFound (missing, or not the
// caller's), Conflict (lost too many races), Unavailable.
func (s *Service) RevokeKey(ctx context.Context, userID, apiKey string) error {
	return s.updateKey(ctx, apiKey, func(k *domain.Key) ([]domain.Event, error) {
		return k.Revoke(userID, s.now())
	})
}
