package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/natstest"
)

type readyBody struct {
	Ready            bool    `json:"ready"`
	AppliedSeq       uint64  `json:"applied_seq"`
	StartSeq         uint64  `json:"start_seq"`
	StalenessSeconds float64 `json:"staleness_seconds"`
	Connected        bool    `json:"connected"`
	Reason           string  `json:"reason"`
}

func (ts *testServer) readyz(t *testing.T, query string) (int, readyBody) {
	t.Helper()
	r := ts.do(t, "GET", "/readyz"+query, "")
	var b readyBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("/readyz: %q: %v", r.body, err)
	}
	return r.status, b
}

// TestServe_NATSUnreachable cuts serve off from NATS: reads keep serving
// from the read models and say how stale they are (X-Keyledger-Staleness),
// /readyz stays 200 with connected false and a growing staleness (503 with
// ?strict=1), commands answer 503 at once, and once NATS is back nothing
// those commands tried is in the log.
func TestServe_NATSUnreachable(t *testing.T) {
	srv := natstest.RunServer(t)
	proxy := natstest.StartProxy(t, srv.Addr().String())
	ts := startServerWith(t, func(c *ServeConfig) { c.NATSURL = proxy.URL() })
	ts.register(t, "alice@example.com", password)
	token := ts.login(t, "alice@example.com", password)
	k := ts.createKey(t, token, "")
	auth := []string{"Authorization", "Bearer " + token}

	r := ts.do(t, "GET", "/api-keys", "", auth...)
	wantStatus(t, r, http.StatusOK)
	if h := r.header.Get("X-Keyledger-Staleness"); h != "" {
		t.Fatalf("connected: got X-Keyledger-Staleness %q, want none", h)
	}
	status, before := ts.readyz(t, "?strict=1")
	if status != http.StatusOK || !before.Connected || before.StalenessSeconds < 0 || before.StalenessSeconds > 5 {
		t.Fatalf("connected: got /readyz?strict=1 %d %+v, want 200, connected and fresh", status, before)
	}
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	head := func() uint64 {
		info, err := js.Stream(context.Background(), eventstore.DefaultStream)
		if err != nil {
			t.Fatal(err)
		}
		return info.CachedInfo().State.LastSeq
	}
	headBefore := head()

	proxy.Cut()
	var st readyBody
	natstest.Eventually(t, 10*time.Second, func() bool {
		status, st = ts.readyz(t, "")
		return !st.Connected
	}, "serve notices the cut")
	if status != http.StatusOK || !st.Ready {
		t.Fatalf("disconnected: got /readyz %d %+v, want 200: reads still serve", status, st)
	}
	if status, st := ts.readyz(t, "?strict=1"); status != http.StatusServiceUnavailable || st.Ready || st.Reason == "" {
		t.Fatalf("disconnected: got /readyz?strict=1 %d %+v, want 503 with a reason", status, st)
	}
	first := st.StalenessSeconds
	natstest.Eventually(t, 10*time.Second, func() bool {
		_, st = ts.readyz(t, "")
		return st.StalenessSeconds > first+1
	}, "staleness grows")

	// Reads serve, and say how stale they are.
	for _, path := range []string{"/api-keys", "/api-keys/" + k.key} {
		r := ts.do(t, "GET", path, "", auth...)
		wantStatus(t, r, http.StatusOK)
		s, err := strconv.ParseFloat(r.header.Get("X-Keyledger-Staleness"), 64)
		if err != nil || s < first+1 {
			t.Fatalf("GET %s: got X-Keyledger-Staleness %q, want at least %.3f", path, r.header.Get("X-Keyledger-Staleness"), first+1)
		}
	}
	// Commands answer 503 at once.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api-keys", ""},
		{"DELETE", "/api-keys/" + k.key, ""},
		{"POST", "/api-keys/" + k.key + "/regenerate", ""},
		{"POST", "/users", `{"email":"bob@example.com","password":"` + password + `"}`},
	} {
		start := time.Now()
		headers := auth
		if c.path == "/users" {
			headers = nil
		}
		r := ts.do(t, c.method, c.path, c.body, headers...)
		wantStatus(t, r, http.StatusServiceUnavailable)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s %s: took %v to answer 503, want it at once", c.method, c.path, took)
		}
	}

	proxy.Restore()
	natstest.Eventually(t, 20*time.Second, func() bool {
		status, st = ts.readyz(t, "?strict=1")
		return status == http.StatusOK && st.Connected && st.StalenessSeconds < 2
	}, "serve reconnects and confirms its view")
	if got := head(); got != headBefore {
		t.Fatalf("the log grew from %d to %d: a command refused during the outage was stored", headBefore, got)
	}
	r = ts.do(t, "GET", "/api-keys", "", auth...)
	wantStatus(t, r, http.StatusOK)
	if h := r.header.Get("X-Keyledger-Staleness"); h != "" {
		t.Fatalf("reconnected: got X-Keyledger-Staleness %q, want none", h)
	}
	if ts.validate(t, k) != http.StatusOK {
		t.Fatal("the key does not validate after the outage")
	}
}
