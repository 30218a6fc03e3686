// Package usage counts how API keys are used and carries the counts from
// the validation nodes to serve: Counters, on the hot path, counts in
// memory per key (valid requests, refusals by reason, last use); a Flusher
// publishes what was counted as one batched Report per interval to the
// usage stream (<stream>_USAGE, apart from the ledger's log), keeping
// reports in a bounded buffer while NATS is unreachable; a Fold reads the
// stream back into per-key hourly and daily buckets.
//
// Usage is advisory: validation never waits for it, and a node that dies
// loses at most the counts of its current interval.
package usage

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// DefaultMaxKeys caps the keys one node counts within one interval; the
// counts of further keys are dropped (and counted, see Counters.Overflow)
// until the next flush. Only keys that exist are counted, so the cap is
// reached only by a node whose traffic touches that many keys in one
// interval.
const DefaultMaxKeys = 100_000

// shards spreads the keys over independent locks: concurrent validations
// of different keys rarely wait for each other.
const shards = 64

// reasonIndex numbers the domain's reasons: a key's counts are an array,
// not a map, so counting allocates nothing.
var (
	reasons     = domain.Reasons()
	reasonIndex = func() map[domain.Reason]int {
		m := make(map[domain.Reason]int, len(reasons))
		for i, r := range reasons {
			m[r] = i
		}
		return m
	}()
)

// counts are one key's counts within an interval.
type counts struct {
	byReason [len(domainReasons)]uint64
	lastUsed int64 // Unix ns of the newest valid use; 0: none
}

// domainReasons sizes counts.byReason; a test checks it against
// domain.Reasons.
var domainReasons = [26]struct{}{}

// shard is one lock's share of the keys.
type shard struct {
	mu   sync.Mutex
	keys map[string]*counts
	_    [40]byte // keeps neighbouring shards off one cache line
}

// Counters counts validations per key in memory. It is safe for
// concurrent use; Record never blocks on anything but a shard's lock, held
// for a map lookup and an increment.
type Counters struct {
	seed     maphash.Seed
	maxKeys  int64
	size     atomic.Int64 // keys in the shards
	overflow atomic.Uint64
	since    atomic.Int64 // Unix ns the current interval started
	shards   [shards]shard
}

// NewCounters returns empty counters whose interval starts at start,
// counting at most maxKeys keys per interval (0: DefaultMaxKeys).
func NewCounters(maxKeys int, start time.Time) *Counters {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	c := &Counters{seed: maphash.MakeSeed(), maxKeys: int64(maxKeys)}
	for i := range c.shards {
		c.shards[i].keys = make(map[string]*counts)
	}
	c.since.Store(start.UnixNano())
	return c
}

// Record counts one validation of apiKey that ended with reason at now.
// The caller records only keys the node knows (a key id anyone can make up
// would let a client grow the counters without bound); reasons the domain
// does not name are ignored.
func (c *Counters) Record(apiKey string, reason domain.Reason, now time.Time) {
	if c == nil {
		return
	}
	i, ok := reasonIndex[reason]
	if !ok {
		return
	}
	s := &c.shards[maphash.String(c.seed, apiKey)%shards]
	s.mu.Lock()
	k := s.keys[apiKey]
	if k == nil {
		if c.size.Add(1) > c.maxKeys {
			c.size.Add(-1)
			s.mu.Unlock()
			c.overflow.Add(1)
			return
		}
		k = &counts{}
		s.keys[strings.Clone(apiKey)] = k
	}
	k.byReason[i]++
	if reason == domain.ReasonOK {
		if t := now.UnixNano(); t > k.lastUsed {
			k.lastUsed = t
		}
	}
	s.mu.Unlock()
}

// Overflow returns how many validations were not counted because the
// interval already counted the most keys it may.
func (c *Counters) Overflow() uint64 { return c.overflow.Load() }

// Take returns what was counted since the last Take (or NewCounters) as a
// report from node for the interval [start, now), and starts the next
// interval at now. It returns a report with no keys when nothing was
// counted.
func (c *Counters) Take(node string, now time.Time) Report {
	r := Report{Version: ReportVersion, Node: node,
		Start: time.Unix(0, c.since.Swap(now.UnixNano())).UTC(), End: now.UTC()}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		keys := s.keys
		if len(keys) > 0 {
			s.keys = make(map[string]*counts, len(keys))
		} else {
			keys = nil // the shard keeps its empty map; Records may fill it now
		}
		s.mu.Unlock()
		c.size.Add(-int64(len(keys)))
		for k, n := range keys {
			r.Keys = append(r.Keys, n.entry(k))
		}
	}
	return r
}

// entry is a key's counts as a report entry.
func (n *counts) entry(apiKey string) KeyUsage {
	e := KeyUsage{APIKey: apiKey, Valid: n.byReason[reasonIndex[domain.ReasonOK]]}
	for i, v := range n.byReason {
		if v == 0 || reasons[i] == domain.ReasonOK {
			continue
		}
		if e.Refused == nil {
			e.Refused = make(map[domain.Reason]uint64)
		}
		e.Refused[reasons[i]] = v
	}
	if n.lastUsed != 0 {
		t := time.Unix(0, n.lastUsed).UTC()
		e.LastUsed = &t
	}
	return e
}
