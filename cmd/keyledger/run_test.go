package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natstest"
)

func TestRun(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{"NoArgs", nil, nil, 2},
		{"Help", []string{"help"}, nil, 0},
		{"UnknownCommand", []string{"frobnicate"}, nil, 2},
		{"UnknownFlag", []string{"serve", "--no-such-flag"}, nil, 2},
		{"ServeHelp", []string{"serve", "-h"}, nil, 0},
		{"BadEnv", []string{"serve"}, map[string]string{"KEYLEDGER_REPLICAS": "three"}, 2},
		{"BadLogFormat", []string{"serve", "--log-format", "xml"}, nil, 2},
		{"ExposedNATS", []string{"serve", "--nats-listen", "0.0.0.0:4222", "--data-dir", t.TempDir()}, nil, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			if got := run(context.Background(), c.args, io.Discard, io.Discard); got != c.want {
				t.Fatalf("got exit %d, want %d", got, c.want)
			}
		})
	}
}

func TestParseFlags_EnvThenCommandLine(t *testing.T) {
	t.Setenv("KEYLEDGER_HTTP_ADDR", "127.0.0.1:9999")
	t.Setenv("KEYLEDGER_STREAM", "FROM_ENV")
	var cfg app.ServeConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &cfg)
	if err := parseFlags(fs, []string{"--stream", "FROM_FLAG"}); err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:9999" || cfg.Stream != "FROM_FLAG" {
		t.Fatalf("got http %q stream %q, want the env value and the flag value", cfg.HTTPAddr, cfg.Stream)
	}
}

// TestRun_GracefulShutdown runs `keyledger serve` as main does and cancels
// its context, as SIGINT or SIGTERM would: it must stop cleanly (exit 0),
// release its ports, and leave a data dir the next start can use.
func TestRun_GracefulShutdown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	httpAddr, natsAddr := apptest.FreeAddr(t), apptest.FreeAddr(t)
	args := []string{"serve", "--data-dir", dir, "--http-addr", httpAddr, "--nats-listen", natsAddr, "--metrics-addr", apptest.FreeAddr(t)}
	for round := 0; round < 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() { done <- run(ctx, args, io.Discard, io.Discard) }()
		natstest.Eventually(t, 15*time.Second, func() bool {
			resp, err := http.Get("http://" + httpAddr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, "serve ready")
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("round %d: got exit %d, want 0", round, code)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: serve did not stop within 20s of the signal", round)
		}
	}
}

// TestRun_DataDirInUse: `keyledger serve` on a data directory another
// serve holds exits 1 at once with a message that says so.
func TestRun_DataDirInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := apptest.Start(t, dir)
	defer first.Stop(t)
	var stderr apptest.SyncBuffer
	args := []string{"serve", "--data-dir", dir, "--http-addr", apptest.FreeAddr(t), "--nats-listen", apptest.FreeAddr(t), "--metrics-addr", "off"}
	if got := run(context.Background(), args, io.Discard, &stderr); got != 1 {
		t.Fatalf("got exit %d, want 1", got)
	}
	if want := "data directory " + dir + " is in use by another keyledger serve (pid "; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr: got %q, want it to contain %q", stderr.String(), want)
	}
}
