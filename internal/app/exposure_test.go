package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// forwardedSigned is the subrequest a forward-auth proxy sends to
// /validate about a signed POST https://app.example/orders?id=7 by k: the
// original's fields, and its method and URL in X-Forwarded-*.
func forwardedSigned(t *testing.T, k apptest.CreatedKey) []string {
	t.Helper()
	signer, err := client.NewSigner(k.Key, k.Secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"amount":100}`)
	orig, err := http.NewRequest(http.MethodPost, "https://app.example/orders?id=7", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	orig.Header.Set("Content-Type", "application/json")
	if err := signer.SignRequest(orig, body); err != nil {
		t.Fatal(err)
	}
	h := []string{"X-Forwarded-Method", "POST", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example",
		"X-Forwarded-Uri", "/orders?id=7"}
	for name := range orig.Header {
		h = append(h, name, orig.Header.Get(name))
	}
	return h
}

// TestServe_ForwardedOnlyFromTrustedProxy: serve's /validate describes a
// signed request by X-Forwarded-* only when they come from a
// --trusted-proxy; from anyone else they are ignored, and the signature
// (made for another request) fails.
func TestServe_ForwardedOnlyFromTrustedProxy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		proxies []string
		want    int
	}{
		{"NoTrustedProxy", nil, http.StatusUnauthorized},
		{"OtherProxy", []string{"192.0.2.0/24"}, http.StatusUnauthorized},
		{"LoopbackTrusted", []string{"127.0.0.1", "::1"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startServerWith(t, func(c *app.ServeConfig) {
				c.Limits.TrustedProxies = tc.proxies
				c.SignUp.Registration = "open" // behind a proxy the default is verified
			})
			ts.Register(t, "alice@example.com", apptest.Password)
			k := ts.CreateKey(t, ts.Login(t, "alice@example.com", apptest.Password), `{"name":"signer"}`)
			r := apptest.Send(t, "GET", ts.Base+"/validate", "", forwardedSigned(t, k)...)
			apptest.WantStatus(t, r, tc.want)
		})
	}
}

// TestNode_MetricsAddr: a validation node serves /metrics on a listener of
// its own, beside /validate only when asked for, or not at all; and it
// believes X-Forwarded-* only from a --trusted-proxy.
func TestNode_MetricsAddr(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ts.Register(t, "alice@example.com", apptest.Password)
	k := ts.CreateKey(t, ts.Login(t, "alice@example.com", apptest.Password), `{"name":"signer"}`)
	head := apptest.StreamHead(t, ts)

	for _, tc := range []struct {
		name, addr        string
		proxies           []string
		onListener, onAPI bool
		forwarded         int
	}{
		{"Listener", "127.0.0.1:0", nil, true, false, http.StatusUnauthorized},
		{"API", app.MetricsOnAPI, []string{"127.0.0.1", "::1"}, false, true, http.StatusOK},
		{"Off", app.MetricsOff, []string{"192.0.2.1"}, false, false, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &app.Node{Config: app.NodeConfig{NATSURL: ts.NATSURL(), HTTPAddr: "127.0.0.1:0", MetricsAddr: tc.addr,
				TrustedProxies: tc.proxies, NATSClient: app.NATSClientConfig{Creds: ts.CredsFile(natsauth.Validator)}},
				Logger: slog.New(slog.DiscardHandler)}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := n.Open(ctx); err != nil {
				n.Close(context.Background())
				t.Fatalf("open node: %v", err)
			}
			defer n.Close(context.Background())
			if err := n.Validator().WaitFor(ctx, head); err != nil {
				t.Fatal(err)
			}
			// Applied is not ready: the node also confirms its view
			// complete before it answers anything but 503.
			natstest.Eventually(t, 30*time.Second, func() bool { return n.Validator().Status().Ready }, "node ready")
			base := "http://" + n.HTTPAddr()

			r := apptest.Send(t, "GET", base+"/metrics", "")
			if tc.onAPI {
				apptest.WantStatus(t, r, http.StatusOK)
				wantValue(t, parseMetrics(t, string(r.Body)), float64(head), "keyledger_validator_applied_sequence")
			} else {
				apptest.WantStatus(t, r, http.StatusNotFound)
			}
			if tc.onListener {
				if n.MetricsAddr() == "" || n.MetricsAddr() == n.HTTPAddr() {
					t.Fatalf("MetricsAddr: got %q, want a listener apart from %q", n.MetricsAddr(), n.HTTPAddr())
				}
				r := apptest.Send(t, "GET", "http://"+n.MetricsAddr()+"/metrics", "")
				apptest.WantStatus(t, r, http.StatusOK)
				wantValue(t, parseMetrics(t, string(r.Body)), float64(head), "keyledger_validator_applied_sequence")
				apptest.WantStatus(t, apptest.Send(t, "GET", "http://"+n.MetricsAddr()+"/validate", ""), http.StatusNotFound)
			} else if n.MetricsAddr() != "" {
				t.Errorf("MetricsAddr: got %q, want no listener", n.MetricsAddr())
			}
			apptest.WantStatus(t, apptest.Send(t, "GET", base+"/validate", "", forwardedSigned(t, k)...), tc.forwarded)
		})
	}
}
