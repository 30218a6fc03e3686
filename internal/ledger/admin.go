package ledger

import (
	"context"
	"slices"
	"strings"

	"github.com/keyledger/keyledger/domain"
)

// Admin use cases. The caller authenticates the admin; actor is recorded
// in every event ("admin:<name>", or the admin user's id over HTTP).

// AdminRevokeKey revokes any key, recording actor and reason. Revoking a
// revoked key succeeds and records nothing. Errors: NotFound, Invalid,
// Conflict, Unavailable.
func (s *Service) AdminRevokeKey(ctx context.Context, actor, apiKey, reason string) error {
	return s.updateKey(ctx, apiKey, func(k *domain.Key) ([]domain.Event, error) {
		return k.RevokeAsAdmin(actor, reason, s.now())
	})
}

// DisableUser locks a user out: login fails, sessions are refused, and the
// user's keys stop validating on every node. Errors: NotFound, Invalid,
// Conflict, Unavailable.
func (s *Service) DisableUser(ctx context.Context, actor, userID, reason string) error {
	return s.updateUser(ctx, userID, func(u *domain.User) ([]domain.Event, error) {
		return u.Disable(actor, reason, s.now())
	})
}

// EnableUser lets a disabled user back in. Errors: NotFound, Invalid,
// Conflict, Unavailable.
func (s *Service) EnableUser(ctx context.Context, actor, userID, reason string) error {
	return s.updateUser(ctx, userID, func(u *domain.User) ([]domain.Event, error) {
		return u.Enable(actor, reason, s.now())
	})
}

// RevokeUserKeys revokes every active key of a user, one event each, and
// returns the keys it revoked. Errors: NotFound (no such user), Invalid,
// Conflict, Unavailable (some keys may be revoked by then; run it again).
func (s *Service) RevokeUserKeys(ctx context.Context, actor, userID, reason string) ([]string, error) {
	if _, ok := s.users.ByID(userID); !ok {
		return nil, domain.Errorf(domain.NotFound, "user not found")
	}
	var revoked []string
	cursor := ""
	for {
		page, next, err := s.keys.ListByUser(userID, MaxPageSize, cursor)
		if err != nil {
			return revoked, err
		}
		for _, k := range page {
			if k.Revoked() {
				continue
			}
			if err := s.AdminRevokeKey(ctx, actor, k.APIKey, reason); err != nil {
				return revoked, err
			}
			revoked = append(revoked, k.APIKey)
		}
		if next == "" {
			return revoked, nil
		}
		cursor = next
	}
}

// CreateUser registers a user on an admin's behalf, with a role (the way
// to bootstrap the first admin). Errors: as RegisterUser.
func (s *Service) CreateUser(ctx context.Context, actor, email, password string, role domain.Role) (domain.User, error) {
	return s.register(ctx, actor, email, password, role, Preset{})
}

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
	if !ok || u.Disabled {
		return domain.User{}, domain.Errorf(domain.Unauthorized, "invalid or expired session token")
	}
	return u, nil
}
