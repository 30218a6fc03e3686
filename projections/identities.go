package projections

import (
	"sync"

	"github.com/keyledger/keyledger/domain"
)

// Identities is the read model of the identities at OpenID providers
// linked to users (domain.CategoryIdentity), by aggregate id. An identity
// whose user is erased is free again: Users says who is. It is safe for
// concurrent use.
type Identities struct {
	users *Users
	mu    sync.RWMutex
	byID  map[string]reservation
}

// NewIdentities returns an empty Identities that asks users whether a
// holder is erased.
func NewIdentities(users *Users) *Identities {
	return &Identities{users: users, byID: make(map[string]reservation)}
}

// Apply records identity links; other events are ignored. A link of an
// identity whose holder is erased passes it on; one of an identity held
// by a user who is not erased changes nothing but the aggregate's state.
func (m *Identities) Apply(e domain.Event) error {
	d, ok := e.Data.(domain.IdentityLinked)
	if !ok || e.Category() != domain.CategoryIdentity {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, taken := m.byID[e.Aggregate]
	if !taken || m.users.erased(r.userID) {
		r.userID = d.UserID
	}
	r.state, r.seq = domain.Reservation{Version: e.Version, LastHash: e.Hash}, e.Sequence
	m.byID[e.Aggregate] = r
	return nil
}

// Get returns the state of an identity aggregate, the stream sequence of
// its last event (zero: never linked), and the user it logs in as (empty
// when nobody, or the holder is erased).
func (m *Identities) Get(aggregate string) (state domain.Reservation, seq uint64, userID string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.byID[aggregate]
	if !ok {
		return domain.Reservation{}, 0, ""
	}
	if m.users.erased(r.userID) {
		return r.state, r.seq, ""
	}
	return r.state, r.seq, r.userID
}
