package projections

import (
	"slices"
	"sync"

	"github.com/keyledger/keyledger/domain"
)

// Teams is the read model of teams: each team's state, the teams of each
// user, and the team each open invitation belongs to. It is safe for
// concurrent use.
type Teams struct {
	mu          sync.RWMutex
	teams       map[string]*teamEntry
	byUser      map[string][]string // user id -> team ids, in joining order
	invitations map[string]string   // invitation id -> team id
	order       []string            // team ids, oldest first
}

type teamEntry struct {
	team domain.Team
	seq  uint64
}

// NewTeams returns an empty Teams.
func NewTeams() *Teams {
	return &Teams{teams: map[string]*teamEntry{}, byUser: map[string][]string{}, invitations: map[string]string{}}
}

// Apply folds a team event through domain.Team.Apply; other events are
// ignored.
func (m *Teams) Apply(e domain.Event) error {
	if e.Category() != domain.CategoryTeam {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	entry := m.teams[e.Aggregate]
	next := domain.Team{}
	if entry != nil {
		next = entry.team
	}
	if err := next.Apply(e); err != nil {
		return err
	}
	if entry == nil {
		entry = &teamEntry{}
		m.teams[e.Aggregate] = entry
		m.order = append(m.order, e.Aggregate)
	}
	for id := range entry.team.Members {
		if _, still := next.Members[id]; !still {
			m.byUser[id] = slices.DeleteFunc(m.byUser[id], func(t string) bool { return t == e.Aggregate })
			if len(m.byUser[id]) == 0 {
				delete(m.byUser, id)
			}
		}
	}
	for id := range next.Members {
		if _, was := entry.team.Members[id]; !was {
			m.byUser[id] = append(m.byUser[id], e.Aggregate)
		}
	}
	if d, ok := e.Data.(domain.TeamInvitationIssued); ok {
		m.invitations[d.Invitation] = e.Aggregate
	}
	for id := range entry.team.Invitations {
		if _, open := next.Invitations[id]; !open {
			delete(m.invitations, id)
		}
	}
	entry.team, entry.seq = next, e.Sequence
	return nil
}

// Skip records an event of a type this code does not know on a team's
// subject: its version and sequence still count for the next append.
func (m *Teams) Skip(e domain.Event) {
	if e.Category() != domain.CategoryTeam {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if entry := m.teams[e.Aggregate]; entry != nil && e.Version == entry.team.Version+1 {
		entry.team.Version, entry.team.LastHash, entry.seq = e.Version, e.Hash, e.Sequence
	}
}

// Get returns a team and the stream sequence of its last event.
func (m *Teams) Get(id string) (domain.Team, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	entry, ok := m.teams[id]
	if !ok {
		return domain.Team{}, 0, false
	}
	return entry.team, entry.seq, true
}

// ByInvitation returns the id of the team an open invitation is to ("":
// none).
func (m *Teams) ByInvitation(invitation string) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.invitations[invitation]
}

// OfUser returns the teams userID is a member of, in joining order.
func (m *Teams) OfUser(userID string) []domain.Team {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]domain.Team, 0, len(m.byUser[userID]))
	for _, id := range m.byUser[userID] {
		out = append(out, m.teams[id].team)
	}
	return out
}

// All returns every team, oldest first.
func (m *Teams) All() []domain.Team {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]domain.Team, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, m.teams[id].team)
	}
	return out
}
