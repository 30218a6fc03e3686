package projections

import (
	"sync"

	"github.com/keyledger/keyledger/domain"
)

// Users is the read model of users: by id, and by email through the email
// reservations. It is safe for concurrent use.
type Users struct {
	mu      sync.RWMutex
	byID    map[string]*domain.User
	seqs    map[string]uint64 // user id -> stream sequence of the user's last event
	byEmail map[string]string // EmailAggregate(email) -> user id
}

// NewUsers returns an empty Users.
func NewUsers() *Users {
	return &Users{byID: make(map[string]*domain.User), seqs: make(map[string]uint64), byEmail: make(map[string]string)}
}

// Apply folds user events through domain.User.Apply and records email
// reservations; other events are ignored.
func (m *Users) Apply(e domain.Event) error {
	switch e.Category() {
	case domain.CategoryEmail:
		if d, ok := e.Data.(domain.EmailReserved); ok {
			m.mu.Lock()
			defer m.mu.Unlock()
			if _, taken := m.byEmail[e.Aggregate]; !taken {
				m.byEmail[e.Aggregate] = d.UserID
			}
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
	}
	return nil
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

// ByEmail returns the user an email address (normalised) belongs to: the
// address's reservation names the user, and the user's own record must
// carry the same address.
func (m *Users) ByEmail(email string) (domain.User, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.byEmail[domain.EmailAggregate(email)]
	if !ok {
		return domain.User{}, false
	}
	u, ok := m.byID[id]
	if !ok || u.Email != email {
		return domain.User{}, false
	}
	return *u, true
}
