package app_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/adminnonce"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/embedded"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// connectAs connects to serve's embedded NATS server with a role's
// credentials, as `nats --creds` would.
func connectAs(t *testing.T, ts *apptest.Server, r natsauth.Role) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(ts.CredsFile(r)), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("connect as %s: %v", r, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// TestNATSAuth_Unauthenticated: the embedded server refuses a client
// without credentials, and one whose credentials come from another data dir.
func TestNATSAuth_Unauthenticated(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	if nc, err := nats.Connect(ts.NATSURL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected without credentials, want refused")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("got %v, want an authorization violation", err)
	}
	other, err := natsauth.Open(t.TempDir(), "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(other.CredsFile(natsauth.Operator)), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected with a stranger's operator credentials, want refused")
	}
}

// TestNATSAuth_ReadersCannotChangeTheLog: with the validator's and the
// auditor's credentials, every operation that would change the log, the
// stream or the nonce bucket is refused, and afterwards the stream is as
// it was.
func TestNATSAuth_ReadersCannotChangeTheLog(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ts.Register(t, "alice@example.com", "correct horse battery staple")
	_, opJS := connectAs(t, ts, natsauth.Operator)
	ctx := context.Background()
	before, err := opJS.Stream(ctx, "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	want := before.CachedInfo()

	nonces, err := opJS.KeyValue(ctx, "KEYLEDGER_NONCES")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nonces.Create(ctx, "seen", nil); err != nil {
		t.Fatal(err)
	}

	// The roles run at once; the group ends when both have.
	t.Run("Roles", func(t *testing.T) {
		for _, role := range []natsauth.Role{natsauth.Validator, natsauth.Auditor} {
			t.Run(string(role), func(t *testing.T) {
				t.Parallel() // each waits out the deadlines of its refused requests
				nc, js := connectAs(t, ts, role)
				// Reading is allowed: that is the role.
				c, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				s, err := js.Stream(c, "KEYLEDGER")
				if err != nil {
					t.Fatalf("stream info: %v", err)
				}
				if _, err := s.GetMsg(c, 1); err != nil {
					t.Errorf("get message 1: %v", err)
				}
				cfg := s.CachedInfo().Config
				edited, sealed := cfg, cfg
				edited.Metadata = map[string]string{"keyledger_signing_keys": "attacker"}
				sealed.Sealed = true
				// A refused request gets no answer: each runs until its
				// deadline, all at once.
				attacks := map[string]func(context.Context) error{
					"stream edit (metadata)": func(c context.Context) error { _, err := js.UpdateStream(c, edited); return err },
					"stream seal":            func(c context.Context) error { _, err := js.UpdateStream(c, sealed); return err },
					"stream purge":           func(c context.Context) error { return s.Purge(c) },
					"message delete":         func(c context.Context) error { return s.DeleteMsg(c, 1) },
					"stream delete":          func(c context.Context) error { return js.DeleteStream(c, "KEYLEDGER") },
					"stream create": func(c context.Context) error {
						_, err := js.CreateStream(c, jetstream.StreamConfig{Name: "SHADOW", Subjects: []string{"shadow.>"}})
						return err
					},
					"publish to keyledger.key.ak_x": func(c context.Context) error {
						_, err := js.Publish(c, "keyledger.key.ak_x", []byte(`{"type":"key.created"}`))
						return err
					},
					"nonce bucket purge": func(c context.Context) error {
						_, err := nc.RequestWithContext(c, "$JS.API.STREAM.PURGE.KV_KEYLEDGER_NONCES", nil)
						return err
					},
					"nonce bucket delete": func(c context.Context) error { return js.DeleteKeyValue(c, "KEYLEDGER_NONCES") },
					// The admin nonce bucket is serve's alone: no
					// reading which admin requests were made, no
					// writing (to refuse an admin's next request).
					"admin nonce write": func(c context.Context) error {
						_, err := js.Publish(c, "$KV.KEYLEDGER_ADMIN_NONCES."+adminnonce.Key("adm_x", "n"), nil)
						return err
					},
					"admin nonce bucket info": func(c context.Context) error {
						_, err := js.Stream(c, "KV_KEYLEDGER_ADMIN_NONCES")
						return err
					},
					"admin nonce read": func(c context.Context) error {
						_, err := nc.RequestWithContext(c, "$JS.API.DIRECT.GET.KV_KEYLEDGER_ADMIN_NONCES", []byte(`{"last_by_subj":"$KV.KEYLEDGER_ADMIN_NONCES.x"}`))
						return err
					},
					"admin nonce bucket purge": func(c context.Context) error {
						_, err := nc.RequestWithContext(c, "$JS.API.STREAM.PURGE.KV_KEYLEDGER_ADMIN_NONCES", nil)
						return err
					},
				}
				natstest.WantRefused(t, ctx, 5*time.Second, attacks)
			})
		}
	})

	if _, err := nonces.Get(ctx, "seen"); err != nil {
		t.Errorf("the nonce bucket lost its entry: %v", err)
	}
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	after, err := opJS.Stream(c, "KEYLEDGER")
	if err != nil {
		t.Fatalf("the stream is gone: %v", err)
	}
	got := after.CachedInfo()
	if got.Config.Sealed || got.Config.Metadata["keyledger_signing_keys"] != want.Config.Metadata["keyledger_signing_keys"] {
		t.Errorf("stream config changed: sealed %v, metadata %v", got.Config.Sealed, got.Config.Metadata)
	}
	if got.State.Msgs != want.State.Msgs || got.State.LastSeq != want.State.LastSeq || got.State.FirstSeq != want.State.FirstSeq {
		t.Errorf("stream state: got %d msgs %d..%d, want %d msgs %d..%d", got.State.Msgs, got.State.FirstSeq,
			got.State.LastSeq, want.State.Msgs, want.State.FirstSeq, want.State.LastSeq)
	}
	if _, err := opJS.Stream(c, "SHADOW"); err == nil {
		t.Errorf("stream SHADOW was created")
	}
}

// TestNATSAuth_NonceBucket: a validator's credentials write nonces, as
// the shared replay cache needs, but cannot purge one (roll-ups and purge
// are denied on the bucket), and the bucket keeps its TTL and size cap.
func TestNATSAuth_NonceBucket(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	_, js := connectAs(t, ts, natsauth.Validator)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "KEYLEDGER_NONCES")
	if err != nil {
		t.Fatalf("bind the nonce bucket: %v", err)
	}
	if _, err := kv.Create(ctx, "n1", nil); err != nil {
		t.Fatalf("create a nonce: %v", err)
	}
	if _, err := kv.Create(ctx, "n1", nil); err == nil {
		t.Errorf("created nonce n1 twice")
	}
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	err = kv.Purge(pctx, "n1")
	pcancel()
	if err == nil {
		t.Errorf("purged nonce n1, want refused")
	}
	if _, err := kv.Create(ctx, "n1", nil); err == nil {
		t.Errorf("nonce n1 created again after a purge")
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config
	if !cfg.DenyPurge || !cfg.DenyDelete || cfg.AllowRollup || cfg.MaxBytes != app.DefaultNoncesMaxBytes || cfg.MaxAge != 10*time.Minute {
		t.Errorf("nonce bucket: deny purge %v, deny delete %v, rollup %v, max bytes %d, ttl %v; want true, true, false, %d, 10m",
			cfg.DenyPurge, cfg.DenyDelete, cfg.AllowRollup, cfg.MaxBytes, cfg.MaxAge, app.DefaultNoncesMaxBytes)
	}
}

// TestNATSAuth_AdminNonceBucket: the ledger's credentials add admin
// nonces, as a serve in a cluster needs, and nothing else: they cannot
// read the bucket, purge or delete it, overwrite a nonce with a delete
// marker to have it accepted again, or write outside one key token.
func TestNATSAuth_AdminNonceBucket(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	nc, js := connectAs(t, ts, natsauth.Ledger)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := adminnonce.New(ctx, nc, adminnonce.WithTTL(handlers.AdminNonceTTL))
	if err != nil {
		t.Fatalf("bind the admin nonce bucket with the ledger's credentials: %v", err)
	}
	if err := store.Record(ctx, "adm_1", "n-0123456789abcdef"); err != nil {
		t.Fatalf("record a nonce: %v", err)
	}
	key := adminnonce.Key("adm_1", "n-0123456789abcdef")
	attacks := map[string]func(context.Context) error{
		"bucket purge": func(c context.Context) error {
			_, err := nc.RequestWithContext(c, "$JS.API.STREAM.PURGE.KV_KEYLEDGER_ADMIN_NONCES", nil)
			return err
		},
		"bucket delete": func(c context.Context) error { return js.DeleteKeyValue(c, "KEYLEDGER_ADMIN_NONCES") },
		"message delete": func(c context.Context) error {
			_, err := nc.RequestWithContext(c, "$JS.API.STREAM.MSG.DELETE.KV_KEYLEDGER_ADMIN_NONCES", []byte(`{"seq":1}`))
			return err
		},
		"read": func(c context.Context) error {
			_, err := nc.RequestWithContext(c, "$JS.API.DIRECT.GET.KV_KEYLEDGER_ADMIN_NONCES", []byte(`{"last_by_subj":"$KV.KEYLEDGER_ADMIN_NONCES.`+key+`"}`))
			return err
		},
		"key purge (roll-up)": func(c context.Context) error {
			m := nats.NewMsg("$KV.KEYLEDGER_ADMIN_NONCES." + key)
			m.Header.Set("KV-Operation", "PURGE")
			m.Header.Set("Nats-Rollup", "sub")
			_, err := js.PublishMsg(c, m)
			return err
		},
		"write two tokens deep": func(c context.Context) error {
			_, err := js.Publish(c, "$KV.KEYLEDGER_ADMIN_NONCES.a.b", nil)
			return err
		},
	}
	natstest.WantRefused(t, ctx, 5*time.Second, attacks)
	// A delete marker is a message too: the nonce stays refused.
	m := nats.NewMsg("$KV.KEYLEDGER_ADMIN_NONCES." + key)
	m.Header.Set("KV-Operation", "DEL")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("put a delete marker: %v", err)
	}
	if err := store.Record(ctx, "adm_1", "n-0123456789abcdef"); !errors.Is(err, adminnonce.ErrReplayed) {
		t.Errorf("the nonce after a delete marker: got %v, want ErrReplayed", err)
	}
}

// TestNATSAuth_ValidatorFollowsTheLog: a validation node with the
// validator's credentials (and the shared replay cache) catches up,
// validates, and sees a revocation.
func TestNATSAuth_ValidatorFollowsTheLog(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ts.Register(t, "alice@example.com", "correct horse battery staple")
	token := ts.Login(t, "alice@example.com", "correct horse battery staple")
	k := ts.CreateKey(t, token, "")
	node := &app.Node{Config: app.NodeConfig{NATSURL: ts.NATSURL(), HTTPAddr: "127.0.0.1:0",
		NATSClient: app.NATSClientConfig{Creds: ts.CredsFile(natsauth.Validator)},
		Signed:     app.SignedRequestsConfig{ReplayCache: "shared"}}}
	if err := node.Open(context.Background()); err != nil {
		t.Fatalf("open the node: %v", err)
	}
	defer node.Close(context.Background())
	natstest.Eventually(t, 10*time.Second, func() bool { return node.Validator().Status().Ready }, "node ready")
	if _, err := node.Validator().Validate(context.Background(), k.Key, k.Secret); err != nil {
		t.Fatalf("validate on the node: %v", err)
	}
	if r := ts.Do(t, "DELETE", "/api-keys/"+k.Key, "", "Authorization", "Bearer "+token); r.Status != 204 {
		t.Fatalf("revoke: got %d, want 204", r.Status)
	}
	natstest.Eventually(t, 10*time.Second, func() bool {
		_, err := node.Validator().Validate(context.Background(), k.Key, k.Secret)
		return err != nil
	}, "the revoked key refused on the node")
}

// TestNATSAuth_CredentialsPersist: the credentials are 0600 files that a
// restart reuses as they are, and they still connect afterwards.
func TestNATSAuth_CredentialsPersist(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := apptest.Start(t, dir)
	files := map[natsauth.Role][]byte{}
	for _, r := range natsauth.Roles {
		fi, err := os.Stat(ts.CredsFile(r))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", fi.Name(), fi.Mode().Perm())
		}
		if files[r], err = os.ReadFile(ts.CredsFile(r)); err != nil {
			t.Fatal(err)
		}
	}
	ts.Stop(t)
	ts = apptest.Start(t, dir)
	defer ts.Stop(t)
	for _, r := range natsauth.Roles {
		b, err := os.ReadFile(ts.CredsFile(r))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(files[r]) {
			t.Errorf("%s.creds changed across a restart", r)
		}
	}
	connectAs(t, ts, natsauth.Auditor)
}

// TestNATSAuth_AdoptsAnUnauthenticatedStore: a data dir written before
// the embedded server required credentials keeps its JetStream data,
// moved under keyledger's account at the first authenticated start.
func TestNATSAuth_AdoptsAnUnauthenticatedStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old, err := embedded.Start(embedded.Config{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(old.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EARLIER", Subjects: []string{"earlier.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "earlier.x", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	old.Shutdown()
	old.WaitForShutdown()

	ts := apptest.Start(t, dir)
	defer ts.Stop(t)
	_, opJS := connectAs(t, ts, natsauth.Operator)
	s, err := opJS.Stream(ctx, "EARLIER")
	if err != nil {
		t.Fatalf("the earlier stream is gone: %v", err)
	}
	if got := s.CachedInfo().State.Msgs; got != 1 {
		t.Errorf("got %d messages, want 1", got)
	}
	if !strings.Contains(ts.Logs.String(), "moved the log of the unauthenticated embedded NATS server") {
		t.Errorf("the move was not logged")
	}
}
