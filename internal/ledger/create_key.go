package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// CreateKey makes a new API key for userID and returns it with its secret.
// It is CreateKeyWith for a key that accepts its secret in headers, with
// every identifier drawn afresh.
func (s *Service) CreateKey(ctx context.Context, userID, name string, expiresAt time.Time) (domain.Key, domain.Secret, error) {
	return s.CreateKeyWith(ctx, domain.CreateKey{UserID: userID, Name: name, ExpiresAt: expiresAt}, Preset{})
}

// CreateKeyWith makes a new API key as cmd describes (owner, name, expiry,
// signed-only) and returns it with its secret. The key id, the secret and
// the event id come from p (its zero fields drawn); the service derives the
// secret's public key, so cmd's APIKey, SecretHash and PublicKey are
// ignored. The secret is returned only here; the log keeps its SHA-256 and
// public key. Once a run with p has stored its event, a run with the same p
// appends nothing and returns that key and secret: the key exists, is
// cmd.UserID's, and its secret hashes as p's does.
// Errors: Invalid (name, expiry), Conflict (the user holds the maximum of
// unrevoked keys, or p's key id is held otherwise), Unavailable.
func (s *Service) CreateKeyWith(ctx context.Context, cmd domain.CreateKey, p Preset) (domain.Key, domain.Secret, error) {
	p, err := s.fill(p)
	if err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	cmd.APIKey, cmd.SecretHash = p.APIKey, p.Secret.Hash()
	if cmd.PublicKey, err = p.Secret.PublicKey(p.APIKey); err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	err = s.update(ctx, domain.CategoryKey, p.APIKey, func() ([]domain.Event, uint64, error) {
		k, seq, _ := s.keys.Get(p.APIKey)
		if k.Exists() {
			if k.UserID == cmd.UserID && domain.SecretMatches(k.SecretHash, p.Secret) {
				return nil, seq, nil // created by an earlier run with p
			}
			return nil, 0, domain.Errorf(domain.Conflict, "key already exists")
		}
		// A bound against floods, not a guarantee under concurrent creates:
		// two racing requests may both pass at the limit.
		if s.maxKeys > 0 && s.keys.ActiveCount(cmd.UserID) >= s.maxKeys {
			return nil, 0, domain.Errorf(domain.Conflict,
				"key limit reached: at most %d unrevoked keys per user; revoke one first", s.maxKeys)
		}
		events, err := k.Create(cmd, s.now())
		return p.withIDs(events), seq, err
	})
	if err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	created, _, ok := s.keys.Get(p.APIKey)
	if !ok {
		return domain.Key{}, domain.Secret{}, domain.Errorf(domain.Internal, "created key %s not in read model", p.APIKey)
	}
	if created.UserID != cmd.UserID {
		// p was used before for another owner, within the duplicate
		// window: JetStream dropped this append as a repeat of that one.
		return domain.Key{}, domain.Secret{}, domain.Errorf(domain.Conflict, "key already exists")
	}
	return created, p.Secret, nil
}
