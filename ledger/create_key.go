package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// CreateKey makes a new API key for userID and returns it with its secret.
// The secret is returned only here; the log keeps its SHA-256.
// Errors: Invalid (name, expiry), Conflict (the user holds the maximum of
// unrevoked keys), Unavailable.
func (s *Service) CreateKey(ctx context.Context, userID, name string, expiresAt time.Time) (domain.Key, domain.Secret, error) {
	// A bound against floods, not a guarantee under concurrent creates: two
	// racing requests may both pass at the limit.
	if s.maxKeys > 0 && s.keys.ActiveCount(userID) >= s.maxKeys {
		return domain.Key{}, domain.Secret{}, domain.Errorf(domain.Conflict,
			"key limit reached: at most %d unrevoked keys per user; revoke one first", s.maxKeys)
	}
	secret, err := domain.NewSecret(s.random)
	if err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	apiKey := s.newID(domain.APIKeyPrefix)
	var k domain.Key
	events, err := k.Create(domain.CreateKey{APIKey: apiKey, UserID: userID, Name: name,
		SecretHash: secret.Hash(), ExpiresAt: expiresAt}, s.now())
	if err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	if err := s.appendAndWait(ctx, eventstore.Pending{Event: events[0]}); err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	created, _, ok := s.keys.Get(apiKey)
	if !ok {
		return domain.Key{}, domain.Secret{}, domain.Errorf(domain.Internal, "created key %s not in read model", apiKey)
	}
	return created, secret, nil
}
