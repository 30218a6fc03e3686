package ledger

import (
	"github.com/keyledger/keyledger/domain"
)

// Validate checks an API key and its secret against the read model: the
// key must exist, be active and unexpired, and its stored hash must equal
// the secret's SHA-256 (compared in constant time). An unknown key costs
// the same hash and compare as a wrong secret. Every failure is the same
// Unauthorized error; the reason is returned separately for logs and
// metrics only.
func (s *Service) Validate(apiKey string, secret domain.Secret) (domain.Key, string, error) {
	k, _, found := s.keys.Get(apiKey)
	ok := k.CheckSecret(secret, s.now()) // runs on the zero Key too
	switch {
	case !found:
		return domain.Key{}, "unknown_key", domain.ErrBadCredentials
	case !ok && k.StatusAt(s.now()) != domain.StatusActive:
		return domain.Key{}, string(k.StatusAt(s.now())), domain.ErrBadCredentials
	case !ok:
		return domain.Key{}, "wrong_secret", domain.ErrBadCredentials
	}
	return k, "ok", nil
}
