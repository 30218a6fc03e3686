package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// RevokeUserKeys revokes every active key of a user on an admin's behalf.
// Errors: NotFound (no such user), Invalid (reason), Conflict (lost too
// many races), Unavailable (some keys may be revoked by then; run it
// again).
type RevokeUserKeys struct {
	Actor  string // the admin, recorded in each event
	UserID string
	Reason string // optional, recorded in each event
	// Request is the admin's signed request, kept in each event (nil for
	// an admin acting with a session).
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (RevokeUserKeys) CommandName() string { return nameRevokeUserKeys }

// RevokeUserKeys revokes the keys of the user cmd names, one event each,
// and returns the keys it revoked (those revoked before an error too).
// Errors: see RevokeUserKeys (the type).
func (s *Service) RevokeUserKeys(ctx context.Context, cmd RevokeUserKeys) (revoked []string, err error) {
	defer s.observed(cmd, time.Now(), &err)
	if _, ok := s.users.ByID(cmd.UserID); !ok {
		return nil, domain.Errorf(domain.NotFound, "user not found")
	}
	return s.revokeKeysOf(ctx, AdminRevokeKey{Actor: cmd.Actor, Reason: cmd.Reason, Request: cmd.Request}, cmd.UserID)
}

// revokeKeysOf revokes each active key of a user as revoke describes (its
// APIKey is set per key) and returns the keys it revoked (those revoked
// before an error too).
func (s *Service) revokeKeysOf(ctx context.Context, revoke AdminRevokeKey, userID string) (revoked []string, err error) {
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
			// Each key's revocation is part of the calling command, not
			// an AdminRevokeKey command of its own.
			revoke.APIKey = k.APIKey
			if err := s.adminRevokeKey(ctx, revoke); err != nil {
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
