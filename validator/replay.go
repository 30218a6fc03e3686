package validator

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultReplayCacheSize bounds the signed requests a node remembers at
// once (about 40 bytes each).
const DefaultReplayCacheSize = 1 << 20

// replayCache remembers the (key, nonce) pairs of signed requests it has
// accepted, so that each is accepted once on this node while its signature
// could still pass the time checks. Entries live in two generations of
// span each: an entry added at any moment stays between span and twice
// span, so span must cover the longest time a signature stays acceptable
// after it is first seen. Full, it refuses new pairs rather than forget
// one early. It is safe for concurrent use.
type replayCache struct {
	mu      sync.Mutex
	span    time.Duration
	max     int
	started time.Time // start of the current generation
	current map[[16]byte]struct{}
	prev    map[[16]byte]struct{}
}

func newReplayCache(span time.Duration, max int) *replayCache {
	return &replayCache{span: span, max: max, current: make(map[[16]byte]struct{}), prev: make(map[[16]byte]struct{})}
}

// outcome of replayCache.add.
const (
	replayFresh = iota // first sighting: remembered
	replaySeen         // already accepted once
	replayFull         // the cache is full and remembers nothing more
)

// add records the pair at now and reports whether it is fresh.
func (c *replayCache) add(keyID, nonce string, now time.Time) int {
	id := replayID(keyID, nonce)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started.IsZero() {
		c.started = now
	}
	for now.Sub(c.started) >= c.span {
		// Rotate; after a long quiet spell both generations are stale.
		c.prev, c.current = c.current, make(map[[16]byte]struct{})
		c.started = c.started.Add(c.span)
		if now.Sub(c.started) >= c.span {
			c.prev = make(map[[16]byte]struct{})
			c.started = now
		}
	}
	if _, ok := c.current[id]; ok {
		return replaySeen
	}
	if _, ok := c.prev[id]; ok {
		return replaySeen
	}
	if len(c.current)+len(c.prev) >= c.max {
		return replayFull
	}
	c.current[id] = struct{}{}
	return replayFresh
}

// len returns the number of remembered pairs.
func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.current) + len(c.prev)
}

// replayID names a pair without keeping the nonce's bytes: a length prefix
// keeps ("ab","c") and ("a","bc") apart.
func replayID(keyID, nonce string) [16]byte {
	h := sha256.New()
	var n [8]byte
	for i, l := 0, uint64(len(keyID)); i < 8; i++ {
		n[i] = byte(l >> (8 * i))
	}
	h.Write(n[:])
	h.Write([]byte(keyID))
	h.Write([]byte(nonce))
	var id [16]byte
	copy(id[:], h.Sum(nil))
	return id
}
