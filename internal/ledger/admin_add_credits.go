package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// AdminAddCredits tops up any key's credits on an admin's behalf.
// Errors: NotFound, Conflict, Invalid (Add, reason), Unavailable.
type AdminAddCredits struct {
	Actor  string // the admin, recorded in the event
	APIKey string
	Add    uint64
	Reason string // optional, recorded in the event
	// Request is the admin's signed request, kept in the event.
	Request *domain.SignedRequest
	// Preset fixes the event id (drawn if zero), as AddCredits's does.
	Preset Preset
}

// CommandName implements Command.
func (AdminAddCredits) CommandName() string { return nameAdminAddCredits }

// AdminAddCredits records the top-up and returns the key as it is then.
// Errors: see AdminAddCredits (the type).
func (s *Service) AdminAddCredits(ctx context.Context, cmd AdminAddCredits) (_ domain.Key, err error) {
	defer s.observed(cmd, time.Now(), &err)
	p, err := s.fill(cmd.Preset)
	if err != nil {
		return domain.Key{}, err
	}
	err = s.updateKey(ctx, cmd.APIKey, func(k *domain.Key) ([]domain.Event, error) {
		events, err := k.AddCreditsAsAdmin(cmd.Actor, cmd.Add, cmd.Reason, s.now())
		return withRequest(p.withIDs(events), cmd.Request), err
	})
	if err != nil {
		return domain.Key{}, err
	}
	k, _, _ := s.keys.Get(cmd.APIKey)
	return k, nil
}
