package projections

import (
	"sync"

	"github.com/keyledger/keyledger/domain"
)

// Verifications is the read model of email verifications, by user id. It
// is safe for concurrent use.
type Verifications struct {
	mu   sync.RWMutex
	byID map[string]domain.Verification
	seqs map[string]uint64
}

// NewVerifications returns an empty Verifications.
func NewVerifications() *Verifications {
	return &Verifications{byID: map[string]domain.Verification{}, seqs: map[string]uint64{}}
}

// Apply folds verification events through domain.Verification.Apply; other
// events are ignored.
func (m *Verifications) Apply(e domain.Event) error {
	if e.Category() != domain.CategoryVerification {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.byID[e.Aggregate]
	if err := v.Apply(e); err != nil {
		return err
	}
	m.byID[e.Aggregate], m.seqs[e.Aggregate] = v, e.Sequence
	return nil
}

// Get returns a user's verification and the stream sequence of its last
// event (the zero Verification and 0 for a user who never needed one).
func (m *Verifications) Get(userID string) (domain.Verification, uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.byID[userID], m.seqs[userID]
}

// Pending reports whether a user must still verify the email address.
func (m *Verifications) Pending(userID string) bool {
	v, _ := m.Get(userID)
	return v.Pending
}

// Invitations is the read model of invitations, by id. It is safe for
// concurrent use.
type Invitations struct {
	mu   sync.RWMutex
	byID map[string]domain.Invitation
	seqs map[string]uint64
}

// NewInvitations returns an empty Invitations.
func NewInvitations() *Invitations {
	return &Invitations{byID: map[string]domain.Invitation{}, seqs: map[string]uint64{}}
}

// Apply folds invitation events through domain.Invitation.Apply; other
// events are ignored.
func (m *Invitations) Apply(e domain.Event) error {
	if e.Category() != domain.CategoryInvitation {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.byID[e.Aggregate]
	if err := i.Apply(e); err != nil {
		return err
	}
	m.byID[e.Aggregate], m.seqs[e.Aggregate] = i, e.Sequence
	return nil
}

// Get returns an invitation and the stream sequence of its last event.
func (m *Invitations) Get(id string) (domain.Invitation, uint64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.byID[id], m.seqs[id]
}
