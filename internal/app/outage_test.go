package app_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestServe_NATSUnreachable cuts serve off from NATS: reads keep serving
// from the read models and say how stale they are (X-Keyledger-Staleness),
// /readyz stays 200 with connected false and a growing staleness (503 with
// ?strict=1), commands answer 503 at once, and once NATS is back nothing
// those commands tried is in the log.
func TestServe_NATSUnreachable(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	proxy := natstest.StartProxy(t, srv.Addr().String())
	ts := startServerWith(t, func(c *app.ServeConfig) { c.NATSURL = proxy.URL() })
	ts.Register(t, "alice@example.com", apptest.Password)
	token := ts.Login(t, "alice@example.com", apptest.Password)
	k := ts.CreateKey(t, token, "")
	auth := []string{"Authorization", "Bearer " + token}

	r := ts.Do(t, "GET", "/api-keys", "", auth...)
	apptest.WantStatus(t, r, http.StatusOK)
	if h := r.Header.Get("X-Keyledger-Staleness"); h != "" {
		t.Fatalf("connected: got X-Keyledger-Staleness %q, want none", h)
	}
	status, before := ts.Readyz(t, "?strict=1")
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
	var st apptest.ReadyBody
	natstest.Eventually(t, 10*time.Second, func() bool {
		status, st = ts.Readyz(t, "")
		return !st.Connected
	}, "serve notices the cut")
	if status != http.StatusOK || !st.Ready {
		t.Fatalf("disconnected: got /readyz %d %+v, want 200: reads still serve", status, st)
	}
	if status, st := ts.Readyz(t, "?strict=1"); status != http.StatusServiceUnavailable || st.Ready || st.Reason == "" {
		t.Fatalf("disconnected: got /readyz?strict=1 %d %+v, want 503 with a reason", status, st)
	}
	first := st.StalenessSeconds
	natstest.Eventually(t, 10*time.Second, func() bool {
		_, st = ts.Readyz(t, "")
		return st.StalenessSeconds > first+1
	}, "staleness grows")

	// Reads serve, and say how stale they are.
	for _, path := range []string{"/api-keys", "/api-keys/" + k.Key} {
		r := ts.Do(t, "GET", path, "", auth...)
		apptest.WantStatus(t, r, http.StatusOK)
		s, err := strconv.ParseFloat(r.Header.Get("X-Keyledger-Staleness"), 64)
		if err != nil || s < first+1 {
			t.Fatalf("GET %s: got X-Keyledger-Staleness %q, want at least %.3f", path, r.Header.Get("X-Keyledger-Staleness"), first+1)
		}
	}
	// Commands answer 503 at once.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api-keys", ""},
		{"DELETE", "/api-keys/" + k.Key, ""},
		{"POST", "/api-keys/" + k.Key + "/regenerate", ""},
		{"POST", "/users", `{"email":"bob@example.com","password":"` + apptest.Password + `"}`},
	} {
		start := time.Now()
		headers := auth
		if c.path == "/users" {
			headers = nil
		}
		r := ts.Do(t, c.method, c.path, c.body, headers...)
		apptest.WantStatus(t, r, http.StatusServiceUnavailable)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s %s: took %v to answer 503, want it at once", c.method, c.path, took)
		}
	}

	proxy.Restore()
	natstest.Eventually(t, 20*time.Second, func() bool {
		status, st = ts.Readyz(t, "?strict=1")
		return status == http.StatusOK && st.Connected && st.StalenessSeconds < 2
	}, "serve reconnects and confirms its view")
	if got := head(); got != headBefore {
		t.Fatalf("the log grew from %d to %d: a command refused during the outage was stored", headBefore, got)
	}
	r = ts.Do(t, "GET", "/api-keys", "", auth...)
	apptest.WantStatus(t, r, http.StatusOK)
	if h := r.Header.Get("X-Keyledger-Staleness"); h != "" {
		t.Fatalf("reconnected: got X-Keyledger-Staleness %q, want none", h)
	}
	if ts.Validate(t, k) != http.StatusOK {
		t.Fatal("the key does not validate after the outage")
	}
}
