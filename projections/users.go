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
	byEmail map[string]string // EmailAggregate(email) -> user id
}

// NewUsers returns an empty Users.
func NewUsers() *Users {
	return &Users{byID: make(map[string]*domain.User), byEmail: make(map[string]string)}
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
	}
	return nil
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
