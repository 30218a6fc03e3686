package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// CreateKey makes a new API key for a user.
// Errors: Invalid (name, expiry, scopes, metadata, limits), Conflict (the user holds the maximum of
// unrevoked keys, or the Preset's key id is held otherwise), Unavailable.
type CreateKey struct {
	UserID     string    // the owner
	Name       string    // optional label
	ExpiresAt  time.Time // zero: never
	SignedOnly bool      // refuse the secret in headers; accept only signed requests
	Scopes     []string  // what the key grants (see domain.ScopeSet)
	Metadata   []byte    // a JSON object returned by validation; empty: none
	RateLimit  *domain.RateLimit
	Credits    *domain.Credits // credits from creation on, and an optional refill
	// TeamID, if set, makes the key the team's, created by UserID, a
	// member whose role allows it (developers and up); ServiceAccount, if
	// also set, gives it to one of the team's service accounts (owners
	// and admins only).
	TeamID         string
	ServiceAccount string
	// Preset fixes the key id, the secret and the event id (zero fields:
	// drawn afresh).
	Preset Preset
}

// CommandName implements Command.
func (CreateKey) CommandName() string { return nameCreateKey }

// CreateKey makes a new API key as cmd describes and returns it with its
// secret. The secret is returned only here; the log keeps its SHA-256 and
// the public key the service derives from it. Once a run with cmd.Preset
// has stored its event, a run with the same Preset appends nothing and
// returns that key and secret: the key exists, is cmd.UserID's, and its
// secret hashes as the Preset's does. Errors: see CreateKey (the type).
func (s *Service) CreateKey(ctx context.Context, cmd CreateKey) (_ domain.Key, _ domain.Secret, err error) {
	defer s.observed(cmd, time.Now(), &err)
	p, err := s.fill(cmd.Preset)
	if err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	create := domain.CreateKey{APIKey: p.APIKey, UserID: cmd.UserID, Name: cmd.Name, SecretHash: p.Secret.Hash(),
		SignedOnly: cmd.SignedOnly, ExpiresAt: cmd.ExpiresAt, Scopes: cmd.Scopes, Metadata: cmd.Metadata,
		RateLimit: cmd.RateLimit, Credits: cmd.Credits, TeamID: cmd.TeamID, ServiceAccount: cmd.ServiceAccount}
	if create.PublicKey, err = p.Secret.PublicKey(p.APIKey); err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	err = s.update(ctx, domain.CategoryKey, p.APIKey, func() ([]domain.Event, uint64, error) {
		k, seq, _ := s.keys.Get(p.APIKey)
		if k.Exists() {
			if k.UserID == cmd.UserID && k.TeamID == cmd.TeamID && domain.SecretMatches(k.SecretHash, p.Secret) {
				return nil, seq, nil // created by an earlier run with p
			}
			return nil, 0, domain.Errorf(domain.Conflict, "key already exists")
		}
		if cmd.TeamID != "" {
			if err := s.checkTeamCreate(cmd); err != nil {
				return nil, 0, err
			}
		} else if s.maxKeys > 0 && s.keys.ActiveCount(cmd.UserID) >= s.maxKeys {
			// A bound against floods, not a guarantee under concurrent
			// creates: two racing requests may both pass at the limit.
			return nil, 0, domain.Errorf(domain.Conflict,
				"key limit reached: at most %d unrevoked keys per user; revoke one first", s.maxKeys)
		}
		events, err := k.Create(create, s.now())
		return p.withIDs(events), seq, err
	})
	if err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	created, _, ok := s.keys.Get(p.APIKey)
	if !ok {
		return domain.Key{}, domain.Secret{}, domain.Errorf(domain.Internal, "created key %s not in read model", p.APIKey)
	}
	if created.UserID != cmd.UserID || created.TeamID != cmd.TeamID {
		// p was used before for another owner, within the duplicate
		// window: JetStream dropped this append as a repeat of that one.
		return domain.Key{}, domain.Secret{}, domain.Errorf(domain.Conflict, "key already exists")
	}
	return created, p.Secret, nil
}
