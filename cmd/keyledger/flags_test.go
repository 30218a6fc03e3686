package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/app"
)

// TestParseFlags_TrustedProxy: --trusted-proxy is repeatable and takes
// comma lists; KEYLEDGER_TRUSTED_PROXY sets it, the command line replaces
// it; a value that is no address or prefix is a usage error.
func TestParseFlags_TrustedProxy(t *testing.T) {
	parse := func(args ...string) (app.ServeConfig, error) {
		var cfg app.ServeConfig
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		serveFlags(fs, &cfg)
		return cfg, parseFlags(fs, args)
	}
	t.Setenv("KEYLEDGER_TRUSTED_PROXY", "10.0.0.0/8,192.0.2.1")
	cfg, err := parse()
	if err != nil || strings.Join(cfg.Limits.TrustedProxies, ";") != "10.0.0.0/8,192.0.2.1" {
		t.Fatalf("environment only: got %q, %v", cfg.Limits.TrustedProxies, err)
	}
	cfg, err = parse("--trusted-proxy", "172.16.0.0/12", "--trusted-proxy", "::1,127.0.0.1")
	if err != nil || strings.Join(cfg.Limits.TrustedProxies, ";") != "172.16.0.0/12;::1,127.0.0.1" {
		t.Fatalf("command line: got %q, %v, want it to replace the environment", cfg.Limits.TrustedProxies, err)
	}
	if _, err := parse("--trusted-proxy", "proxy.example.com"); !errors.As(err, new(usageError)) {
		t.Fatalf("bad value: got %v, want a usage error", err)
	}
	t.Setenv("KEYLEDGER_TRUSTED_PROXY", "nonsense")
	if _, err := parse(); !errors.As(err, new(usageError)) {
		t.Fatalf("bad environment value: got %v, want a usage error", err)
	}
}

// TestParseFlags_MetricsAddr: /metrics is on a loopback listener of its
// own by default, for serve and validator alike (so a public API does not
// publish them); "api" and "off" pass through.
func TestParseFlags_MetricsAddr(t *testing.T) {
	serve := func(args ...string) string {
		var cfg app.ServeConfig
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		serveFlags(fs, &cfg)
		if err := parseFlags(fs, args); err != nil {
			t.Fatal(err)
		}
		return cfg.MetricsAddr
	}
	node := func(args ...string) string {
		var cfg app.NodeConfig
		fs := flag.NewFlagSet("validator", flag.ContinueOnError)
		nodeFlags(fs, &cfg)
		if err := parseFlags(fs, args); err != nil {
			t.Fatal(err)
		}
		return cfg.MetricsAddr
	}
	for _, tc := range []struct{ got, want string }{
		{serve(), "127.0.0.1:9464"},
		{node(), "127.0.0.1:9465"},
		{serve("--metrics-addr", "api"), app.MetricsOnAPI},
		{node("--metrics-addr", "off"), app.MetricsOff},
		{node("--metrics-addr", "127.0.0.1:0"), "127.0.0.1:0"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
