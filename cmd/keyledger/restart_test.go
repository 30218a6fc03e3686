package main

import (
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/natstest"
)

// TestServe_Restart stops the server and starts it again on the same data
// directory: users, keys, revocations, regenerations and session tokens
// must all survive.
func TestServe_Restart(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir)
	aliceID := ts.register(t, "alice@example.com", password)
	token := ts.login(t, "alice@example.com", password)
	kept := ts.createKey(t, token, `{"name":"kept"}`)
	revoked := ts.createKey(t, token, `{"name":"revoked"}`)
	renewed := ts.createKey(t, token, `{"name":"renewed"}`)
	wantStatus(t, ts.do(t, "DELETE", "/api-keys/"+revoked.key, "", "Authorization", "Bearer "+token), http.StatusNoContent)
	r := ts.do(t, "POST", "/api-keys/"+renewed.key+"/regenerate", "", "Authorization", "Bearer "+token)
	wantStatus(t, r, http.StatusOK)
	oldSecret := renewed
	renewed.secret = r.json(t)["secret"].(string)
	before := ts.do(t, "GET", "/api-keys", "", "Authorization", "Bearer "+token)
	wantStatus(t, before, http.StatusOK)
	ts.close(t)

	ts = startServer(t, dir)
	defer ts.close(t)
	after := ts.do(t, "GET", "/api-keys", "", "Authorization", "Bearer "+token)
	wantStatus(t, after, http.StatusOK) // the old session token is still accepted
	if string(after.body) != string(before.body) {
		t.Fatalf("listing changed across restart:\nbefore %s\nafter  %s", before.body, after.body)
	}
	for _, c := range []struct {
		name string
		key  createdKey
		want int
	}{{"Kept", kept, 200}, {"Revoked", revoked, 401}, {"Renewed", renewed, 200}, {"OldSecret", oldSecret, 401}} {
		if got := ts.validate(t, c.key); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
	if got := ts.do(t, "POST", "/users", `{"email":"alice@example.com","password":"`+password+`"}`).status; got != http.StatusConflict {
		t.Errorf("re-registering after restart: got %d, want 409", got)
	}
	ts.login(t, "alice@example.com", password)
	wantStatus(t, ts.do(t, "GET", "/api-keys/"+kept.key, "", "Authorization", "Bearer "+token), http.StatusOK)
	if !strings.Contains(string(after.body), kept.key) || aliceID == "" {
		t.Fatal("kept key missing after restart")
	}
}

// TestServe_EmbeddedLoopbackOnly: the embedded NATS server has no
// authentication, so serve refuses to listen beyond loopback.
func TestServe_EmbeddedLoopbackOnly(t *testing.T) {
	s := &Server{Config: ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "0.0.0.0:0"}}
	err := s.Open(context.Background())
	s.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("got %v, want a refusal to expose the embedded NATS server", err)
	}
}

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
	var cfg ServeConfig
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
	dir := t.TempDir()
	httpAddr, natsAddr := freeAddr(t), freeAddr(t)
	args := []string{"serve", "--data-dir", dir, "--http-addr", httpAddr, "--nats-listen", natsAddr}
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

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
