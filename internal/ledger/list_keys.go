package ledger

import (
	"time"

	"github.com/keyledger/keyledger/domain"
)

// Page size limits for ListKeys.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// ListKeys returns a page of userID's keys, newest first, and the cursor of
// the next page ("" when none). limit 0 means DefaultPageSize.
// Errors: Invalid (limit out of range, bad cursor).
func (s *Service) ListKeys(userID string, limit int, cursor string) ([]domain.Key, string, error) {
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 1 || limit > MaxPageSize {
		return nil, "", domain.Errorf(domain.Invalid, "limit must be between 1 and %d", MaxPageSize)
	}
	return s.keys.ListByUser(userID, limit, cursor)
}

// GetKey returns one of userID's keys, or a key of a team userID is a
// member of. Errors: NotFound (missing, or not the caller's: the two are
// indistinguishable).
func (s *Service) GetKey(userID, apiKey string) (domain.Key, error) {
	k, _, ok := s.keys.Get(apiKey)
	if ok {
		if err := s.forCaller(&k, userID, domain.KeyRead); err != nil {
			return domain.Key{}, err
		}
	}
	if !ok || !k.OwnedBy(userID) {
		return domain.Key{}, domain.Errorf(domain.NotFound, "api key not found")
	}
	return k, nil
}

// Now returns the service's current time (for statuses such as expired).
func (s *Service) Now() time.Time { return s.now() }
