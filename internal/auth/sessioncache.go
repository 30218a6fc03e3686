package auth

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultVerifiedSessions bounds how many verified session tokens a
// Sessions remembers, so that a token presented again costs a hash and a
// map look-up instead of an Ed25519 verification.
const DefaultVerifiedSessions = 16384

// verifiedSessions is a bounded LRU cache of session tokens that verified,
// keyed by the SHA-256 of the token (the token itself, a bearer secret, is
// not kept). An entry holds what the token says and the instant it stops
// verifying (its exp plus the leeway); a hit at or after that instant
// removes the entry and is a miss, so the token is verified, and refused,
// as if never seen. Only tokens that verified are added: a refused one is
// verified again each time. Whether the session still holds (the user's
// session epoch, a logout, a disabled user) is not a property of the token
// and is checked by the caller on every request, cached or not. Safe for
// concurrent use.
type verifiedSessions struct {
	mu    sync.Mutex
	max   int
	byKey map[[sha256.Size]byte]*list.Element
	order *list.List // of *verifiedSession, most recently used first
}

type verifiedSession struct {
	key   [sha256.Size]byte
	sess  Session
	until time.Time // the token no longer verifies at or after this instant
}

func newVerifiedSessions(max int) *verifiedSessions {
	return &verifiedSessions{max: max, byKey: make(map[[sha256.Size]byte]*list.Element), order: list.New()}
}

// get returns what the token with this key says, if it verified before
// and does not verify no longer at now.
func (c *verifiedSessions) get(key [sha256.Size]byte, now time.Time) (Session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return Session{}, false
	}
	v := el.Value.(*verifiedSession)
	if !now.Before(v.until) {
		c.order.Remove(el)
		delete(c.byKey, key)
		return Session{}, false
	}
	c.order.MoveToFront(el)
	return v.sess, true
}

// add remembers a token that verified, forgetting the least recently used
// one when full.
func (c *verifiedSessions) add(key [sha256.Size]byte, sess Session, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		el.Value = &verifiedSession{key: key, sess: sess, until: until}
		c.order.MoveToFront(el)
		return
	}
	if c.order.Len() >= c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*verifiedSession).key)
	}
	c.byKey[key] = c.order.PushFront(&verifiedSession{key: key, sess: sess, until: until})
}

// len returns how many tokens are remembered.
func (c *verifiedSessions) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
