package ledger

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
)

// Admin queries. The admin commands are one per file (admin_revoke_key.go,
// disable_user.go, enable_user.go, revoke_user_keys.go, create_user.go).

// ListUsers returns every user with the email opened, by email (erased
// users, who have none, first, by id). Errors: Unavailable, Internal.
func (s *Service) ListUsers(ctx context.Context) ([]domain.User, error) {
	users := s.users.List()
	for i, u := range users {
		var err error
		if users[i], err = s.reveal(ctx, u); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(users, func(a, b domain.User) int {
		return cmp.Or(strings.Compare(a.Email, b.Email), strings.Compare(a.ID, b.ID))
	})
	return users, nil
}

// AdminListKeys returns a page of a user's own keys (all users' when
// userID is empty, by the users' email, newest first within each user,
// then every team's keys, team by team, oldest team first), keeping
// those whose status at now is in statuses (all when empty).
// Errors: Invalid, Unavailable, Internal.
func (s *Service) AdminListKeys(ctx context.Context, userID string, statuses []domain.KeyStatus) ([]domain.Key, error) {
	ids := []string{userID}
	if userID == "" {
		users, err := s.ListUsers(ctx)
		if err != nil {
			return nil, err
		}
		ids = ids[:0]
		for _, u := range users {
			ids = append(ids, u.ID)
		}
	}
	now := s.now()
	var out []domain.Key
	type owner struct {
		id   string
		list func(id string, limit int, cursor string) ([]domain.Key, string, error)
	}
	var owners []owner
	for _, id := range ids {
		owners = append(owners, owner{id, s.keys.ListByUser})
	}
	if userID == "" {
		for _, t := range s.teams.All() {
			owners = append(owners, owner{t.ID, s.keys.ListByTeam})
		}
	}
	for _, o := range owners {
		cursor := ""
		for {
			page, next, err := o.list(o.id, MaxPageSize, cursor)
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

// SessionUser returns the user a verified session token names, if the
// session still holds (see domain.User.SessionValid): sessions of unknown,
// disabled or erased users, sessions issued before the user's sessions
// were last ended (password change, disable, erase, revocation), and
// sessions ended by a logout are refused. Errors: Unauthorized.
func (s *Service) SessionUser(sess auth.Session) (domain.User, error) {
	u, ok := s.users.ByID(sess.UserID)
	if !ok || !u.SessionValid(sess.Epoch, sess.TokenID) || s.verifications.Pending(sess.UserID) {
		return domain.User{}, domain.Errorf(domain.Unauthorized, "invalid or expired session token")
	}
	return u, nil
}
