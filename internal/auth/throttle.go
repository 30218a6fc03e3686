package auth

import (
	"sync"
	"time"
)

// Throttle limits failed logins per account: after Free failures within
// Window, each further attempt must wait BaseWait, twice as long per
// further failure, up to MaxDelay. A success clears the account. It is safe for concurrent use;
// its state is per process. A refused attempt is answered with
// domain.RateLimitedFor the wait, like every other limit.
type Throttle struct {
	Free     int
	Window   time.Duration
	BaseWait time.Duration
	MaxDelay time.Duration

	mu      sync.Mutex
	entries map[string]*throttleEntry
}

type throttleEntry struct {
	failures int
	first    time.Time
	until    time.Time
}

// maxThrottleEntries bounds memory under a flood of distinct names.
const maxThrottleEntries = 100_000

// NewThrottle returns a Throttle with defaults: 5 free failures per 15
// minutes, then waits from 1 s doubling to 15 minutes.
func NewThrottle() *Throttle {
	return &Throttle{Free: 5, Window: 15 * time.Minute, BaseWait: time.Second, MaxDelay: 15 * time.Minute,
		entries: make(map[string]*throttleEntry)}
}

// Attempt asks to check a password for account at now. It returns how
// long the account must still wait (0: go ahead). A granted attempt counts
// as a failure at once, in the same step as the check, so concurrent
// guesses cannot slip past the limit; Succeed clears the count.
func (t *Throttle) Attempt(account string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.entries == nil {
		t.entries = make(map[string]*throttleEntry)
	}
	e := t.entries[account]
	if e != nil && now.Before(e.until) {
		return e.until.Sub(now)
	}
	if e == nil || e.quiet(now, t.Window) {
		if e == nil && len(t.entries) >= maxThrottleEntries {
			t.evict(now)
		}
		e = &throttleEntry{first: now}
		t.entries[account] = e
	}
	e.failures++
	if over := e.failures - t.Free; over >= 0 {
		wait := t.BaseWait << min(over, 30)
		if wait > t.MaxDelay || wait <= 0 {
			wait = t.MaxDelay
		}
		e.until = now.Add(wait)
	}
	return 0
}

// Succeed clears an account's failures.
func (t *Throttle) Succeed(account string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, account)
}

// Refund takes back one attempt of account that checked no password (the
// check was turned away, say for want of a hashing slot), and lifts the
// wait if that brings the account back within its free failures. Earlier
// failures stay counted.
func (t *Throttle) Refund(account string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[account]
	if e == nil || e.failures == 0 {
		return
	}
	e.failures--
	if e.failures < t.Free {
		e.until = time.Time{}
	}
}

// quiet reports whether an entry's count may start over: a whole window
// has passed since its first failure and since its last wait ended, so
// doubling waits cannot outlast the window and reset the count.
func (e *throttleEntry) quiet(now time.Time, window time.Duration) bool {
	return now.Sub(e.first) > window && now.Sub(e.until) > window
}

// evict drops quiet entries, then, if the map is still full, entries that
// impose no wait now; accounts that are locked out stay locked out, so a
// flood of new names cannot lift a lockout. Called with t.mu held.
func (t *Throttle) evict(now time.Time) {
	for k, e := range t.entries {
		if e.quiet(now, t.Window) {
			delete(t.entries, k)
		}
	}
	// Free a tenth at once, so that a flood costs one scan per 10,000 new
	// names rather than one per name.
	for k, e := range t.entries {
		if len(t.entries) < maxThrottleEntries*9/10 {
			return
		}
		if !now.Before(e.until) {
			delete(t.entries, k)
		}
	}
}
