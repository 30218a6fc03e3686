// Package ratelimit holds the limiters keyledger puts in front of work a
// flood could abuse: Failures blocks a key (a client address, an API key
// id) for a while once it has failed too often, and Bucket paces attempts
// per key (registrations per client address) with a token bucket.
//
// Their state is per process and bounded: each holds at most MaxEntries
// keys. When a new key finds the table full, the entries that no longer
// limit anything are dropped first, then those that would have expired
// soonest, down to nine tenths of the bound, so that a flood of distinct
// keys costs one sort per tenth of the table rather than work per key.
// Under such a flood a limit may be lifted early; it never grows memory.
//
// Callers pass the time in (time.Now in production, whose monotonic
// reading makes the arithmetic immune to wall-clock steps; a fake clock in
// tests), so nothing here reads a clock or sleeps.
//
// A limiter answers with the time left to wait; the caller refuses with
// domain.RateLimitedFor(wait, message), the one rate-limit error, which
// every transport answers with 429 and Retry-After.
package ratelimit

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxEntries bounds the keys a limiter tracks when its
// configuration says nothing: about 15 MB at most per limiter.
const DefaultMaxEntries = 100_000

// Evict makes room for a new entry in m, which holds max entries or more:
// it drops entries whose expiry has passed, then, while more than nine
// tenths of max remain, those expiring soonest. Limiters elsewhere (the
// login throttle) use it to keep the same bound. Call it with the lock
// that guards m held.
func Evict[E any](m map[string]*E, max int, now time.Time, expiry func(*E) time.Time) {
	for k, e := range m {
		if !expiry(e).After(now) {
			delete(m, k)
		}
	}
	keep := max * 9 / 10
	if len(m) <= keep {
		return
	}
	type aged struct {
		key string
		at  time.Time
	}
	all := make([]aged, 0, len(m))
	for k, e := range m {
		all = append(all, aged{k, expiry(e)})
	}
	slices.SortFunc(all, func(a, b aged) int { return a.at.Compare(b.at) })
	for _, a := range all[:len(all)-keep] {
		delete(m, a.key)
	}
}

// FailuresConfig configures a Failures.
type FailuresConfig struct {
	// Limit is the number of failures within Window that blocks a key.
	Limit int
	// Window is the span the failures are counted over, from the first.
	Window time.Duration
	// Block is how long a key stays blocked (default: Window).
	Block time.Duration
	// MaxEntries bounds the keys tracked (default DefaultMaxEntries).
	MaxEntries int
}

// Failures blocks a key for a while once it has failed Limit times within
// Window: every attempt is then refused, right or wrong, until the block
// ends; then the count starts over. It is safe for concurrent use. A nil
// *Failures limits nothing.
type Failures struct {
	limit  int
	window time.Duration
	block  time.Duration
	max    int

	mu      sync.Mutex
	entries map[string]*failureEntry
	size    atomic.Int64 // len(entries), for Blocked's lock-free fast path
}

type failureEntry struct {
	count int       // failures (and attempts not yet forgiven) since first
	first time.Time // start of the counting window
	until time.Time // blocked before this
}

// expiry is when the entry stops mattering: no block, and the window over.
func (e *failureEntry) expiry(window time.Duration) time.Time {
	end := e.first.Add(window)
	if e.until.After(end) {
		return e.until
	}
	return end
}

// NewFailures returns a Failures, or an error if Limit or Window is not
// positive.
func NewFailures(c FailuresConfig) (*Failures, error) {
	if c.Limit <= 0 || c.Window <= 0 || c.Block < 0 || c.MaxEntries < 0 {
		return nil, errors.New("ratelimit: failures need a positive limit and window")
	}
	if c.Block == 0 {
		c.Block = c.Window
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	return &Failures{limit: c.Limit, window: c.Window, block: c.Block, max: c.MaxEntries,
		entries: make(map[string]*failureEntry)}, nil
}

// Blocked returns how long key must still wait at now (0: not blocked). It
// counts nothing, and takes no lock while no key is tracked.
func (f *Failures) Blocked(key string, now time.Time) time.Duration {
	if f == nil || f.size.Load() == 0 {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.entries[key]; e != nil && now.Before(e.until) {
		return e.until.Sub(now)
	}
	return 0
}

// Fail records a failure of key at now. The failure that reaches the
// limit starts the block.
func (f *Failures) Fail(key string, now time.Time) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count(key, now)
}

// Attempt asks for an attempt by key at now: it returns how long key must
// still wait (0: go ahead). A granted attempt counts as a failure at once,
// in the same step as the check, so concurrent attempts cannot slip past
// the limit; Forgive takes it back when it turns out not to be one.
func (f *Failures) Attempt(key string, now time.Time) time.Duration {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.entries[key]; e != nil && now.Before(e.until) {
		return e.until.Sub(now)
	}
	f.count(key, now)
	return 0
}

// Forgive takes back one attempt of key that was not a failure (it
// succeeded, or tested nothing), and lifts the block if that brings key
// back under the limit. Earlier failures stay counted: a success does not
// wipe the slate, so successes cannot be interleaved to hide failures.
func (f *Failures) Forgive(key string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.entries[key]
	if e == nil || e.count == 0 {
		return
	}
	e.count--
	if e.count < f.limit {
		e.until = time.Time{}
	}
}

// count adds a failure of key at now; called with f.mu held.
func (f *Failures) count(key string, now time.Time) {
	e := f.entries[key]
	if e != nil && !now.Before(e.until) && !now.Before(e.first.Add(f.window)) {
		e = nil // the window is over and no block holds: start over
	}
	if e == nil {
		if _, ok := f.entries[key]; !ok && len(f.entries) >= f.max {
			Evict(f.entries, f.max, now, func(e *failureEntry) time.Time { return e.expiry(f.window) })
		}
		e = &failureEntry{first: now}
		f.entries[key] = e
		f.size.Store(int64(len(f.entries)))
	}
	e.count++
	if e.count >= f.limit {
		e.until = now.Add(f.block)
	}
}

// Len returns the number of keys tracked.
func (f *Failures) Len() int {
	if f == nil {
		return 0
	}
	return int(f.size.Load())
}

// BucketConfig configures a Bucket.
type BucketConfig struct {
	// Every is the time one attempt's token takes to come back: 6 minutes
	// is 10 an hour.
	Every time.Duration
	// Burst is how many attempts a key may make at once after a quiet spell.
	Burst int
	// MaxEntries bounds the keys tracked (default DefaultMaxEntries).
	MaxEntries int
}

// Bucket paces attempts per key with a token bucket of Burst tokens, one
// coming back every Every. It is safe for concurrent use. A nil *Bucket
// limits nothing.
type Bucket struct {
	every time.Duration
	burst int
	max   int

	mu sync.Mutex
	// tat is each key's theoretical arrival time (GCRA): the moment its
	// bucket is full again. A key with tat in the past is as good as absent.
	tat map[string]*time.Time
}

// NewBucket returns a Bucket, or an error if Every or Burst is not positive.
func NewBucket(c BucketConfig) (*Bucket, error) {
	if c.Every <= 0 || c.Burst <= 0 || c.MaxEntries < 0 {
		return nil, errors.New("ratelimit: a bucket needs a positive interval and burst")
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	return &Bucket{every: c.Every, burst: c.Burst, max: c.MaxEntries, tat: make(map[string]*time.Time)}, nil
}

// Take takes a token for key at now: it returns 0 when it did, or how long
// until one is there (and takes nothing).
func (b *Bucket) Take(key string, now time.Time) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	tat := b.tat[key]
	if tat == nil {
		if len(b.tat) >= b.max {
			Evict(b.tat, b.max, now, func(t *time.Time) time.Time { return *t })
		}
		tat = new(time.Time)
		b.tat[key] = tat
	}
	start := *tat
	if start.Before(now) {
		start = now
	}
	// The bucket holds a token while its fill point is less than Burst
	// intervals ahead of now.
	tolerance := time.Duration(b.burst-1) * b.every
	if ahead := start.Sub(now); ahead > tolerance {
		return ahead - tolerance
	}
	*tat = start.Add(b.every)
	return 0
}

// Len returns the number of keys tracked.
func (b *Bucket) Len() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.tat)
}
