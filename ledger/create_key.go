package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// CreateKey makes a new API key for userID and returns it with its secret.
// It is CreateKeyWith for a key that accepts its secret in headers.
func (s *Service) CreateKey(ctx context.Context, userID, name string, expiresAt time.Time) (domain.Key, domain.Secret, error) {
	return s.CreateKeyWith(ctx, domain.CreateKey{UserID: userID, Name: name, ExpiresAt: expiresAt})
}

// CreateKeyWith makes a new API key as cmd describes (owner, name, expiry,
// signed-only) and returns it with its secret. The service draws the key
// id (unless cmd.APIKey is set), the secret, and derives the secret's
// public key; cmd's SecretHash and PublicKey are ignored. The secret is
// returned only here; the log keeps its SHA-256 and public key.
// Errors: Invalid (name, expiry, key id), Conflict (the user holds the
// maximum of unrevoked keys, or the key id exists), Unavailable.
func (s *Service) CreateKeyWith(ctx context.Context, cmd domain.CreateKey) (domain.Key, domain.Secret, error) {
	// A bound against floods, not a guarantee under concurrent creates: two
	// racing requests may both pass at the limit.
	if s.maxKeys > 0 && s.keys.ActiveCount(cmd.UserID) >= s.maxKeys {
		return domain.Key{}, domain.Secret{}, domain.Errorf(domain.Conflict,
			"key limit reached: at most %d unrevoked keys per user; revoke one first", s.maxKeys)
	}
	secret, err := domain.NewSecret(s.random)
	if err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	if cmd.APIKey == "" {
		cmd.APIKey = s.newID(domain.APIKeyPrefix)
	}
	if cmd.PublicKey, err = secret.PublicKey(cmd.APIKey); err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	cmd.SecretHash = secret.Hash()
	var k domain.Key
	events, err := k.Create(cmd, s.now())
	if err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	if err := s.appendAndWait(ctx, eventstore.Pending{Event: events[0]}); err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	created, _, ok := s.keys.Get(cmd.APIKey)
	if !ok {
		return domain.Key{}, domain.Secret{}, domain.Errorf(domain.Internal, "created key %s not in read model", cmd.APIKey)
	}
	return created, secret, nil
}
