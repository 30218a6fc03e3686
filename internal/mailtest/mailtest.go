// Package mailtest runs a real SMTP server for tests: mailpit
// (github.com/axllent/mailpit), listening on loopback, whose HTTP API shows
// what it received.
//
// The mailpit binary is taken from $PATH or $(go env GOPATH)/bin (.ci/run
// installs it there), or else built once per test binary with go install.
// Without it a test fails under CI and is skipped elsewhere.
package mailtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/natstest"
)

// Version is the mailpit release the tests run.
const Version = "v1.33.1"

// Module is mailpit's module path, as go install takes it.
const Module = "github.com/axllent/mailpit"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary returns the path of mailpit, building it if needed.
func binary() (string, error) {
	binOnce.Do(func() {
		if p, err := exec.LookPath("mailpit"); err == nil {
			binPath = p
			return
		}
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
				if p := filepath.Join(dir, "bin", "mailpit"); isExecutable(p) {
					binPath = p
					return
				}
			}
		}
		dir, err := os.MkdirTemp("", "mailpit-bin-")
		if err != nil {
			binErr = err
			return
		}
		cmd := exec.Command("go", "install", Module+"@"+Version)
		cmd.Dir = dir // outside any module: go install pkg@version ignores go.mod there anyway
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go install %s@%s: %v\n%s", Module, Version, err, out)
			return
		}
		binPath = filepath.Join(dir, "mailpit")
	})
	return binPath, binErr
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Server is a running mailpit.
type Server struct {
	// SMTPAddr is the SMTP listener, host:port on 127.0.0.1.
	SMTPAddr string
	// API is the base URL of its HTTP API.
	API string
}

// Options are mailpit's TLS settings.
type Options struct {
	// CertFile and KeyFile, if set, make mailpit offer STARTTLS with them.
	CertFile, KeyFile string
	// RequireSTARTTLS refuses mail before STARTTLS.
	RequireSTARTTLS bool
	// ImplicitTLS makes the SMTP listener speak TLS from the first byte
	// (smtps://), with CertFile and KeyFile.
	ImplicitTLS bool
}

// Start runs mailpit until the test ends. It fails the test under CI, and
// skips it elsewhere, when mailpit cannot be had.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := binary()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mailpit is required under CI: %v", err)
		}
		t.Skipf("mailpit not available: %v", err)
	}
	var lastErr error
	for range 3 { // a port picked free may be taken before mailpit binds it
		s, err := start(t, bin, o)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("start mailpit: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string, o Options) (*Server, error) {
	smtpAddr, apiAddr := freePort(t), freePort(t)
	args := []string{"--smtp", smtpAddr, "--listen", apiAddr, "--database", filepath.Join(t.TempDir(), "mailpit.db"),
		"--smtp-disable-rdns", "--disable-version-check", "--quiet"}
	if o.CertFile != "" {
		args = append(args, "--smtp-tls-cert", o.CertFile, "--smtp-tls-key", o.KeyFile)
	}
	if o.RequireSTARTTLS {
		args = append(args, "--smtp-require-starttls")
	}
	if o.ImplicitTLS {
		args = append(args, "--smtp-require-tls")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	var logs strings.Builder
	var mu sync.Mutex
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &logs}, lockedWriter{&mu, &logs}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cancel()
		<-exited
	}
	s := &Server{SMTPAddr: smtpAddr, API: "http://" + apiAddr}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			cancel()
			mu.Lock()
			defer mu.Unlock()
			return nil, fmt.Errorf("mailpit exited: %v\n%s", err, logs.String())
		default:
		}
		if s.ready() {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("mailpit not ready within 60s")
		}
		time.Sleep(20 * time.Millisecond) // polling a child process: nothing to wait on
	}
	t.Cleanup(stop)
	return s, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// ready reports whether both of mailpit's listeners answer.
func (s *Server) ready() bool {
	c, err := net.DialTimeout("tcp", s.SMTPAddr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	resp, err := http.Get(s.API + "/api/v1/messages")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Message is a message mailpit received, as its API shows it.
type Message struct {
	ID      string
	From    string
	To      []string
	Subject string
	Text    string // the plain-text body
}

type address struct {
	Address string `json:"Address"`
}

// Messages returns every message mailpit holds, newest first.
func (s *Server) Messages(t testing.TB) []Message {
	t.Helper()
	var list struct {
		Messages []struct {
			ID      string    `json:"ID"`
			From    address   `json:"From"`
			To      []address `json:"To"`
			Subject string    `json:"Subject"`
		} `json:"messages"`
	}
	s.get(t, "/api/v1/messages?limit=1000", &list)
	out := make([]Message, len(list.Messages))
	for i, m := range list.Messages {
		out[i] = Message{ID: m.ID, From: m.From.Address, Subject: m.Subject}
		for _, a := range m.To {
			out[i].To = append(out[i].To, a.Address)
		}
		var full struct {
			Text string `json:"Text"`
		}
		s.get(t, "/api/v1/message/"+url.PathEscape(m.ID), &full)
		out[i].Text = full.Text
	}
	return out
}

// To returns the messages to one address, newest first.
func (s *Server) To(t testing.TB, addr string) []Message {
	t.Helper()
	var out []Message
	for _, m := range s.Messages(t) {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Await waits (generously) until n messages to addr have arrived and
// returns them, newest first.
func (s *Server) Await(t testing.TB, addr string, n int) []Message {
	t.Helper()
	var got []Message
	natstest.Eventually(t, 30*time.Second, func() bool {
		got = s.To(t, addr)
		return len(got) >= n
	}, fmt.Sprintf("%d message(s) to %s", n, addr))
	return got
}

func (s *Server) get(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(s.API + path)
	if err != nil {
		t.Fatalf("mailpit API %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit API %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("mailpit API %s: %v", path, err)
	}
}
