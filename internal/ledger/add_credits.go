package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// AddCredits tops up the credits of one of a user's keys. Errors:
// NotFound (missing, or not the caller's), Conflict (revoked key, no
// credits set, more than domain.MaxCredits granted since they were set),
// Invalid (Add not 1 to domain.MaxCredits), Unavailable.
type AddCredits struct {
	UserID string // the caller, who must own the key
	APIKey string
	Add    uint64
	// Preset fixes the event id (drawn if zero). A top-up is not
	// idempotent by itself: a run again with the same Preset adds nothing
	// within JetStream's duplicate window only.
	Preset Preset
}

// CommandName implements Command.
func (AddCredits) CommandName() string { return nameAddCredits }

// AddCredits records the top-up (key.credits_added) and returns the key
// as it is then, the top-up in force in the read models. Errors: see
// AddCredits (the type).
func (s *Service) AddCredits(ctx context.Context, cmd AddCredits) (_ domain.Key, err error) {
	defer s.observed(cmd, time.Now(), &err)
	p, err := s.fill(cmd.Preset)
	if err != nil {
		return domain.Key{}, err
	}
	err = s.updateKey(ctx, cmd.APIKey, func(k *domain.Key) ([]domain.Event, error) {
		if err := s.forCaller(k, cmd.UserID, domain.KeyManage); err != nil {
			return nil, err
		}
		events, err := k.AddCredits(cmd.UserID, cmd.Add, s.now())
		return p.withIDs(events), err
	})
	if err != nil {
		return domain.Key{}, err
	}
	k, _, _ := s.keys.Get(cmd.APIKey)
	return k, nil
}
