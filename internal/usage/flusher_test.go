package usage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/usage"
)

const awaitTimeout = time.Minute

func key(i int) string { return fmt.Sprintf("ak_01J0000000000000000000%04d", i) }

// setUpStream creates the usage stream of KEYLEDGER on srv's JetStream.
func setUpStream(t *testing.T, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	if err := usage.SetUp(ctx, nc, usage.StreamConfig("KEYLEDGER", 1, 0, 0)); err != nil {
		t.Fatal(err)
	}
}

func newFlusher(t *testing.T, nc *nats.Conn, node string, c *usage.Counters, buffer int, now func() time.Time) *usage.Flusher {
	t.Helper()
	f, err := usage.NewFlusher(usage.FlusherConfig{Counters: c, Conn: nc, Node: node, Interval: time.Hour,
		Buffer: buffer, Timeout: 200 * time.Millisecond, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestUsage_TwoNodes: after a scripted load on two nodes, flushed in
// several intervals, the fold's hourly and daily buckets hold exactly what
// was sent, and last used is the newest valid use.
func TestUsage_TwoNodes(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	setUpStream(t, nc)
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	ca, cb := usage.NewCounters(0, t0), usage.NewCounters(0, t0)
	var clock time.Time // the end of the current interval
	now := func() time.Time { return clock }
	fa := newFlusher(t, natstest.Connect(t, srv), "node-a", ca, 0, now)
	fb := newFlusher(t, natstest.Connect(t, srv), "node-b", cb, 0, now)
	ctx := context.Background()
	type sent struct{ valid, revoked uint64 }
	want := map[string]*sent{}
	var newest time.Time
	for round := range 3 {
		for i := range 5 {
			k := key(i)
			if want[k] == nil {
				want[k] = &sent{}
			}
			for j := range i + 1 {
				at := t0.Add(time.Duration(round)*time.Minute + time.Duration(j)*time.Second)
				c := ca
				if j%2 == 1 {
					c = cb
				}
				c.Record(k, domain.ReasonOK, at)
				want[k].valid++
				if at.After(newest) && i == 4 {
					newest = at
				}
			}
			cb.Record(k, domain.ReasonRevoked, t0)
			want[k].revoked++
		}
		clock = t0.Add(time.Duration(round)*time.Minute + 59*time.Second)
		for _, f := range []*usage.Flusher{fa, fb} {
			if err := f.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	fold := usage.NewFold(usage.FoldConfig{})
	stop, err := fold.Follow(ctx, nc, "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	published := fa.Stats().Published + fb.Stats().Published
	natstest.Eventually(t, awaitTimeout, func() bool { a, _ := fold.Applied(); return a == published }, "fold applied every report")
	for k, w := range want {
		for _, size := range []time.Duration{usage.Hour, usage.Day} {
			b := fold.Buckets(k, t0.Add(-48*time.Hour), t0.Add(48*time.Hour), size)
			if len(b) != 1 || b[0].Valid != w.valid || b[0].Refused[domain.ReasonRevoked] != w.revoked {
				t.Fatalf("%s %v buckets: got %+v, want one with %d valid, %d revoked", k, size, b, w.valid, w.revoked)
			}
		}
	}
	// The mid-run flushes report on the start of each interval.
	if last, ok := fold.LastUsed(key(4)); !ok || !last.Equal(newest) {
		t.Fatalf("last used: got %v, %v, want %v", last, ok, newest)
	}
	top := fold.Top(t0.Add(-time.Hour), 2)
	if len(top) != 2 || top[0].APIKey != key(4) || top[1].APIKey != key(3) {
		t.Fatalf("top: got %+v, want %s then %s", top, key(4), key(3))
	}
}

// TestUsage_Unreachable: while NATS is unreachable the node keeps
// counting, keeps at most Buffer reports, and counts what it dropped;
// once NATS is back the kept reports arrive, and the fold's totals plus
// the dropped count equal what was counted.
func TestUsage_Unreachable(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	setUpStream(t, nc)
	p := natstest.StartProxy(t, srv.Addr().String())
	pc, err := nats.Connect(p.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.IgnoreDiscoveredServers())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pc.Close)
	t0 := time.Now()
	c := usage.NewCounters(0, t0)
	f := newFlusher(t, pc, "node-a", c, 3, nil)
	ctx := context.Background()
	p.Cut()
	natstest.Eventually(t, awaitTimeout, func() bool { return !pc.IsConnected() }, "client disconnected")
	const intervals = 5
	for i := range intervals {
		for range 10 {
			c.Record(key(i), domain.ReasonOK, t0)
		}
		if err := f.Flush(ctx); err == nil {
			t.Fatal("flush succeeded with NATS unreachable")
		}
	}
	st := f.Stats()
	if st.Pending != 3 || st.DroppedReports != 2 || st.DroppedValidations != 20 {
		t.Fatalf("stats while unreachable: got %+v, want 3 pending, 2 dropped of 20 validations", st)
	}
	p.Restore()
	natstest.Eventually(t, awaitTimeout, func() bool { return f.Flush(ctx) == nil && f.Stats().Pending == 0 }, "kept reports published")
	fold := usage.NewFold(usage.FoldConfig{})
	stop, err := fold.Follow(ctx, nc, "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	natstest.Eventually(t, awaitTimeout, func() bool { a, _ := fold.Applied(); return a == 3 }, "fold applied the kept reports")
	var total uint64
	for _, kt := range fold.Top(t0.Add(-time.Hour), 10) {
		total += kt.Total()
	}
	if total+f.Stats().DroppedValidations != intervals*10 {
		t.Fatalf("folded %d + dropped %d, want %d", total, f.Stats().DroppedValidations, intervals*10)
	}
}

// TestUsage_ForgedReports is the attack of a hostile client with the
// validator's credentials writing the usage stream: reports that do not
// parse, name made-up keys or another node's subject are refused and
// counted; none reaches the read model.
func TestUsage_ForgedReports(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	setUpStream(t, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC()
	good := fmt.Sprintf(`{"v":1,"node":"n1","start":%q,"end":%q,"keys":[{"api_key":%q,"valid":1}]}`,
		now.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano), key(1))
	forged := []struct{ subject, data string }{
		{"keyledger_usage.n1", `not json`},
		{"keyledger_usage.n1", `{"v":1,"node":"n1","start":"2026-01-01T00:00:00Z","end":"2025-01-01T00:00:00Z","keys":[]}`},
		{"keyledger_usage.n1", fmt.Sprintf(`{"v":1,"node":"n1","start":%q,"end":%q,"keys":[{"api_key":"ak_nope","valid":1}]}`,
			now.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))},
		{"keyledger_usage.n1", fmt.Sprintf(`{"v":1,"node":"n1","start":%q,"end":%q,"keys":[{"api_key":%q,"valid":1099511627777}]}`,
			now.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano), key(2))}, // a count past MaxCount
		{"keyledger_usage.n1", fmt.Sprintf(`{"v":1,"node":"n1","start":%q,"end":%q,"keys":[{"api_key":%q,"refused":{"revoked":1099511627777}}]}`,
			now.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano), key(2))},
		{"keyledger_usage.other", good}, // n1's report under another node's subject
		{"keyledger_usage.n1", good},    // accepted, but the key does not exist
	}
	for _, m := range forged {
		if _, err := js.Publish(ctx, m.subject, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
	}
	fold := usage.NewFold(usage.FoldConfig{Known: func(k string) bool { return k == key(2) }})
	stop, err := fold.Follow(ctx, nc, "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	natstest.Eventually(t, awaitTimeout, func() bool { a, r := fold.Applied(); return a+r == uint64(len(forged)) }, "fold read every report")
	if _, r := fold.Applied(); r != 6 {
		t.Fatalf("refused: got %d, want 6", r)
	}
	if top := fold.Top(now.Add(-time.Hour), 10); len(top) != 0 {
		t.Fatalf("forged usage in the read model: %+v", top)
	}
}

// TestUsage_KilledNode: a node that dies loses only the counts of the
// interval it was in; its restart shows the gap in the fold, which counts
// it, and the intervals before and after arrive whole.
func TestUsage_KilledNode(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	setUpStream(t, nc)
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	var clock time.Time
	now := func() time.Time { return clock }
	ctx := context.Background()
	c := usage.NewCounters(0, t0)
	f := newFlusher(t, natstest.Connect(t, srv), "node-a", c, 0, now)
	for i := range 2 {
		for range 5 {
			c.Record(key(1), domain.ReasonOK, t0)
		}
		clock = t0.Add(time.Duration(i+1) * 10 * time.Second)
		if err := f.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Killed at t0+25s: 7 validations of its third interval are never
	// published (no Close, no Flush).
	for range 7 {
		c.Record(key(1), domain.ReasonOK, t0)
	}
	// Restarted at t0+40s.
	restart := t0.Add(40 * time.Second)
	c2 := usage.NewCounters(0, restart)
	f2 := newFlusher(t, natstest.Connect(t, srv), "node-a", c2, 0, now)
	for range 3 {
		c2.Record(key(1), domain.ReasonOK, restart)
	}
	clock = restart.Add(10 * time.Second)
	if err := f2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	fold := usage.NewFold(usage.FoldConfig{})
	stop, err := fold.Follow(ctx, nc, "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	natstest.Eventually(t, awaitTimeout, func() bool { a, _ := fold.Applied(); return a == 3 }, "fold applied 3 reports")
	b := fold.Buckets(key(1), t0.Add(-time.Hour), t0.Add(time.Hour), usage.Hour)
	if len(b) != 1 || b[0].Valid != 13 {
		t.Fatalf("buckets: got %+v, want 13 valid (5+5+3; the killed interval's 7 lost)", b)
	}
	if n, covered := fold.Gaps(); n != 1 || covered != 20*time.Second {
		t.Fatalf("gaps: got %d covering %v, want 1 covering 20s", n, covered)
	}
}
