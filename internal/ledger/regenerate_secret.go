package ledger

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// RegenerateSecret gives one of userID's keys a new secret and returns it;
// the old secret, and signatures made with the old key pair, stop
// validating as soon as the event is applied.
// Errors: NotFound (missing, or not the caller's), Conflict (revoked or
// expired key), Unavailable.
func (s *Service) RegenerateSecret(ctx context.Context, userID, apiKey string) (domain.Secret, error) {
	return s.RegenerateSecretWith(ctx, userID, apiKey, Preset{})
}

// RegenerateSecretWith is RegenerateSecret with the new secret and the
// event id taken from p (its zero fields drawn). A key whose secret already
// hashes as p's was given it by an earlier run with p: the run appends
// nothing and returns the secret, whatever the key's state since.
// Errors: as RegenerateSecret.
func (s *Service) RegenerateSecretWith(ctx context.Context, userID, apiKey string, p Preset) (domain.Secret, error) {
	p, err := s.fill(p)
	if err != nil {
		return domain.Secret{}, err
	}
	public, err := p.Secret.PublicKey(apiKey)
	if err != nil {
		return domain.Secret{}, err
	}
	err = s.updateKey(ctx, apiKey, func(k *domain.Key) ([]domain.Event, error) {
		if k.Exists() && k.UserID == userID && domain.SecretMatches(k.SecretHash, p.Secret) {
			return nil, nil
		}
		events, err := k.RegenerateSecret(userID, p.Secret.Hash(), public, s.now())
		return p.withIDs(events), err
	})
	if err != nil {
		return domain.Secret{}, err
	}
	return p.Secret, nil
}
