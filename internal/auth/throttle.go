package auth

import (
	"sync"
	"time"

	"github.com/keyledger/keyledger/internal/ratelimit"
)

// Throttle limits failed logins so that guessing is slowed down without
// letting anyone lock a user out of the right password.
//
// Failures are counted per email and client address together: after Free
// failures within Window, each further attempt of that client for that
// email must wait BaseWait, twice as long per further failure, up to
// MaxDelay. A success clears that client's count for the email. Wrong
// passwords sent for someone's email from other addresses therefore never
// delay the owner's own address.
//
// Failures are also counted per email across all clients. Once an email
// has had UnderAttack failures within Window, it is under attack: a client
// that has itself failed for that email within Window is refused until
// its failures age out, while a client that has not failed for it is
// still let through, so a right password from a clean address always gets
// checked. A guesser spread over many addresses gets about one guess per
// address and window once the email is under attack; the per-address
// limit in front (handlers, LoginFailures) bounds each address across all
// emails.
//
// It is safe for concurrent use. Its state is per process and bounded
// (maxThrottleEntries per table; under a flood of distinct keys the
// entries ending soonest go first, so a limit may be lifted early but
// memory never grows). A refused attempt is answered with
// domain.RateLimitedFor the wait, like every other limit; it checks no
// password, for existing and unknown emails alike.
type Throttle struct {
	Free     int
	Window   time.Duration
	BaseWait time.Duration
	MaxDelay time.Duration
	// UnderAttack is the number of failures for one email, from all
	// clients within Window, from which clients that have failed for it
	// are refused (0: never).
	UnderAttack int

	mu      sync.Mutex
	entries map[string]*throttleEntry // per email and client
	emails  map[string]*emailEntry    // per email, all clients
}

type throttleEntry struct {
	failures int
	first    time.Time
	until    time.Time
}

type emailEntry struct {
	failures int
	first    time.Time
}

// maxThrottleEntries bounds memory under a flood of distinct names.
const maxThrottleEntries = 100_000

// NewThrottle returns a Throttle with defaults: 5 free failures per email
// and client per 15 minutes, then waits from 1 s doubling to 15 minutes;
// an email is under attack from 10 failures in 15 minutes.
func NewThrottle() *Throttle {
	return &Throttle{Free: 5, Window: 15 * time.Minute, BaseWait: time.Second, MaxDelay: 15 * time.Minute,
		UnderAttack: 10}
}

// pairKey is the table key of an email and a client. The NUL byte cannot
// be in a normalised email, so no two pairs share a key.
func pairKey(email, client string) string { return email + "\x00" + client }

// Attempt asks to check a password for email from client at now. It
// returns how long the client must still wait (0: go ahead). A granted
// attempt counts as a failure at once, in the same step as the check, so
// concurrent guesses cannot slip past the limit; Succeed or Refund takes
// it back.
func (t *Throttle) Attempt(email, client string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.entries == nil {
		t.entries, t.emails = make(map[string]*throttleEntry), make(map[string]*emailEntry)
	}
	key := pairKey(email, client)
	e := t.entries[key]
	if e != nil && now.Before(e.until) {
		return e.until.Sub(now)
	}
	if e != nil && e.quiet(now, t.Window) {
		e = nil
	}
	m := t.emails[email]
	if m != nil && !now.Before(m.first.Add(t.Window)) {
		m = nil // the email's window is over: count afresh
	}
	if e != nil && e.failures > 0 && m != nil && t.UnderAttack > 0 && m.failures >= t.UnderAttack {
		// Under attack, and this client is one of those failing.
		if wait := e.first.Add(t.Window).Sub(now); wait > 0 {
			return wait
		}
	}
	if e == nil {
		if _, ok := t.entries[key]; !ok && len(t.entries) >= maxThrottleEntries {
			ratelimit.Evict(t.entries, maxThrottleEntries, now, func(e *throttleEntry) time.Time { return e.expiry(t.Window) })
		}
		e = &throttleEntry{first: now}
		t.entries[key] = e
	}
	if m == nil {
		if _, ok := t.emails[email]; !ok && len(t.emails) >= maxThrottleEntries {
			ratelimit.Evict(t.emails, maxThrottleEntries, now, func(m *emailEntry) time.Time { return m.first.Add(t.Window) })
		}
		m = &emailEntry{first: now}
		t.emails[email] = m
	}
	m.failures++
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

// Succeed clears the failures of email from client, and takes back the
// attempt it granted from the email's count. Failures from other clients
// stay counted: the owner's success does not end an attack.
func (t *Throttle) Succeed(email, client string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, pairKey(email, client))
	t.forgiveEmail(email)
}

// Refund takes back one attempt of email from client that checked no
// password (the check was turned away, say for want of a hashing slot),
// and lifts the wait if that brings the client back within its free
// failures. Earlier failures stay counted.
func (t *Throttle) Refund(email, client string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forgiveEmail(email)
	e := t.entries[pairKey(email, client)]
	if e == nil || e.failures == 0 {
		return
	}
	e.failures--
	if e.failures < t.Free {
		e.until = time.Time{}
	}
}

// forgiveEmail takes one failure off email's count; t.mu is held.
func (t *Throttle) forgiveEmail(email string) {
	if m := t.emails[email]; m != nil && m.failures > 0 {
		m.failures--
	}
}

// Len returns the number of email and client pairs and of emails tracked.
func (t *Throttle) Len() (pairs, emails int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries), len(t.emails)
}

// quiet reports whether an entry's count may start over: a whole window
// has passed since its first failure and since its last wait ended, so
// doubling waits cannot outlast the window and reset the count.
func (e *throttleEntry) quiet(now time.Time, window time.Duration) bool {
	return now.Sub(e.first) > window && now.Sub(e.until) > window
}

// expiry is when an entry stops mattering: it is quiet from then on.
func (e *throttleEntry) expiry(window time.Duration) time.Time {
	if e.until.After(e.first) {
		return e.until.Add(window)
	}
	return e.first.Add(window)
}
