package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// EditKey changes one of a user's keys: its name, scopes, metadata,
// expiry, rate limit or credits. Errors: NotFound (missing, or not the caller's), Conflict
// (revoked key), Invalid (a bad value), PreconditionFailed (IfVersion no
// longer holds), Unavailable.
type EditKey struct {
	UserID string // the caller, who must own the key
	APIKey string
	Edit   domain.KeyEdit
	// IfVersion, when not 0, is the key's version the caller saw: the edit
	// is refused if the key changed since.
	IfVersion uint64
	// Preset fixes the event ids (drawn if zero).
	Preset Preset
}

// CommandName implements Command.
func (EditKey) CommandName() string { return nameEditKey }

// EditKey applies cmd.Edit to the key and returns the key as it is then:
// one event per field that changes, all stored or none, and in force in
// the read models before it returns. Errors: see EditKey (the type).
func (s *Service) EditKey(ctx context.Context, cmd EditKey) (_ domain.Key, err error) {
	defer s.observed(cmd, time.Now(), &err)
	p, err := s.fill(cmd.Preset)
	if err != nil {
		return domain.Key{}, err
	}
	err = s.updateKey(ctx, cmd.APIKey, func(k *domain.Key) ([]domain.Event, error) {
		if err := s.forCaller(k, cmd.UserID, domain.KeyManage); err != nil {
			return nil, err
		}
		if err := checkVersion(k, cmd.UserID, cmd.IfVersion); err != nil {
			return nil, err
		}
		events, err := k.Edit(cmd.UserID, cmd.Edit, s.now())
		return p.withIDs(events), err
	})
	if err != nil {
		return domain.Key{}, err
	}
	k, _, _ := s.keys.Get(cmd.APIKey)
	return k, nil
}

// checkVersion refuses an edit made on the condition that the key is at
// version want (0: no condition): NotFound for a key that is missing or
// not owner's (owner "": any owner), before anything else is said of it,
// and PreconditionFailed for one at another version.
func checkVersion(k *domain.Key, owner string, want uint64) error {
	if !k.Exists() || (owner != "" && !k.OwnedBy(owner)) {
		return domain.Errorf(domain.NotFound, "api key not found")
	}
	if want != 0 && k.Version != want {
		return domain.Errorf(domain.PreconditionFailed, "the key changed: it is at version %d, not %d", k.Version, want)
	}
	return nil
}
