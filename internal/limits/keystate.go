package limits

import (
	"context"
	"sync"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// keyState is what a node knows and holds of one key. Its fields are
// guarded by mu, which is never held across a round trip.
type keyState struct {
	mu      sync.Mutex
	apiKey  string
	lastUse time.Time // monotonic
	rate    *rateLocal
	cr      *creditLocal
	dead    bool // evicted: look the key up again
}

// verdict is what a node can say of a request from what it holds.
type verdict int

const (
	ok      verdict = iota // covered by what the node holds
	refused                // known to be over the limit
	need                   // a round trip would tell
)

// rateLocal is a node's share of a key's current rate window.
type rateLocal struct {
	limit  uint64
	window time.Duration
	index  int64
	end    time.Time
	// avail are tokens leased and not handed out yet.
	avail uint64
	// accepted counts the requests this node accepted in the window,
	// leased or (Local mode) not: no node ever accepts more than the
	// limit by itself, whatever the shared record says.
	accepted uint64
	// takenSeen is the record's count as the node last saw it.
	takenSeen      uint64
	exhaustedUntil time.Time // monotonic; zero: not known exhausted
	failedUntil    time.Time // monotonic: the last round trip failed
	flight         chan struct{}
	// served, lastFetch, rate and lastLease size the next lease.
	served    uint64
	lastFetch time.Time
	rate      float64
	lastLease uint64
}

// syncRate returns the key's rate state for the window at now, reset when
// the window or the policy changed. Unused tokens of a policy changed
// within the window are given back in the background; those of a past
// window simply die with it.
func (ks *keyState) syncRate(l *Limiter, rl domain.RateLimit, now time.Time) *rateLocal {
	index, end := rl.WindowAt(now)
	w := rl.Window.Duration()
	rs := ks.rate
	if rs != nil && rs.limit == rl.Limit && rs.window == w && rs.index == index {
		return rs
	}
	fresh := &rateLocal{limit: rl.Limit, window: w, index: index, end: end}
	if rs != nil {
		fresh.rate, fresh.lastFetch, fresh.served, fresh.lastLease = rs.rate, rs.lastFetch, rs.served, rs.lastLease
		if rs.window == w && rs.index == index {
			// The same window under a new limit: what was accepted
			// stays accepted.
			fresh.accepted, fresh.takenSeen = rs.accepted, rs.takenSeen
			if n := rs.avail; n > 0 {
				key := rateKey(ks.apiKey, w, index)
				l.spawn(func(ctx context.Context) { _ = l.returnTokens(ctx, key, n, end, w, now) })
			}
		}
	}
	ks.rate = fresh
	return fresh
}

// check says whether the node can take one token now.
func (rs *rateLocal) check(mono time.Time) verdict {
	switch {
	case rs.accepted >= rs.limit:
		return refused
	case rs.avail > 0:
		return ok
	case rs.exhaustedUntil.After(mono):
		return refused
	}
	return need
}

// state is the rate limit as a decision reports it.
func (rs *rateLocal) state(now time.Time) *RateState {
	left := rs.avail
	if rs.takenSeen < rs.limit {
		left = satAdd(left, rs.limit-rs.takenSeen)
	}
	left = min(left, rs.limit-min(rs.accepted, rs.limit))
	return &RateState{Limit: rs.limit, Remaining: left, Reset: rs.end, Window: rs.window}
}

// refuse fills d as refused by the rate limit (or with d's reason if it
// has one) until the window's end.
func (rs *rateLocal) refuse(d Decision, now time.Time) Decision {
	if d.Reason == "" {
		d.Reason = domain.ReasonRateLimitExceeded
	}
	d.Rate = rs.state(now)
	if d.Reason == domain.ReasonRateLimitExceeded {
		d.RetryAfter = max(rs.end.Sub(now), 0)
	}
	return d
}

// creditLocal is a node's lease of a key's credits.
type creditLocal struct {
	policy domain.CreditPolicy
	// epoch and period are those of the record when the lease was
	// granted: the lease is void from a newer one on.
	epoch  uint64
	period int64
	// avail is what the node may still spend of its lease, until
	// deadline (monotonic).
	avail    uint64
	deadline time.Time
	// held: the record may hold a lease of this node (given back on
	// idle and Close).
	held           bool
	poolSeen       uint64
	exhaustedUntil time.Time
	failedUntil    time.Time
	flight         chan struct{}
	served         uint64
	lastFetch      time.Time
	rate           float64
	lastLease      uint64
}

// syncCredits returns the key's credits state under policy p at now,
// its lease dropped once void: a newer epoch, a newer refill period by
// the node's clock, or past its deadline.
func (ks *keyState) syncCredits(p domain.CreditPolicy, now, mono time.Time) *creditLocal {
	cs := ks.cr
	if cs == nil {
		cs = &creditLocal{epoch: p.Epoch}
		ks.cr = cs
	}
	if p.Added > cs.policy.Added {
		cs.exhaustedUntil = time.Time{} // a top-up: worth asking again
	}
	cs.policy = p
	period, _ := p.PeriodAt(now)
	if p.Epoch > cs.epoch || (p.Epoch == cs.epoch && p.Refill != nil && period > cs.period) {
		cs.avail, cs.exhaustedUntil, cs.failedUntil = 0, time.Time{}, time.Time{}
		cs.epoch, cs.period = p.Epoch, period
	}
	if cs.avail > 0 && !mono.Before(cs.deadline) {
		cs.avail = 0
	}
	return cs
}

// check says whether the node's lease covers cost now.
func (cs *creditLocal) check(cost uint64, mono time.Time) verdict {
	switch {
	case cs.avail >= cost:
		return ok
	case cs.exhaustedUntil.After(mono):
		return refused
	}
	return need
}

// refuse fills d as refused for reason, with the rate limit's state if
// there is one.
func (cs *creditLocal) refuse(d Decision, rs *rateLocal, now time.Time, reason domain.Reason) Decision {
	d.Reason = reason
	if rs != nil {
		d.Rate = rs.state(now)
	}
	left := satAdd(cs.avail, cs.poolSeen)
	d.Credits = &left
	if reason == domain.ReasonUsageExceeded {
		if _, next := cs.policy.PeriodAt(now); !next.IsZero() {
			d.RetryAfter = max(next.Sub(now), 0)
		}
	}
	return d
}
