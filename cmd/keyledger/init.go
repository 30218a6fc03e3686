package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/natsauth"
)

// initConfig is the configuration of `keyledger init`.
type initConfig struct {
	Out    string
	Stream string
	Routes string
	Force  bool
}

func (c *initConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Out, "out", "secrets", "directory to write the cluster's NATS keys, server config includes and role credentials into")
	fs.StringVar(&c.Stream, "stream", eventstore.DefaultStream, "JetStream stream name the role permissions are for")
	fs.StringVar(&c.Routes, "routes", "", "comma-separated host:port of every NATS node's cluster listener: writes nats/cluster.conf with authenticated routes to them")
	fs.BoolVar(&c.Force, "force", false, "replace output files that differ from what init would write (after removing keys to rotate them)")
}

// routePasswordFile is the file under <out>/keys of the cluster routes'
// password, from which cluster.conf is written.
const routePasswordFile = "route-password"

// runInit writes what a NATS cluster running keyledger needs, into
// cfg.Out:
//
//	keys/               the operator's and accounts' nkey seeds, every role's
//	                    credentials and the route password: mounted by init only
//	nats/auth.conf      operator, system account and account JWTs (resolver)
//	nats/cluster.conf   route user and password, and routes carrying them
//	<role>/<role>.creds one directory per role, to mount in its service only
//
// It reuses what keys/ already holds, so that running it again writes the
// same files; a file that would change is refused without --force.
func runInit(_ context.Context, args []string, stdout, _ io.Writer) error {
	var cfg initConfig
	fs := newFlagSet("init")
	cfg.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Out == "" {
		return usageError{errors.New("--out: empty")}
	}
	var routes []string
	for _, r := range strings.Split(cfg.Routes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			routes = append(routes, r)
		}
	}
	if err := os.MkdirAll(cfg.Out, 0o700); err != nil {
		return err
	}
	keys := filepath.Join(cfg.Out, "keys")
	a, err := natsauth.Open(keys, cfg.Stream)
	if err != nil {
		return err
	}
	w := &initWriter{force: cfg.Force, out: stdout}

	// The resolver config holds JWTs signed at every run: one of the same
	// keys is kept as it is.
	if err := w.write(filepath.Join(cfg.Out, "nats", "auth.conf"), a.ServerConfig(), a.IsServerConfig); err != nil {
		return err
	}
	if len(routes) > 0 {
		password, err := loadOrCreateRoutePassword(filepath.Join(keys, routePasswordFile))
		if err != nil {
			return err
		}
		conf, err := natsauth.RouteConfig(password, routes)
		if err != nil {
			return usageError{fmt.Errorf("--routes: %w", err)}
		}
		if err := w.write(filepath.Join(cfg.Out, "nats", "cluster.conf"), conf, nil); err != nil {
			return err
		}
	}
	for _, r := range natsauth.Roles {
		creds, err := os.ReadFile(a.CredsFile(r))
		if err != nil {
			return err
		}
		if err := w.write(filepath.Join(cfg.Out, string(r), string(r)+".creds"), creds, nil); err != nil {
			return err
		}
	}
	return nil
}

// initWriter writes init's output files.
type initWriter struct {
	force bool
	out   io.Writer
}

// write writes data to path (mode 0600, its directory 0700) unless the
// file holds it already, or same (if set) accepts what it holds. A file
// that differs is replaced only with --force.
func (w *initWriter) write(path string, data []byte, same func([]byte) bool) error {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && (bytes.Equal(old, data) || (same != nil && same(old))):
		fmt.Fprintf(w.out, "kept    %s\n", path)
		return nil
	case err == nil && !w.force:
		return fmt.Errorf("%s exists and differs from what init writes now: --force replaces it", path)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	// A new file beside it, then renamed over it: a reader never sees
	// half a file, and the mode is 0600 whatever the old one's was.
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	fmt.Fprintf(w.out, "wrote   %s\n", path)
	return nil
}

// loadOrCreateRoutePassword reads the route password, or makes a random
// one (256 bits, hex: nothing a config file or URL must quote).
func loadOrCreateRoutePassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		p := strings.TrimSpace(string(b))
		if len(p) < 32 {
			return "", fmt.Errorf("%s: too short a password", path)
		}
		return p, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	p := hex.EncodeToString(buf)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(p + "\n"); err != nil {
		f.Close()
		return "", err
	}
	return p, f.Close()
}
