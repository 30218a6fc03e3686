package limits_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/limits"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testclock"
)

// takeN takes n times and counts the accepted.
func takeN(l *limits.Limiter, n int, apiKey string, lim *domain.Limits) (ok int, last limits.Decision) {
	for range n {
		last = l.Take(context.Background(), apiKey, lim, 1)
		if last.Reason == domain.ReasonOK {
			ok++
		}
	}
	return ok, last
}

// counter reads the value of the Limiter's counter called name, summed
// over its labels.
func counter(t *testing.T, l *limits.Limiter, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	for _, c := range l.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestTake_KilledNode: a node cut off while holding leases, never closed.
// Rate: the others take only what it did not, and the tokens come back
// with the next window. Credits: exactness holds, what the dead node held
// is written off (at most its lease), and the record forgets its lease
// once it expired (LeaseTTL, and LeaseTTL again for clock skew).
func TestTake_KilledNode(t *testing.T) {
	e := newEnv(t)
	clock := testclock.New(t0)
	proxy := natstest.StartProxy(t, e.s.Addr().String())
	const ttl = time.Second
	mod := func(c *limits.Config) { c.Clock = clock.Now; c.LeaseTTL = ttl }
	dead := node(t, proxy.URL(), "dead", mod)
	dead.SetIdle(time.Hour)
	live := nodes(t, e.s.ClientURL(), 2, clock, func(c *limits.Config) { c.LeaseTTL = ttl })
	rl := domain.RateLimit{Limit: 100, Window: domain.Period(time.Minute)}
	lim := &domain.Limits{RateLimit: &rl, Credits: &domain.CreditPolicy{Epoch: 1, Since: t0, Initial: 1000}}

	deadOK, _ := takeN(dead, 20, keyA, lim)
	if deadOK != 20 {
		t.Fatalf("the node to kill accepted %d of 20, want 20", deadOK)
	}
	natstest.Eventually(t, 10*time.Second, func() bool {
		tok, cr := dead.Held(keyA)
		return tok > 0 && cr > 0 && !dead.InFlight(keyA)
	}, "the node to kill holds no tokens or credits, or is still leasing")
	heldTokens, _ := dead.Held(keyA)
	proxy.Cut()
	// The dead node's lease as it stays in the record.
	var lease uint64
	for _, l := range e.creditRecord(t, keyA).Leases {
		if l.ID == dead.LeaseID() {
			lease = l.Amount
		}
	}

	c := hammer(live, 4, 1000, keyA, lim, one, domain.ReasonRateLimitExceeded)
	accepted := uint64(deadOK + c.ok()) // every accepted request costs a credit
	if got := deadOK + c.ok(); got > 100 {
		t.Errorf("the dead node's %d + the others' %d accepted in the window, want at most 100", deadOK, c.ok())
	}
	if got := uint64(deadOK+c.ok()) + heldTokens; got < 100 {
		t.Errorf("accepted %d + %d held by the dead node = %d, want the whole limit of 100 spent", deadOK+c.ok(), heldTokens, got)
	}
	clock.Advance(time.Minute)
	c = hammer(live, 4, 1000, keyA, lim, one, domain.ReasonRateLimitExceeded)
	accepted += uint64(c.ok())
	if c.ok() != 100 {
		t.Errorf("next window: the others accepted %d, want the whole 100 back", c.ok())
	}

	// Credits: spend the rest of the pool on the live nodes.
	credits := &domain.Limits{Credits: lim.Credits}
	c = hammer(live, 4, 1000, keyA, credits, one, "")
	r := e.creditRecord(t, keyA)
	accepted += c.cost
	var liveHeld uint64
	for _, l := range live {
		_, n := l.Held(keyA)
		liveHeld += n
	}
	if accepted > 1000 {
		t.Fatalf("accepted %d credits across the nodes, want at most 1000", accepted)
	}
	writtenOff := 1000 - accepted - r.Pool - liveHeld
	t.Logf("accepted %d, the dead node's lease %d, written off %d, pool %d, held by the live nodes %d", accepted, lease, writtenOff, r.Pool, liveHeld)
	if writtenOff > lease || lease == 0 {
		t.Errorf("written off %d, want at most the dead node's lease %d", writtenOff, lease)
	}
	natstest.Eventually(t, 20*time.Second, func() bool {
		live[0].Take(context.Background(), keyA, credits, 1)
		for _, l := range e.creditRecord(t, keyA).Leases {
			if l.ID == dead.LeaseID() {
				return false
			}
		}
		return true
	}, "the dead node's lease is still in the record")
}

// TestTake_Unreachable: cut off from NATS, a node keeps using what it
// holds; past it, deny refuses with limits_unavailable without waiting
// for NATS and local enforces ceil(limit/expected nodes) for the window;
// credits are never spent beyond what the node holds, in either mode.
func TestTake_Unreachable(t *testing.T) {
	e := newEnv(t)
	for _, mode := range []limits.Mode{limits.Deny, limits.Local} {
		t.Run(mode.String(), func(t *testing.T) {
			clock := testclock.New(t0)
			proxy := natstest.StartProxy(t, e.s.Addr().String())
			l := node(t, proxy.URL(), "cut-"+mode.String(), func(c *limits.Config) {
				c.Clock, c.Unreachable, c.ExpectedNodes, c.Timeout = clock.Now, mode, 3, time.Second
			})
			l.SetIdle(time.Hour)
			apiKey, creditKey := keyA, keyC
			if mode == limits.Local {
				apiKey, creditKey = keyB, "ak_01J00000000000000000000003"
			}
			rl := domain.RateLimit{Limit: 30, Window: domain.Period(time.Minute)}
			lim := &domain.Limits{RateLimit: &rl}
			if ok, _ := takeN(l, 2, apiKey, lim); ok != 2 {
				t.Fatalf("accepted %d of 2 before the cut", ok)
			}
			natstest.Eventually(t, 10*time.Second, func() bool { n, _ := l.Held(apiKey); return n > 0 && !l.InFlight(apiKey) }, "no token held, or still leasing")
			held, _ := l.Held(apiKey)
			proxy.Cut()
			natstest.Eventually(t, 10*time.Second, func() bool { return !l.Connected() }, "still connected")
			trips := counter(t, l, "keyledger_limits_round_trips_total")
			start := time.Now()
			ok, last := takeN(l, 200, apiKey, lim)
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("200 decisions took %v cut off, want no waiting for NATS", el)
			}
			if got := counter(t, l, "keyledger_limits_round_trips_total"); got != trips {
				t.Errorf("%v round trips tried while cut off, want none (back off)", got-trips)
			}
			switch mode {
			case limits.Deny:
				if uint64(ok) != held || last.Reason != domain.ReasonLimitsUnavailable {
					t.Errorf("accepted %d (held %d), last %s; want the held tokens used, then limits_unavailable", ok, held, last.Reason)
				}
			case limits.Local:
				if 2+ok != 10 || last.Reason != domain.ReasonRateLimitExceeded {
					t.Errorf("accepted 2 + %d, last %s; want 10 in the window (30 / 3 nodes), then rate_limit_exceeded", ok, last.Reason)
				}
				clock.Advance(time.Minute)
				if ok, _ := takeN(l, 20, apiKey, lim); ok != 10 {
					t.Errorf("next window cut off: accepted %d, want 10", ok)
				}
			}

			// Credits: never beyond the lease held, in either mode.
			proxy.Restore()
			natstest.Eventually(t, 10*time.Second, func() bool { return l.Connected() }, "not reconnected")
			credits := &domain.Limits{Credits: &domain.CreditPolicy{Epoch: 1, Since: t0, Initial: 1000}}
			natstest.Eventually(t, 10*time.Second, func() bool {
				l.Take(context.Background(), creditKey, credits, 1)
				_, n := l.Held(creditKey)
				return n > 0 && !l.InFlight(creditKey)
			}, "no credits held, or still leasing")
			_, cr := l.Held(creditKey)
			proxy.Cut()
			natstest.Eventually(t, 10*time.Second, func() bool { return !l.Connected() }, "still connected")
			var spent uint64
			for range 2000 {
				if d := l.Take(context.Background(), creditKey, credits, 1); d.Reason == domain.ReasonOK {
					spent++
				} else if d.Reason != domain.ReasonLimitsUnavailable {
					t.Fatalf("cut off: %s, want ok or limits_unavailable", d.Reason)
				}
			}
			if spent != cr {
				t.Errorf("spent %d cut off, want exactly the %d held", spent, cr)
			}
			proxy.Restore()
			natstest.Eventually(t, 10*time.Second, func() bool { return l.Connected() }, "not reconnected")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
