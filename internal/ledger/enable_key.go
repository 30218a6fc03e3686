package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// EnableKey lifts a DisableKey. Errors: NotFound (missing, or not the
// caller's), Conflict (revoked key), Invalid (reason), Unavailable.
type EnableKey struct {
	UserID string // the caller, who must own the key
	APIKey string
	Reason string // optional, recorded in the event
	// Preset fixes the event id (drawn if zero).
	Preset Preset
}

// CommandName implements Command.
func (EnableKey) CommandName() string { return nameEnableKey }

// EnableKey enables the key cmd names. Enabling a key that is not
// disabled succeeds and records nothing. Errors: see EnableKey (the type).
func (s *Service) EnableKey(ctx context.Context, cmd EnableKey) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	p, err := s.fill(cmd.Preset)
	if err != nil {
		return err
	}
	return s.updateKey(ctx, cmd.APIKey, func(k *domain.Key) ([]domain.Event, error) {
		if err := s.forCaller(k, cmd.UserID, domain.KeyManage); err != nil {
			return nil, err
		}
		events, err := k.Enable(cmd.UserID, cmd.Reason, s.now())
		return p.withIDs(events), err
	})
}
