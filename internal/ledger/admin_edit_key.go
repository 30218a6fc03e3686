package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// AdminEditKey changes any key on an admin's behalf (its scopes, say).
// Errors: NotFound, Conflict (revoked key), Invalid, PreconditionFailed,
// Unavailable.
type AdminEditKey struct {
	Actor     string // the admin, recorded in the events
	APIKey    string
	Edit      domain.KeyEdit
	IfVersion uint64 // see EditKey
	// Request is the admin's signed request, kept in the events.
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (AdminEditKey) CommandName() string { return nameAdminEditKey }

// AdminEditKey applies cmd.Edit to the key and returns it as it is then.
// Errors: see AdminEditKey (the type).
func (s *Service) AdminEditKey(ctx context.Context, cmd AdminEditKey) (_ domain.Key, err error) {
	defer s.observed(cmd, time.Now(), &err)
	err = s.updateKey(ctx, cmd.APIKey, func(k *domain.Key) ([]domain.Event, error) {
		if err := checkVersion(k, "", cmd.IfVersion); err != nil {
			return nil, err
		}
		events, err := k.EditAsAdmin(cmd.Actor, cmd.Edit, s.now())
		return withRequest(events, cmd.Request), err
	})
	if err != nil {
		return domain.Key{}, err
	}
	k, _, _ := s.keys.Get(cmd.APIKey)
	return k, nil
}
