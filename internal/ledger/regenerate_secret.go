package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// RegenerateSecret gives one of a user's keys a new secret.
// Errors: NotFound (missing, or not the caller's), Conflict (revoked or
// expired key, a grace period for a disabled one), Invalid (grace period
// out of range), Unavailable.
type RegenerateSecret struct {
	UserID string // the caller, who must own the key
	APIKey string
	// GracePeriod is how long the replaced secret keeps validating (0 to
	// domain.MaxGracePeriod; 0: it stops at once).
	GracePeriod time.Duration
	// Preset fixes the new secret and the event id (zero fields: drawn
	// afresh).
	Preset Preset
}

// CommandName implements Command.
func (RegenerateSecret) CommandName() string { return nameRegenerateSecret }

// RegenerateSecret gives the key cmd names a new secret and returns it;
// the old secret stops validating as soon as the event is applied, or
// once cmd.GracePeriod has passed, and signatures made with the old key
// pair stop at once. A key whose secret already
// hashes as cmd.Preset's was given it by an earlier run with that Preset:
// the run appends nothing and returns the secret, whatever the key's state
// since. Errors: see RegenerateSecret (the type).
func (s *Service) RegenerateSecret(ctx context.Context, cmd RegenerateSecret) (_ domain.Secret, err error) {
	defer s.observed(cmd, time.Now(), &err)
	p, err := s.fill(cmd.Preset)
	if err != nil {
		return domain.Secret{}, err
	}
	public, err := p.Secret.PublicKey(cmd.APIKey)
	if err != nil {
		return domain.Secret{}, err
	}
	err = s.updateKey(ctx, cmd.APIKey, func(k *domain.Key) ([]domain.Event, error) {
		if err := s.forCaller(k, cmd.UserID, domain.KeyManage); err != nil {
			return nil, err
		}
		if k.OwnedBy(cmd.UserID) && domain.SecretMatches(k.SecretHash, p.Secret) {
			return nil, nil
		}
		events, err := k.RegenerateSecret(cmd.UserID, p.Secret.Hash(), public, cmd.GracePeriod, s.now())
		return p.withIDs(events), err
	})
	if err != nil {
		return domain.Secret{}, err
	}
	return p.Secret, nil
}
