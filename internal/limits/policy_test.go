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

// TestTake_Refill: credits spent are refused until the refill interval
// passes by the node's clock; then the refill's amount is there again
// (on every node), never beyond it.
func TestTake_Refill(t *testing.T) {
	e := newEnv(t)
	clock := testclock.New(t0)
	ls := nodes(t, e.s.ClientURL(), 3, clock, nil)
	p := domain.CreditPolicy{Epoch: 1, Since: t0, Initial: 10, Refill: &domain.Refill{Amount: 10, Interval: domain.Period(time.Hour)}}
	lim := &domain.Limits{Credits: &p}
	for period := range 3 {
		c := hammer(ls, 2, 20, keyA, lim, one, "")
		if c.cost != 10 {
			t.Errorf("period %d: accepted %d, want the 10 of the refill", period, c.cost)
		}
		d := ls[0].Take(context.Background(), keyA, lim, 1)
		if d.Reason != domain.ReasonUsageExceeded {
			t.Fatalf("period %d: %s, want usage_exceeded", period, d.Reason)
		}
		_, next := p.PeriodAt(clock.Now())
		if want := next.Sub(clock.Now()); d.RetryAfter != want {
			t.Errorf("period %d: retry after %v, want %v (the next refill)", period, d.RetryAfter, want)
		}
		clock.Advance(time.Hour)
	}
}

// TestTake_TopUpOnce: a top-up (the policy's Added grows) is added to the
// pool once, even when three nodes see it.
func TestTake_TopUpOnce(t *testing.T) {
	e := newEnv(t)
	clock := testclock.New(t0)
	ls := nodes(t, e.s.ClientURL(), 3, clock, nil)
	p := domain.CreditPolicy{Epoch: 1, Since: t0, Initial: 5}
	c := hammer(ls, 2, 10, keyA, &domain.Limits{Credits: &p}, one, "")
	if c.cost != 5 {
		t.Fatalf("accepted %d, want 5", c.cost)
	}
	p.Added = 7
	c = hammer(ls, 2, 20, keyA, &domain.Limits{Credits: &p}, one, "")
	if c.cost != 7 {
		t.Errorf("after a top-up of 7 seen by three nodes: accepted %d, want 7", c.cost)
	}
	if r := e.creditRecord(t, keyA); r.Added != 7 {
		t.Errorf("record added %d, want 7", r.Added)
	}
	// A node whose read model lags (older epoch) changes nothing.
	old := domain.CreditPolicy{Epoch: 0, Since: t0, Initial: 1000}
	if d := ls[1].Take(context.Background(), keyA, &domain.Limits{Credits: &old}, 1); d.Reason != domain.ReasonUsageExceeded {
		t.Errorf("a lagging node's older epoch: %s, want usage_exceeded (no reset backwards)", d.Reason)
	}
	// A new epoch (credits set again) resets the pool.
	next := domain.CreditPolicy{Epoch: 2, Since: clock.Now(), Initial: 4}
	c = hammer(ls, 2, 20, keyA, &domain.Limits{Credits: &next}, one, "")
	if c.cost != 4 {
		t.Errorf("new epoch with 4 credits: accepted %d, want 4", c.cost)
	}
	n, err := limits.Remaining(context.Background(), e.kv, keyA, next, clock.Now())
	if err != nil || n != 0 {
		t.Errorf("remaining %d, %v; want 0", n, err)
	}
	n, err = limits.Remaining(context.Background(), e.kv, keyB, next, clock.Now())
	if err != nil || n != 4 {
		t.Errorf("remaining of an unused key %d, %v; want its 4 credits", n, err)
	}
}

// TestTake_RateLimitChanged: a changed limit takes effect at once on every
// node, counted against what the window already took.
func TestTake_RateLimitChanged(t *testing.T) {
	e := newEnv(t)
	clock := testclock.New(t0)
	ls := nodes(t, e.s.ClientURL(), 3, clock, nil)
	rl := domain.RateLimit{Limit: 5, Window: domain.Period(time.Minute)}
	c := hammer(ls, 2, 10, keyA, &domain.Limits{RateLimit: &rl}, one, domain.ReasonRateLimitExceeded)
	if c.ok() != 5 {
		t.Fatalf("limit 5: accepted %d", c.ok())
	}
	d := ls[0].Take(context.Background(), keyA, &domain.Limits{RateLimit: &rl}, 1)
	if d.Reason != domain.ReasonRateLimitExceeded || d.RetryAfter != time.Minute || d.Rate == nil ||
		d.Rate.Remaining != 0 || !d.Rate.Reset.Equal(t0.Add(time.Minute)) {
		t.Errorf("past the limit: %+v, want rate_limit_exceeded until the window's end", d)
	}
	raised := domain.RateLimit{Limit: 12, Window: rl.Window}
	c = hammer(ls, 2, 20, keyA, &domain.Limits{RateLimit: &raised}, one, domain.ReasonRateLimitExceeded)
	if c.ok() != 7 {
		t.Errorf("raised to 12 within the window: accepted %d more, want 7", c.ok())
	}
	lowered := domain.RateLimit{Limit: 3, Window: domain.Period(time.Hour)}
	c = hammer(ls, 2, 20, keyA, &domain.Limits{RateLimit: &lowered}, one, domain.ReasonRateLimitExceeded)
	if c.ok() != 3 {
		t.Errorf("a new window of an hour, limit 3: accepted %d, want 3", c.ok())
	}
}

// TestTake_BadInput: a malformed API key or cost is refused, never counted
// under another key.
func TestTake_BadInput(t *testing.T) {
	e := newEnv(t)
	l := node(t, e.s.ClientURL(), "n", nil)
	rl := domain.RateLimit{Limit: 5, Window: domain.Period(time.Minute)}
	lim := &domain.Limits{RateLimit: &rl, Credits: &domain.CreditPolicy{Epoch: 1, Initial: 1 << 40}}
	for _, k := range []string{"", "ak_01J0000000000000000000000*", "ak_01J00000000000000000000000.>", "usr_01J00000000000000000000000"} {
		if d := l.Take(context.Background(), k, lim, 1); d.Reason != domain.ReasonLimitsUnavailable {
			t.Errorf("key %q: %s, want limits_unavailable", k, d.Reason)
		}
	}
	if d := l.Take(context.Background(), keyA, lim, domain.MaxCost+1); d.Reason != domain.ReasonLimitsUnavailable {
		t.Errorf("cost past MaxCost: %s, want limits_unavailable", d.Reason)
	}
	zero := domain.RateLimit{Limit: 5}
	noInterval := domain.CreditPolicy{Epoch: 1, Initial: 5, Refill: &domain.Refill{Amount: 5}}
	for name, bad := range map[string]*domain.Limits{"zero window": {RateLimit: &zero}, "refill without interval": {Credits: &noInterval}} {
		if d := l.Take(context.Background(), keyA, bad, 1); d.Reason != domain.ReasonLimitsUnavailable {
			t.Errorf("%s: %s, want limits_unavailable", name, d.Reason)
		}
	}
	if d := l.Take(context.Background(), keyA, nil, 1); d.Reason != domain.ReasonOK || d.RoundTrip || d.Rate != nil || d.Credits != nil {
		t.Errorf("no limits: %+v, want ok at once", d)
	}
}

// TestTake_MalformedRecord: whoever may write the bucket (a stolen
// validator credential) can put anything in a record; a record that is
// not one the nodes write is refused: the key's decision fails closed
// with limits_unavailable, nothing panics, nothing is granted, and the
// key view's Remaining reports an error.
func TestTake_MalformedRecord(t *testing.T) {
	e := newEnv(t)
	clock := testclock.New(t0)
	l := node(t, e.s.ClientURL(), "n", func(c *limits.Config) { c.Clock = clock.Now })
	rl := domain.RateLimit{Limit: 5, Window: domain.Period(time.Minute)}
	p := domain.CreditPolicy{Epoch: 1, Since: t0, Initial: 5}
	i, _ := rl.WindowAt(t0)
	for _, bad := range []string{`{"v":1,"limit":5,"taken":-1}`, `{"v":1,"limit":5}x`, `{"v":1,"limit":5,"Taken":0,"taken":0}`, "\xff"} {
		if _, err := e.kv.Put(context.Background(), limits.RateKey(keyA, time.Minute, i), []byte(bad)); err != nil {
			t.Fatal(err)
		}
		natstest.Eventually(t, 5*time.Second, func() bool {
			d := l.Take(context.Background(), keyA, &domain.Limits{RateLimit: &rl}, 1)
			if d.Reason != domain.ReasonLimitsUnavailable {
				t.Fatalf("rate record %q: %s, want limits_unavailable", bad, d.Reason)
			}
			return d.RoundTrip
		}, "not refused after a round trip")
	}
	for _, bad := range []string{`{"v":1,"epoch":1,"period":0,"added":0,"pool":18446744073709551615}`,
		`{"v":1,"epoch":1,"period":0,"added":0,"pool":5,"leases":[{"id":"x","amount":0,"expires":1}]}`, `[]`} {
		if _, err := e.kv.Put(context.Background(), limits.CreditsKey(keyB), []byte(bad)); err != nil {
			t.Fatal(err)
		}
		natstest.Eventually(t, 5*time.Second, func() bool {
			d := l.Take(context.Background(), keyB, &domain.Limits{Credits: &p}, 1)
			if d.Reason != domain.ReasonLimitsUnavailable {
				t.Fatalf("credits record %q: %s, want limits_unavailable", bad, d.Reason)
			}
			return d.RoundTrip
		}, "not refused after a round trip")
		if _, err := limits.Remaining(context.Background(), e.kv, keyB, p, clock.Now()); err == nil {
			t.Errorf("credits record %q: Remaining without an error", bad)
		}
	}
}

// TestParseMode: the flag's two values and nothing else.
func TestParseMode(t *testing.T) {
	for s, want := range map[string]limits.Mode{"deny": limits.Deny, "local": limits.Local} {
		if got, err := limits.ParseMode(s); err != nil || got != want || got.String() != s {
			t.Errorf("%s: %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Deny", "allow", "local "} {
		if _, err := limits.ParseMode(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

// TestNew_Config: a missing connection, stream or node name, a node name
// unfit for a lease id, or a negative duration is refused.
func TestNew_Config(t *testing.T) {
	e := newEnv(t)
	nc := natstest.Connect(t, e.s)
	for name, cfg := range map[string]limits.Config{
		"no connection": {Stream: stream, Node: "n"},
		"no stream":     {Conn: nc, Node: "n"},
		"no node":       {Conn: nc, Stream: stream},
		"node name":     {Conn: nc, Stream: stream, Node: "a b"},
		"timeout":       {Conn: nc, Stream: stream, Node: "n", Timeout: -1},
		"mode":          {Conn: nc, Stream: stream, Node: "n", Unreachable: 7},
	} {
		if l, err := limits.New(cfg); err == nil {
			l.Close(context.Background())
			t.Errorf("%s: no error", name)
		}
	}
}

// TestTake_ResetCounterAttack: a holder of validator credentials resets a
// window's count in the bucket; an honest node still accepts at most the
// limit in the window by itself, also after asking the bucket again.
func TestTake_ResetCounterAttack(t *testing.T) {
	e := newEnv(t)
	clock := testclock.New(t0)
	l := node(t, e.s.ClientURL(), "honest", func(c *limits.Config) { c.Clock = clock.Now })
	rl := domain.RateLimit{Limit: 20, Window: domain.Period(time.Minute)}
	lim := &domain.Limits{RateLimit: &rl}
	i, _ := rl.WindowAt(t0)
	total := hammer([]*limits.Limiter{l}, 2, 50, keyA, lim, one, "").ok()
	for round := range 3 {
		if _, err := e.kv.Put(context.Background(), limits.RateKey(keyA, time.Minute, i), []byte(`{"v":1,"limit":20,"taken":0}`)); err != nil {
			t.Fatal(err)
		}
		// Take for half a second, five times as long as a node remembers
		// a spent window before it asks the bucket again.
		for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); {
			if d := l.Take(context.Background(), keyA, lim, 1); d.Reason == domain.ReasonOK {
				total++
			}
		}
		if total != 20 {
			t.Errorf("round %d: the node accepted %d in the window, want 20 whatever the bucket says", round, total)
		}
	}
}
