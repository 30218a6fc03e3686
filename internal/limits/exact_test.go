package limits_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/limits"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testclock"
)

// TestTake_RateExactAcrossNodes: three nodes hammered concurrently on one
// key with a limit of 100 a minute accept at most 100 in every window
// together, and (demand exceeding it) at least 90 of them: a node stops
// only when it holds no token and the window's record is spent, so in
// fact exactly 100.
func TestTake_RateExactAcrossNodes(t *testing.T) {
	e := newEnv(t)
	clock := testclock.New(t0)
	ls := nodes(t, e.s.ClientURL(), 3, clock, nil)
	rl := domain.RateLimit{Limit: 100, Window: domain.Period(time.Minute)}
	lim := &domain.Limits{RateLimit: &rl}
	for w := range 4 {
		at := clock.Now()
		c := hammer(ls, 4, 200, keyA, lim, one, domain.ReasonRateLimitExceeded)
		got := c.ok()
		t.Logf("window %d: %d accepted, %v, %d waited for NATS", w, got, c.byReason, c.trips)
		if got > 100 {
			t.Errorf("window %d: %d accepted across the nodes, want at most 100", w, got)
		}
		if got < 90 {
			t.Errorf("window %d: %d accepted across the nodes with demand exceeding the limit, want at least 90", w, got)
		}
		if n := e.taken(t, keyA, rl, at); n > 100 || n < uint64(got) {
			t.Errorf("window %d: the record counts %d taken, want between %d accepted and 100", w, n, got)
		}
		if n := c.byReason[domain.ReasonLimitsUnavailable]; n != 0 {
			t.Errorf("window %d: %d limits_unavailable with NATS up, want none", w, n)
		}
		clock.Advance(time.Minute)
	}
}

// TestTake_CreditsExactAcrossNodes: 1,000 credits, three nodes, 3,000
// attempts of costs 1 to 3: the accepted cost never exceeds 1,000, and
// accepted + pool + what the nodes still hold == 1,000 exactly; once the
// nodes close (giving their leases back), accepted + pool == 1,000 and no
// lease is left.
func TestTake_CreditsExactAcrossNodes(t *testing.T) {
	e := newEnv(t)
	clock := testclock.New(t0)
	ls := nodes(t, e.s.ClientURL(), 3, clock, func(c *limits.Config) { c.LeaseTTL = time.Minute })
	for _, l := range ls {
		l.SetIdle(time.Hour)
	}
	lim := &domain.Limits{Credits: &domain.CreditPolicy{Epoch: 1, Since: t0, Initial: 1000}}
	c := hammer(ls, 4, 250, keyA, lim, func(i int) uint64 { return uint64(1 + i%3) }, "")
	t.Logf("accepted cost %d, %v, %d waited for NATS", c.cost, c.byReason, c.trips)
	if c.cost > 1000 {
		t.Fatalf("accepted cost %d, want at most 1000", c.cost)
	}
	if c.cost < 900 {
		t.Errorf("accepted cost %d of 3000 attempts, want at least 900", c.cost)
	}
	r := e.creditRecord(t, keyA)
	var held uint64
	for _, l := range ls {
		_, n := l.Held(keyA)
		held += n
	}
	if got := c.cost + r.Pool + held; got != 1000 {
		t.Errorf("accepted %d + pool %d + held %d = %d, want 1000", c.cost, r.Pool, held, got)
	}
	for _, l := range ls {
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	r = e.creditRecord(t, keyA)
	if len(r.Leases) != 0 || c.cost+r.Pool != 1000 {
		t.Errorf("after close: accepted %d + pool %d with leases %v, want 1000 and no lease", c.cost, r.Pool, r.Leases)
	}
}

// TestTake_IdleTokensComeBack: a node that stops using a key gives its
// unused tokens back once the window is contended, so another node gets
// the whole limit: fairness costs at most the idle time.
func TestTake_IdleTokensComeBack(t *testing.T) {
	e := newEnv(t)
	clock := testclock.New(t0)
	ls := nodes(t, e.s.ClientURL(), 2, clock, nil)
	ls[0].SetIdle(100 * time.Millisecond)
	rl := domain.RateLimit{Limit: 100, Window: domain.Period(time.Minute)}
	lim := &domain.Limits{RateLimit: &rl}
	c := hammer(ls[:1], 2, 30, keyA, lim, one, domain.ReasonRateLimitExceeded)
	natstest.Eventually(t, 10*time.Second, func() bool { n, _ := ls[0].Held(keyA); return n > 0 }, "node 1 holds no tokens")
	first := c.ok()
	var second int
	natstest.Eventually(t, 20*time.Second, func() bool {
		second += hammer(ls[1:], 2, 200, keyA, lim, one, domain.ReasonRateLimitExceeded).ok()
		return first+second == 100
	}, "node 2 never got the tokens node 1 left idle")
	if n, _ := ls[0].Held(keyA); n != 0 {
		t.Errorf("node 1 still holds %d tokens", n)
	}
}

// TestTake_HotKeyNoRoundTrips: three nodes taking one hot key with a rate
// limit and credits wait for NATS in at most 1% of their decisions.
func TestTake_HotKeyNoRoundTrips(t *testing.T) {
	e := newEnv(t)
	ls := nodes(t, e.s.ClientURL(), 3, testclock.New(t0), nil)
	lim := &domain.Limits{RateLimit: &domain.RateLimit{Limit: domain.MaxRateLimit, Window: domain.Period(24 * time.Hour)},
		Credits: &domain.CreditPolicy{Epoch: 1, Since: t0, Initial: domain.MaxCredits}}
	const n = 20000
	c := hammer(ls, 2, n, keyA, lim, one, domain.ReasonLimitsUnavailable)
	t.Logf("%v, %d of %d waited for NATS", c.byReason, c.trips, 3*2*n)
	if c.ok() != 3*2*n {
		t.Fatalf("accepted %d of %d", c.ok(), 3*2*n)
	}
	if c.trips > 3*2*n/100 {
		t.Errorf("%d of %d decisions waited for NATS, want at most 1%%", c.trips, 3*2*n)
	}
}

// TestClose_GivesTokensBack: a node that closes gives back the rate
// tokens it did not use: the window's count is what it accepted.
func TestClose_GivesTokensBack(t *testing.T) {
	e := newEnv(t)
	clock := testclock.New(t0)
	l := node(t, e.s.ClientURL(), "closing", func(c *limits.Config) { c.Clock = clock.Now })
	l.SetIdle(time.Hour)
	rl := domain.RateLimit{Limit: 1000, Window: domain.Period(time.Minute)}
	c := hammer([]*limits.Limiter{l}, 2, 100, keyA, &domain.Limits{RateLimit: &rl}, one, "")
	natstest.Eventually(t, 10*time.Second, func() bool { return !l.InFlight(keyA) }, "still leasing")
	if held, _ := l.Held(keyA); held == 0 || e.taken(t, keyA, rl, t0) != uint64(c.ok())+held {
		t.Fatalf("held %d, taken %d, accepted %d: want tokens held and counted", held, e.taken(t, keyA, rl, t0), c.ok())
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.taken(t, keyA, rl, t0); got != uint64(c.ok()) {
		t.Errorf("after close the window counts %d taken, want the %d accepted", got, c.ok())
	}
	if d := l.Take(context.Background(), keyA, &domain.Limits{RateLimit: &rl}, 1); d.Reason != domain.ReasonLimitsUnavailable {
		t.Errorf("after close: %s, want limits_unavailable", d.Reason)
	}
}
