// Package testclock is a clock that tests set and move by hand, for code
// that takes its time from a func() time.Time, so that tests of time
// windows never sleep.
package testclock

import (
	"sync"
	"time"
)

// Clock is a settable clock. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock showing at.
func New(at time.Time) *Clock { return &Clock{now: at} }

// Now returns the clock's time; pass the method value as a clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock d forward (backward for a negative d).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
