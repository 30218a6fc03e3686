package projections

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/keyledger/keyledger/domain"
)

// Admins is the read model of the admins and their keys, which verify the
// signed requests to the admin API. It applies an admin event only when
// its authority holds at its position in the log: the first enrolment
// (the bootstrap) needs no request while no admin key is active; every
// other admin event keeps the signed request of an admin whose key is
// active there, whose signature verifies, and is recorded as that admin's
// act. So every reader can tell that each admin key came from an admin.
// It is safe for concurrent use.
type Admins struct {
	mu     sync.RWMutex
	byName map[string]*domain.Admin
	seqs   map[string]uint64           // admin name -> stream sequence of its last event
	keys   map[string]string           // key id -> admin name, every key ever enrolled
	known  map[domain.PublicKey]string // every key ever enrolled -> admin name
	active int                         // keys not revoked
}

// NewAdmins returns an empty Admins.
func NewAdmins() *Admins {
	return &Admins{byName: map[string]*domain.Admin{}, seqs: map[string]uint64{}, keys: map[string]string{},
		known: map[domain.PublicKey]string{}}
}

// ErrAdminAuthority is returned (wrapped) by Admins.Apply for an admin
// event whose authority does not hold.
var ErrAdminAuthority = errors.New("admin event without a valid admin's authority")

// Apply folds admin events; other events are ignored.
func (m *Admins) Apply(e domain.Event) error {
	if e.Category() != domain.CategoryAdmin {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkAuthority(e); err != nil {
		return fmt.Errorf("%s %s: %w", e.Type, e.Aggregate, err)
	}
	a := domain.Admin{}
	if cur := m.byName[e.Aggregate]; cur != nil {
		a = *cur
	}
	if d, ok := e.Data.(domain.AdminKeyEnrolled); ok {
		if owner, seen := m.known[d.Key]; seen {
			return fmt.Errorf("%s %s: key enrolled before for %s", e.Type, e.Aggregate, owner)
		}
		if other, seen := m.keys[domain.AdminKeyID(d.Key)]; seen {
			return fmt.Errorf("%s %s: key id taken by %s", e.Type, e.Aggregate, other)
		}
	}
	if err := a.Apply(e); err != nil {
		return err
	}
	switch d := e.Data.(type) {
	case domain.AdminKeyEnrolled:
		m.known[d.Key] = a.Name
		m.keys[domain.AdminKeyID(d.Key)] = a.Name
		m.active++
	case domain.AdminKeyRevoked:
		m.active--
	}
	m.byName[a.Name] = &a
	m.seqs[a.Name] = e.Sequence
	return nil
}

// checkAuthority is called with m.mu held.
func (m *Admins) checkAuthority(e domain.Event) error {
	if e.Request == nil {
		if _, ok := e.Data.(domain.AdminKeyEnrolled); ok && m.active == 0 && e.Actor == domain.ActorBootstrap {
			return nil
		}
		return fmt.Errorf("%w: no signed request", ErrAdminAuthority)
	}
	name, pub, ok := m.lookup(e.Request.KeyID)
	if !ok {
		return fmt.Errorf("%w: key %s is not an active admin key", ErrAdminAuthority, e.Request.KeyID)
	}
	if e.Actor != domain.AdminActor(name) {
		return fmt.Errorf("%w: actor %s is not %s", ErrAdminAuthority, e.Actor, domain.AdminActor(name))
	}
	if err := e.Request.Verify(pub); err != nil {
		return fmt.Errorf("%w: %w", ErrAdminAuthority, err)
	}
	return nil
}

// lookup is Lookup with m.mu held.
func (m *Admins) lookup(keyID string) (string, domain.PublicKey, bool) {
	name, ok := m.keys[keyID]
	if !ok {
		return "", domain.PublicKey{}, false
	}
	k, ok := m.byName[name].ActiveKey(keyID)
	if !ok {
		return "", domain.PublicKey{}, false
	}
	return name, k.Key, true
}

// Lookup returns the admin whose active key has id keyID, and the key.
func (m *Admins) Lookup(keyID string) (name string, key domain.PublicKey, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.lookup(keyID)
}

// Get returns an admin and the stream sequence of its last event.
func (m *Admins) Get(name string) (domain.Admin, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, ok := m.byName[name]
	if !ok {
		return domain.Admin{}, 0, false
	}
	return *a, m.seqs[name], true
}

// KeyOwner returns the admin a key was ever enrolled for.
func (m *Admins) KeyOwner(key domain.PublicKey) (string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	name, ok := m.known[key]
	return name, ok
}

// ActiveKeys returns how many admin keys are not revoked.
func (m *Admins) ActiveKeys() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.active
}

// List returns every admin, by name.
func (m *Admins) List() []domain.Admin {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]domain.Admin, 0, len(m.byName))
	for _, a := range m.byName {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b domain.Admin) int { return strings.Compare(a.Name, b.Name) })
	return out
}
