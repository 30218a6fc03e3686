package ledger

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// RegenerateSecret gives one of userID's keys a new secret and returns it;
// the old secret stops validating as soon as the event is applied.
// Errors: NotFound (missing, or not the caller's), Conflict (revoked or
// expired key), Unavailable.
func (s *Service) RegenerateSecret(ctx context.Context, userID, apiKey string) (domain.Secret, error) {
	secret, err := domain.NewSecret(s.random)
	if err != nil {
		return domain.Secret{}, err
	}
	public, err := secret.PublicKey(apiKey)
	if err != nil {
		return domain.Secret{}, err
	}
	err = s.updateKey(ctx, apiKey, func(k *domain.Key) ([]domain.Event, error) {
		return k.RegenerateSecret(userID, secret.Hash(), public, s.now())
	})
	if err != nil {
		return domain.Secret{}, err
	}
	return secret, nil
}
