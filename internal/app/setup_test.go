package app_test

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/embedded"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestSetUp_ServeOnLedgerCredentials: on an outside NATS server that
// requires credentials, `keyledger setup` with the operator's creates the
// stream and buckets, and serve then runs on the ledger's credentials,
// which may not create or change a stream: it changes nothing of what
// setup made. Once the operator configures the stream otherwise, a new
// serve refuses to start, naming `keyledger setup`, and leaves the
// operator's configuration as it is.
func TestSetUp_ServeOnLedgerCredentials(t *testing.T) {
	t.Parallel()
	creds, err := natsauth.Open(t.TempDir(), eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Auth: creds.Configure})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	ctx := context.Background()
	if err := app.SetUp(ctx, app.ServeConfig{NATSURL: ns.ClientURL(),
		NATSClient: app.NATSClientConfig{Creds: creds.CredsFile(natsauth.Operator)}}, nil); err != nil {
		t.Fatalf("SetUp: %v", err)
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.UserCredentials(creds.CredsFile(natsauth.Operator)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	streams := []string{eventstore.DefaultStream, "KV_" + eventstore.DefaultStream + "_IDEMPOTENCY", "KV_" + eventstore.DefaultStream + "_NONCES",
		"KV_" + eventstore.DefaultStream + "_LIMITS"}
	configs := func() map[string]jetstream.StreamConfig {
		t.Helper()
		m := map[string]jetstream.StreamConfig{}
		for _, name := range streams {
			s, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatalf("stream %s after setup: %v", name, err)
			}
			m[name] = s.CachedInfo().Config
		}
		return m
	}
	before := configs()

	serve := func(dataDir string) (*app.Server, error) {
		s := &app.Server{
			Config: app.ServeConfig{DataDir: dataDir, HTTPAddr: "127.0.0.1:0", NATSURL: ns.ClientURL(),
				NATSClient:   app.NATSClientConfig{Creds: creds.CredsFile(natsauth.Ledger)},
				Argon2:       auth.Argon2Params{Memory: 64, Time: 1, Threads: 1},
				StartTimeout: 20 * time.Second, CheckpointInterval: -1},
			Logger: slog.New(slog.DiscardHandler),
		}
		return s, s.Open(ctx)
	}
	dataDir := t.TempDir()
	s, err := serve(dataDir)
	if err != nil {
		t.Fatalf("serve on the ledger's credentials after setup: %v", err)
	}
	natstest.Eventually(t, 20*time.Second, s.Ready, "serve ready")
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := s.Close(cctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	cancel()
	if after := configs(); !reflect.DeepEqual(after, before) {
		t.Fatalf("serve on the ledger's credentials changed what setup made:\nbefore %+v\nafter  %+v", before, after)
	}

	// The operator gives the stream another size limit: serve wants the
	// default one and may not change it.
	stream, err := js.Stream(ctx, eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	cfg.MaxBytes = 64 << 20
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("operator resizes the stream: %v", err)
	}
	_, err = serve(dataDir)
	if !errors.Is(err, eventstore.ErrStreamNotSetUp) || !strings.Contains(err.Error(), "keyledger setup") {
		t.Fatalf("serve on a stream configured otherwise: got %v, want ErrStreamNotSetUp naming keyledger setup", err)
	}
	if got := configs()[eventstore.DefaultStream].MaxBytes; got != 64<<20 {
		t.Errorf("stream size limit after the refused start: %d, want the operator's %d", got, 64<<20)
	}
}
