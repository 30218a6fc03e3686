package fleet

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/internal/embedded"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testclock"
)

func TestParse(t *testing.T) {
	good := `{"name":"n1","version":"v1.2.3","applied_seq":7,"staleness_seconds":0.5}`
	hb, err := Parse("keyledger_fleet.n1", []byte(good))
	if err != nil || hb != (Heartbeat{Name: "n1", Version: "v1.2.3", AppliedSeq: 7, StalenessSeconds: 0.5}) {
		t.Fatalf("got %+v, %v", hb, err)
	}
	for name, c := range map[string]struct{ subject, data string }{
		"OtherNodesSubject": {"keyledger_fleet.n2", good},
		"LogSubject":        {"keyledger.n1", good},
		"DeepSubject":       {"keyledger_fleet.a.n1", good},
		"UnknownField":      {"keyledger_fleet.n1", `{"name":"n1","admin":true}`},
		"Trailing":          {"keyledger_fleet.n1", good + `{}`},
		"NotJSON":           {"keyledger_fleet.n1", `n1`},
		"ControlInVersion":  {"keyledger_fleet.n1", `{"name":"n1","version":"a\nb"}`},
		"LongVersion":       {"keyledger_fleet.n1", `{"name":"n1","version":"` + strings.Repeat("v", 65) + `"}`},
		"Huge":              {"keyledger_fleet.n1", `{"name":"n1","version":"` + strings.Repeat(" ", MaxHeartbeatBytes) + `"}`},
		"NegativeStaleness": {"keyledger_fleet.n1", `{"name":"n1","staleness_seconds":-2}`},
		"NegativeSeq":       {"keyledger_fleet.n1", `{"name":"n1","applied_seq":-1}`},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(c.subject, []byte(c.data)); err == nil {
				t.Fatalf("got no error, want ErrInvalid")
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("keyledger_fleet.n1", []byte(`{"name":"n1","version":"v1","applied_seq":7,"staleness_seconds":0.5}`))
	f.Add("keyledger_fleet.n1", []byte(`{"name":"n2"}`))
	f.Add("keyledger_fleet.", []byte(`{}`))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		hb, err := Parse(subject, data)
		if err != nil {
			return
		}
		if Subject(hb.Name) != subject || !ValidName(hb.Name) {
			t.Fatalf("accepted %+v on %q", hb, subject)
		}
		enc, err := hb.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if again, err := Parse(subject, enc); err != nil || again != hb {
			t.Fatalf("round trip: got %+v, %v, want %+v", again, err, hb)
		}
	})
}

func TestNameFrom(t *testing.T) {
	for in, want := range map[string]string{"host.example.com": "host_example_com", "": "node", "serve:a-1": "serve:a-1",
		strings.Repeat("x", 80): strings.Repeat("x", MaxNameLen), "a b*>": "a_b__"} {
		if got := NameFrom(in); got != want || !ValidName(got) {
			t.Errorf("NameFrom(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestView_Liveness(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	v := NewView(WithClock(clock.Now), WithLiveness(5*time.Second))
	v.Observe(Heartbeat{Name: "a", Version: "v1", AppliedSeq: 3})
	v.Observe(Heartbeat{Name: "b", Version: "v1", AppliedSeq: 4})
	clock.Advance(4 * time.Second)
	v.Observe(Heartbeat{Name: "b", Version: "v1", AppliedSeq: 5})
	clock.Advance(2 * time.Second)
	got := v.Nodes()
	if len(got) != 2 || got[0].Name != "a" || got[0].Live || !got[1].Live || got[1].AppliedSeq != 5 {
		t.Fatalf("got %+v, want a not live and b live at 5", got)
	}
	clock.Advance(45 * time.Second) // a silent 51s, past ten windows; b 47s
	if got := v.Nodes(); len(got) != 1 || got[0].Name != "b" {
		t.Fatalf("got %+v, want a forgotten and b still listed", got)
	}
	// A node silent during a wait stays unconfirmed; one not live when the
	// wait starts is not waited for.
	v.Observe(Heartbeat{Name: "c", AppliedSeq: 9})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c := v.Wait(ctx, 9); c.Total != 1 || !c.Complete() {
		t.Fatalf("got %+v, want 1/1 (b is not live)", c)
	}
	if c := v.Wait(ctx, 10); c.Complete() || !slices.Equal(c.Pending, []string{"c"}) {
		t.Fatalf("got %+v, want c pending", c)
	}
}

// A holder of validator credentials announcing thousands of made-up nodes
// cannot grow the View past its cap nor push out the nodes already known.
func TestView_FloodOfNames(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	v := NewView(WithClock(clock.Now), WithMaxNodes(8))
	v.Observe(Heartbeat{Name: "real", AppliedSeq: 1})
	for i := range 10000 {
		v.Observe(Heartbeat{Name: "fake" + strings.Repeat("x", i%50) + string(rune('a'+i%26)), AppliedSeq: 1})
	}
	got := v.Nodes()
	if len(got) > 8 || got[len(got)-1].Name != "real" {
		t.Fatalf("got %d nodes (%v), want at most 8 with the real one", len(got), got)
	}
}

type fakeSource struct{ seq atomic.Uint64 }

func (s *fakeSource) Applied() (uint64, float64) { return s.seq.Load(), 0 }
func (s *fakeSource) WaitFor(ctx context.Context, seq uint64) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestAnnouncer_Wait(t *testing.T) {
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	v := NewView()
	sub, err := v.Subscribe(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sources := map[string]*fakeSource{}
	for _, name := range []string{"n1", "n2", "n3"} {
		s := &fakeSource{}
		s.seq.Store(1)
		sources[name] = s
		a := &Announcer{Conn: natstest.Connect(t, srv), Name: name, Version: "test", Source: s, Interval: 20 * time.Millisecond}
		go a.Run(ctx)
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return len(v.Nodes()) == 3 }, "three nodes heard")
	sources["n1"].seq.Store(5)
	sources["n3"].seq.Store(5)
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	c := v.Wait(short, 5)
	cancelShort()
	if c.Complete() || c.Total != 3 || !slices.Equal(c.Pending, []string{"n2"}) {
		t.Fatalf("got %+v, want n2 pending", c)
	}
	sources["n2"].seq.Store(6)
	long, cancelLong := context.WithTimeout(ctx, 10*time.Second)
	defer cancelLong()
	if c := v.Wait(long, 5); !c.Complete() || c.Applied != 3 {
		t.Fatalf("got %+v, want 3/3", c)
	}
}

// Credentials that may not hear heartbeats make Subscribe fail, instead
// of a View that hears no one and lets every wait pass as 0/0.
func TestView_SubscribeRefused(t *testing.T) {
	s, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Auth: func(o *server.Options) error {
		o.Users = []*server.User{{Username: "old", Password: "old-password-0123",
			Permissions: &server.Permissions{Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}}}}}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("old", "old-password-0123"), nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := NewView().Subscribe(nc, nil); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("got %v, want ErrNotPermitted", err)
	}
}
