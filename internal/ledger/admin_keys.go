package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// Admin keys: the keys that sign requests to the admin API. One admin key
// is enrolled by serve itself while there is none (BootstrapAdmin); every
// other is enrolled or revoked by an admin's signed request, kept in the
// event.

// EnrollAdminKey enrolls a key for an admin (a new admin, or one more key
// of an existing one), on the signed request of an admin.
// Errors: Invalid (name, key, reason, no request), Conflict (key enrolled
// before, or lost too many races), Unavailable.
type EnrollAdminKey struct {
	Actor   string // the admin who asks, recorded in the event
	Request *domain.SignedRequest
	Name    string // the admin the key is for
	Key     domain.PublicKey
	Reason  string
}

// CommandName implements Command.
func (EnrollAdminKey) CommandName() string { return nameEnrollAdminKey }

// EnrollAdminKey enrolls the key cmd names and returns its key id.
// Errors: see EnrollAdminKey (the type).
func (s *Service) EnrollAdminKey(ctx context.Context, cmd EnrollAdminKey) (_ string, err error) {
	defer s.observed(cmd, time.Now(), &err)
	if cmd.Request == nil {
		return "", domain.Errorf(domain.Invalid, "enrolling an admin key takes an admin's signed request")
	}
	if owner, ok := s.admins.KeyOwner(cmd.Key); ok {
		return "", domain.Errorf(domain.Conflict, "this key was enrolled before, for admin %s", owner)
	}
	err = s.update(ctx, domain.CategoryAdmin, cmd.Name, func() ([]domain.Event, uint64, error) {
		a, seq, _ := s.admins.Get(cmd.Name)
		events, err := a.EnrollKey(cmd.Name, cmd.Key, cmd.Actor, cmd.Reason, cmd.Request, s.now())
		return events, seq, err
	})
	return domain.AdminKeyID(cmd.Key), err
}

// RevokeAdminKey revokes an admin key for good, on the signed request of
// an admin (the key's own admin or another).
// Errors: NotFound (no such active key), Invalid (reason, no request),
// Conflict (the last active admin key, or lost too many races),
// Unavailable.
type RevokeAdminKey struct {
	Actor   string // the admin who asks, recorded in the event
	Request *domain.SignedRequest
	KeyID   string
	Reason  string
}

// CommandName implements Command.
func (RevokeAdminKey) CommandName() string { return nameRevokeAdminKey }

// RevokeAdminKey revokes the admin key cmd names. The last active admin
// key is never revoked: nobody could enrol another.
// Errors: see RevokeAdminKey (the type).
func (s *Service) RevokeAdminKey(ctx context.Context, cmd RevokeAdminKey) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	if cmd.Request == nil {
		return domain.Errorf(domain.Invalid, "revoking an admin key takes an admin's signed request")
	}
	name, _, ok := s.admins.Lookup(cmd.KeyID)
	if !ok {
		return domain.Errorf(domain.NotFound, "admin key not found")
	}
	return s.update(ctx, domain.CategoryAdmin, name, func() ([]domain.Event, uint64, error) {
		if s.admins.ActiveKeys() <= 1 {
			return nil, 0, domain.Errorf(domain.Conflict, "the last active admin key cannot be revoked: enrol another first")
		}
		a, seq, _ := s.admins.Get(name)
		events, err := a.RevokeKey(cmd.KeyID, cmd.Actor, cmd.Reason, cmd.Request, s.now())
		return events, seq, err
	})
}

// BootstrapAdmin enrolls the first admin key, by serve itself
// (--bootstrap-admin), while no admin key is active.
// Errors: Invalid (name, key), Conflict (lost a race), Unavailable.
type BootstrapAdmin struct {
	Name string
	Key  domain.PublicKey
}

// CommandName implements Command.
func (BootstrapAdmin) CommandName() string { return nameBootstrapAdmin }

// BootstrapAdmin enrolls cmd's key when no admin key is active and
// reports whether it did; once an admin key exists it does nothing and
// returns false, so it is safe to run on every start.
// Errors: see BootstrapAdmin (the type).
func (s *Service) BootstrapAdmin(ctx context.Context, cmd BootstrapAdmin) (enrolled bool, err error) {
	defer s.observed(cmd, time.Now(), &err)
	err = s.update(ctx, domain.CategoryAdmin, cmd.Name, func() ([]domain.Event, uint64, error) {
		if s.admins.ActiveKeys() > 0 {
			enrolled = false
			return nil, 0, nil
		}
		a, seq, _ := s.admins.Get(cmd.Name)
		events, err := a.EnrollKey(cmd.Name, cmd.Key, domain.ActorBootstrap, "bootstrap", nil, s.now())
		enrolled = err == nil
		return events, seq, err
	})
	return enrolled && err == nil, err
}

// AdminByKey returns the admin whose active key has id keyID, and the key.
func (s *Service) AdminByKey(keyID string) (name string, key domain.PublicKey, ok bool) {
	return s.admins.Lookup(keyID)
}

// ListAdmins returns every admin with its keys, by name.
func (s *Service) ListAdmins() []domain.Admin { return s.admins.List() }
