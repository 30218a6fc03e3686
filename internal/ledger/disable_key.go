package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// DisableKey pauses one of a user's keys: it is refused everywhere until
// enabled, and its previous secret's grace period ends. Errors: NotFound
// (missing, or not the caller's), Conflict (revoked key), Invalid
// (reason), Unavailable.
type DisableKey struct {
	UserID string // the caller, who must own the key
	APIKey string
	Reason string // optional, recorded in the event
	// Preset fixes the event id (drawn if zero).
	Preset Preset
}

// CommandName implements Command.
func (DisableKey) CommandName() string { return nameDisableKey }

// DisableKey disables the key cmd names. Disabling a disabled key
// succeeds and records nothing. Errors: see DisableKey (the type).
func (s *Service) DisableKey(ctx context.Context, cmd DisableKey) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	p, err := s.fill(cmd.Preset)
	if err != nil {
		return err
	}
	return s.updateKey(ctx, cmd.APIKey, func(k *domain.Key) ([]domain.Event, error) {
		if err := s.forCaller(k, cmd.UserID, domain.KeyManage); err != nil {
			return nil, err
		}
		events, err := k.Disable(cmd.UserID, cmd.Reason, s.now())
		return p.withIDs(events), err
	})
}
