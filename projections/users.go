package projections

import (
	"sync"

	"github.com/keyledger/keyledger/domain"
)

// Users is the read model of users: by id, and by email through the email
// reservations. It holds no clear personal data of users registered with
// sealed events (see domain.User): whoever holds the data keys opens them.
// It is safe for concurrent use.
type Users struct {
	mu      sync.RWMutex
	byID    map[string]*domain.User
	seqs    map[string]uint64 // user id -> stream sequence of the user's last event
	emails  map[string]reservation
	onErase func(userID string)
}

// reservation is an email reservation aggregate: who holds the address,
// and the aggregate's last event.
type reservation struct {
	userID string
	state  domain.Reservation
	seq    uint64
}

// UsersOption configures a Users.
type UsersOption func(*Users)

// OnErase sets a function called with a user's id when the user's erasure
// is applied (on every instance, live or in replay): the place to drop any
// personal data of the user kept in memory. It is called with the read
// model locked and must not call back into it.
func OnErase(fn func(userID string)) UsersOption {
	return func(m *Users) { m.onErase = fn }
}

// NewUsers returns an empty Users.
func NewUsers(opts ...UsersOption) *Users {
	m := &Users{byID: make(map[string]*domain.User), seqs: make(map[string]uint64), emails: make(map[string]reservation)}
	for _, opt := range opts {
		opt(m)
	}
	return m
}

// Apply folds user events through domain.User.Apply and records email
// reservations; other events are ignored. A reservation of an address
// whose holder is erased passes the address on; one of an address held
// by a user who is not erased changes nothing but the aggregate's state.
func (m *Users) Apply(e domain.Event) error {
	switch e.Category() {
	case domain.CategoryEmail:
		if d, ok := e.Data.(domain.EmailReserved); ok {
			m.mu.Lock()
			defer m.mu.Unlock()
			r, taken := m.emails[e.Aggregate]
			if !taken || m.erasedLocked(r.userID) {
				r.userID = d.UserID
			}
			r.state, r.seq = domain.Reservation{Version: e.Version, LastHash: e.Hash}, e.Sequence
			m.emails[e.Aggregate] = r
		}
		return nil
	case domain.CategoryUser:
		m.mu.Lock()
		defer m.mu.Unlock()
		u := domain.User{}
		if cur := m.byID[e.Aggregate]; cur != nil {
			u = *cur
		}
		if err := u.Apply(e); err != nil {
			return err
		}
		m.byID[e.Aggregate] = &u
		m.seqs[e.Aggregate] = e.Sequence
		if _, erased := e.Data.(domain.UserErased); erased && m.onErase != nil {
			m.onErase(e.Aggregate)
		}
	}
	return nil
}

func (m *Users) erasedLocked(userID string) bool {
	u, ok := m.byID[userID]
	return ok && u.Erased
}

// Get returns a user and the stream sequence of the user's last event.
func (m *Users) Get(id string) (domain.User, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, ok := m.byID[id]
	if !ok {
		return domain.User{}, 0, false
	}
	return *u, m.seqs[id], true
}

// ByID returns a user.
func (m *Users) ByID(id string) (domain.User, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, ok := m.byID[id]
	if !ok {
		return domain.User{}, false
	}
	return *u, true
}

// List returns every user, in no particular order.
func (m *Users) List() []domain.User {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]domain.User, 0, len(m.byID))
	for _, u := range m.byID {
		out = append(out, *u)
	}
	return out
}

// ByEmailKey returns the user that holds the first of the reservation
// aggregates given (domain.EmailAggregate, then the legacy one) held by a
// user who is not erased. The caller checks that the user's own record
// carries the address: only it can open the sealed email.
func (m *Users) ByEmailKey(aggregates ...string) (domain.User, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, agg := range aggregates {
		r, ok := m.emails[agg]
		if !ok {
			continue
		}
		if u, ok := m.byID[r.userID]; ok && !u.Erased {
			return *u, true
		}
	}
	return domain.User{}, false
}

// Reservation returns the state of an email reservation aggregate, the
// stream sequence of its last event (zero: never reserved), and the user
// who holds it (empty when nobody does, or the holder is erased).
func (m *Users) Reservation(aggregate string) (state domain.Reservation, seq uint64, holder string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.emails[aggregate]
	if !ok {
		return domain.Reservation{}, 0, ""
	}
	if m.erasedLocked(r.userID) {
		return r.state, r.seq, ""
	}
	return r.state, r.seq, r.userID
}

// erased reports whether a user is erased.
func (m *Users) erased(userID string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.erasedLocked(userID)
}
