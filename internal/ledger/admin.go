package ledger

import (
	"slices"
	"strings"

	"github.com/keyledger/keyledger/domain"
)

// Admin queries. The admin commands are one per file (admin_revoke_key.go,
// disable_user.go, enable_user.go, revoke_user_keys.go, create_user.go).

// ListUsers returns every user, by email.
func (s *Service) ListUsers() []domain.User {
	users := s.users.List()
	slices.SortFunc(users, func(a, b domain.User) int { return strings.Compare(a.Email, b.Email) })
	return users
}

// AdminListKeys returns a page of a user's keys (all users' when userID is
// empty, newest first within each user), keeping those whose status at
// now is in statuses (all when empty). Errors: Invalid.
func (s *Service) AdminListKeys(userID string, statuses []domain.KeyStatus) ([]domain.Key, error) {
	ids := []string{userID}
	if userID == "" {
		ids = ids[:0]
		for _, u := range s.ListUsers() {
			ids = append(ids, u.ID)
		}
	}
	now := s.now()
	var out []domain.Key
	for _, id := range ids {
		cursor := ""
		for {
			page, next, err := s.keys.ListByUser(id, MaxPageSize, cursor)
			if err != nil {
				return nil, err
			}
			for _, k := range page {
				if len(statuses) == 0 || slices.Contains(statuses, k.StatusAt(now)) {
					out = append(out, k)
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	return out, nil
}

// SessionUser returns the user a session token names, if that user may
// still act: sessions of disabled or unknown users are refused.
// Errors: Unauthorized.
func (s *Service) SessionUser(userID string) (domain.User, error) {
	u, ok := s.users.ByID(userID)
	if !ok || u.Disabled || s.verifications.Pending(userID) {
		return domain.User{}, domain.Errorf(domain.Unauthorized, "invalid or expired session token")
	}
	return u, nil
}
