package projections

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/keyledger/keyledger/domain"
)

// Keys is the read model of API keys: the lookup used to validate them and
// each user's listing, newest first. It is safe for concurrent use.
type Keys struct {
	mu     sync.RWMutex
	keys   map[string]*keyEntry
	byUser map[string][]string // user id -> their own api keys, oldest first
	byTeam map[string][]string // team id -> the team's api keys, oldest first
}

type keyEntry struct {
	key domain.Key
	seq uint64 // stream sequence of the key's last event
}

// NewKeys returns an empty Keys.
func NewKeys() *Keys {
	return &Keys{keys: make(map[string]*keyEntry), byUser: make(map[string][]string), byTeam: make(map[string][]string)}
}

// Apply folds a key event through domain.Key.Apply; other events are
// ignored.
func (m *Keys) Apply(e domain.Event) error {
	if e.Category() != domain.CategoryKey {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	entry := m.keys[e.Aggregate]
	next := domain.Key{}
	if entry != nil {
		next = entry.key
	}
	if err := next.Apply(e); err != nil {
		return err
	}
	if entry == nil {
		entry = &keyEntry{}
		m.keys[e.Aggregate] = entry
		if next.TeamID != "" {
			m.byTeam[next.TeamID] = append(m.byTeam[next.TeamID], e.Aggregate)
		} else {
			m.byUser[next.UserID] = append(m.byUser[next.UserID], e.Aggregate)
		}
	}
	entry.key, entry.seq = next, e.Sequence
	return nil
}

// Skip records an event of a type this code does not know on a key's
// subject: its sequence and version still count for the next append.
func (m *Keys) Skip(e domain.Event) {
	if e.Category() != domain.CategoryKey {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if entry := m.keys[e.Aggregate]; entry != nil && e.Version == entry.key.Version+1 {
		entry.key.Version, entry.key.LastHash, entry.seq = e.Version, e.Hash, e.Sequence
	}
}

// Get returns a key and the stream sequence of its last event.
func (m *Keys) Get(apiKey string) (domain.Key, uint64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	entry, ok := m.keys[apiKey]
	if !ok {
		return domain.Key{}, 0, false
	}
	return entry.key, entry.seq, true
}

// ActiveCount returns how many of a user's own keys (a team's keys
// aside) are not revoked; an expired key counts until it is revoked.
func (m *Keys) ActiveCount(userID string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.activeCount(m.byUser[userID])
}

// TeamActiveCount is ActiveCount of a team's keys.
func (m *Keys) TeamActiveCount(teamID string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.activeCount(m.byTeam[teamID])
}

func (m *Keys) activeCount(ids []string) int {
	n := 0
	for _, id := range ids {
		if !m.keys[id].key.Revoked() {
			n++
		}
	}
	return n
}

// Len returns the number of keys.
func (m *Keys) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.keys)
}

// ListByUser returns up to limit of the user's own keys (not their
// teams'), newest first, starting after cursor ("" for the first page),
// and the cursor of the next page ("" when there is none). Cursors stay
// valid while keys are added. Errors: Invalid for a cursor this code did
// not issue.
func (m *Keys) ListByUser(userID string, limit int, cursor string) ([]domain.Key, string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.list(m.byUser[userID], limit, cursor)
}

// ListByTeam is ListByUser of a team's keys.
func (m *Keys) ListByTeam(teamID string, limit int, cursor string) ([]domain.Key, string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.list(m.byTeam[teamID], limit, cursor)
}

// list pages through ids. Called with m.mu held.
func (m *Keys) list(ids []string, limit int, cursor string) ([]domain.Key, string, error) {
	if limit < 1 {
		return nil, "", domain.Errorf(domain.Invalid, "limit must be at least 1")
	}
	end := len(ids) // exclusive upper bound of the indexes still to list
	if cursor != "" {
		n, ok := decodeCursor(cursor)
		if !ok || n > len(ids) {
			return nil, "", domain.Errorf(domain.Invalid, "invalid cursor")
		}
		end = n
	}
	out := make([]domain.Key, 0, min(limit, end))
	i := end - 1
	for ; i >= 0 && len(out) < limit; i-- {
		out = append(out, m.keys[ids[i]].key)
	}
	next := ""
	if i >= 0 {
		next = encodeCursor(i + 1)
	}
	return out, next, nil
}

const cursorPrefix = "k1:"

func encodeCursor(n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.Itoa(n)))
}

func decodeCursor(s string) (int, bool) {
	if len(s) > 32 {
		return 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[len(cursorPrefix):]))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func errMalformedAggregate(e domain.Event) error {
	return fmt.Errorf("apply %s: malformed aggregate id %q", e.Type, e.Aggregate)
}

func errMalformedOwner(k domain.Key) error {
	return fmt.Errorf("key %s: malformed owner id %q", k.APIKey, k.UserID)
}
