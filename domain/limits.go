package domain

import (
	"strconv"
	"time"
)

// Bounds of rate limits and credits.
const (
	// MinRateWindow and MaxRateWindow bound a rate limit's window.
	MinRateWindow = time.Second
	MaxRateWindow = 24 * time.Hour
	// MaxRateLimit is the most requests a rate limit allows in a window.
	MaxRateLimit = 1_000_000_000
	// MinRefillInterval and MaxRefillInterval bound how often credits
	// refill.
	MinRefillInterval = time.Minute
	MaxRefillInterval = 366 * 24 * time.Hour
	// MaxCredits bounds remaining credits, a refill's amount and a
	// top-up, so that no sum of them overflows.
	MaxCredits = 1_000_000_000_000
	// MaxCost is the most one request may cost.
	MaxCost = 1_000_000
)

// Period is a whole number of seconds written as one integer and one
// unit: "30s", "1m", "5m", "1h", "1d". It is the form of a rate limit's
// window and of a refill interval, in the API and in events.
type Period time.Duration

// ParsePeriod parses "<n>s", "<n>m", "<n>h" or "<n>d" (n a positive
// integer without sign or leading zeros) and checks it lies within
// [min, max]. Anything else is Invalid.
func ParsePeriod(s string, min, max time.Duration) (Period, error) {
	bad := Errorf(Invalid, "period %q: want a whole number and one unit of s, m, h or d, from %s to %s",
		truncate(s, 32), Period(min), Period(max))
	if len(s) < 2 || len(s) > 12 || s[0] == '0' {
		return 0, bad
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 's':
		unit = time.Second
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	default:
		return 0, bad
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
	if err != nil {
		return 0, bad
	}
	d := time.Duration(n) * unit
	if d < min || d > max {
		return 0, bad
	}
	return Period(d), nil
}

// String writes the period with the largest unit that divides it.
func (p Period) String() string {
	d := time.Duration(p)
	for _, u := range []struct {
		d time.Duration
		s string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if d >= u.d && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.s
		}
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// Duration returns p as a time.Duration.
func (p Period) Duration() time.Duration { return time.Duration(p) }

// MarshalText writes the period as String does.
func (p Period) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads any period from one second to MaxRefillInterval;
// the caller checks the bounds of its use (Validate).
func (p *Period) UnmarshalText(b []byte) error {
	v, err := ParsePeriod(string(b), time.Second, MaxRefillInterval)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// RateLimit allows at most Limit requests in each window of Window,
// counted across every node together. Windows are aligned to the Unix
// epoch: a window of a minute starts at each whole minute (UTC).
type RateLimit struct {
	Limit  uint64 `json:"limit"`
	Window Period `json:"window"`
}

// Validate checks the limit and window bounds.
func (r RateLimit) Validate() error {
	if r.Limit < 1 || r.Limit > MaxRateLimit {
		return Errorf(Invalid, "rate_limit.limit: want 1 to %d", MaxRateLimit)
	}
	if d := r.Window.Duration(); d < MinRateWindow || d > MaxRateWindow || d%time.Second != 0 {
		return Errorf(Invalid, "rate_limit.window: want a whole number of seconds from %s to %s",
			Period(MinRateWindow), Period(MaxRateWindow))
	}
	return nil
}

// WindowAt returns the index of the window holding t, and when that
// window ends.
func (r RateLimit) WindowAt(t time.Time) (index int64, end time.Time) {
	w := int64(r.Window.Duration() / time.Second)
	s := t.Unix()
	index = s / w
	if s < 0 && s%w != 0 {
		index--
	}
	return index, time.Unix((index+1)*w, 0)
}

// Refill sets a key's remaining credits back up to Amount every Interval
// after the credits were set (never down: credits added beyond Amount
// are kept).
type Refill struct {
	Amount   uint64 `json:"amount"`
	Interval Period `json:"interval"`
}

// Credits is what an owner or admin sets: the credits remaining from now
// on, and an optional refill.
type Credits struct {
	Remaining uint64  `json:"remaining"`
	Refill    *Refill `json:"refill,omitempty"`
}

// Validate checks the bounds of remaining credits and the refill.
func (c Credits) Validate() error {
	if c.Remaining > MaxCredits {
		return Errorf(Invalid, "credits.remaining: want 0 to %d", uint64(MaxCredits))
	}
	if r := c.Refill; r != nil {
		if r.Amount < 1 || r.Amount > MaxCredits {
			return Errorf(Invalid, "credits.refill.amount: want 1 to %d", uint64(MaxCredits))
		}
		if d := r.Interval.Duration(); d < MinRefillInterval || d > MaxRefillInterval {
			return Errorf(Invalid, "credits.refill.interval: want %s to %s", Period(MinRefillInterval), Period(MaxRefillInterval))
		}
	}
	return nil
}

// CreditPolicy is a key's credits as the log sets them, for the nodes
// that enforce them: Epoch is the key's version whose event set them
// (key.created or key.credits_changed) and Since that event's time, the
// anchor of refills; Initial is the remaining credits it set; Added sums
// the top-ups (key.credits_added) since. What was spent is not in the
// log: the nodes count it together (internal/limits).
type CreditPolicy struct {
	Epoch   uint64
	Since   time.Time
	Initial uint64
	Refill  *Refill
	Added   uint64
}

// PeriodAt returns the index of the refill period holding t (0 before
// the first refill, and always 0 without a refill) and when the next
// refill is due (zero without a refill).
func (c CreditPolicy) PeriodAt(t time.Time) (index int64, next time.Time) {
	if c.Refill == nil {
		return 0, time.Time{}
	}
	iv := c.Refill.Interval.Duration()
	el := t.Sub(c.Since)
	if el < 0 {
		return 0, c.Since.Add(iv)
	}
	index = int64(el / iv)
	return index, c.Since.Add(time.Duration(index+1) * iv)
}

// Limits are a key's rate limit and credits; nil fields: none. A read
// model hands out a *Limits it never changes afterwards.
type Limits struct {
	RateLimit *RateLimit
	Credits   *CreditPolicy
}

// None reports whether l limits nothing.
func (l *Limits) None() bool { return l == nil || (l.RateLimit == nil && l.Credits == nil) }

// clone returns a copy of c that shares nothing with it.
func (c Credits) clone() *Credits {
	out := c
	if c.Refill != nil {
		r := *c.Refill
		out.Refill = &r
	}
	return &out
}

// equalRateLimits reports whether two rate limits (nil: none) are the
// same.
func equalRateLimits(a, b *RateLimit) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// checkTopUp checks a top-up of n credits: 1 to MaxCredits, and the
// credits granted in the epoch (Initial, Added and n) at most MaxCredits,
// so that no sum of them overflows. Errors: Invalid, Conflict.
func (c CreditPolicy) checkTopUp(n uint64) error {
	if n < 1 || n > MaxCredits {
		return Errorf(Invalid, "add: want 1 to %d", uint64(MaxCredits))
	}
	if c.Initial+c.Added > MaxCredits-n {
		return Errorf(Conflict, "the key would be granted more than %d credits since they were set: set its credits anew instead",
			uint64(MaxCredits))
	}
	return nil
}

// Granted returns the credits the policy grants at t, before anything is
// spent: Initial plus Added until the first refill, and from then on at
// least the refill's amount (a refill tops the credits up to Amount, and
// never takes away what was added beyond it). It is what a key's
// remaining credits are when nobody knows better (the nodes count what
// was spent).
func (c CreditPolicy) Granted(t time.Time) uint64 {
	g := c.Initial + c.Added
	if c.Refill == nil {
		return g
	}
	if i, _ := c.PeriodAt(t); i > 0 && g < c.Refill.Amount {
		g = c.Refill.Amount
	}
	return g
}

// NextRefill returns when the credits next refill after t (zero without
// a refill).
func (c CreditPolicy) NextRefill(t time.Time) time.Time {
	_, next := c.PeriodAt(t)
	return next
}
