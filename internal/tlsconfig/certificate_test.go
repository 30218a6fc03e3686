package tlsconfig_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/pki"
	"github.com/keyledger/keyledger/internal/tlsconfig"
)

// TestCertificate_Reload rotates the certificate under a running server: a
// request in flight on the old certificate completes, and new connections
// get the new one.
func TestCertificate_Reload(t *testing.T) {
	t.Parallel()
	old := newPair(t, pki.ECDSA)
	cert, err := tlsconfig.Load(old.certFile, old.keyFile, tlsconfig.WithPollInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer cert.Stop()
	cfg, err := tlsconfig.Server(cert)
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	addr := serve(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			once.Do(func() { close(started) })
			<-release
		}
		io.WriteString(w, "ok")
	}))
	url := "https://" + addr

	type result struct {
		body string
		err  error
		leaf []byte
	}
	inFlight := make(chan result, 1)
	go func() {
		body, leaf, err := get(trusting(old.leaf), url+"/block")
		r := result{body: body, err: err}
		if leaf != nil {
			r.leaf = leaf.Raw
		}
		inFlight <- r
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking request did not arrive")
	}

	rotated := writeSelfSigned(t, old.certFile, old.keyFile, pki.RSA, "localhost")
	if err := cert.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := cert.Leaf().SerialNumber; got.Cmp(rotated.leaf.SerialNumber) != 0 {
		t.Errorf("Leaf serial: got %v, want the new %v", got, rotated.leaf.SerialNumber)
	}
	if got, want := cert.Fingerprint(), pki.Fingerprint(rotated.leaf.Raw); got != want {
		t.Errorf("Fingerprint: got %s, want %s", got, want)
	}
	body, leaf, err := get(trusting(rotated.leaf), url+"/")
	if err != nil || body != "ok" {
		t.Fatalf("new connection: got %q, %v, want ok", body, err)
	}
	if !bytes.Equal(leaf.Raw, rotated.leaf.Raw) {
		t.Error("a new connection did not get the new certificate")
	}
	if _, _, err := get(trusting(old.leaf), url+"/"); err == nil {
		t.Error("a new connection still got the old certificate")
	}

	close(release)
	r := <-inFlight
	if r.err != nil || r.body != "ok" {
		t.Fatalf("request in flight during the reload: got %q, %v, want ok", r.body, r.err)
	}
	if !bytes.Equal(r.leaf, old.leaf.Raw) {
		t.Error("the request in flight did not keep its connection's certificate")
	}
}

// TestCertificate_ReloadFailure keeps the current certificate when the new
// files are unusable, and recovers once they are fixed.
func TestCertificate_ReloadFailure(t *testing.T) {
	t.Parallel()
	p := newPair(t, pki.ECDSA)
	cert, err := tlsconfig.Load(p.certFile, p.keyFile, tlsconfig.WithPollInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer cert.Stop()
	cfg, err := tlsconfig.Server(cert)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + serve(t, cfg, okHandler) + "/"
	other := newPair(t, pki.ECDSA)

	breakages := []struct {
		name  string
		apply func(t *testing.T)
		want  string
	}{
		{"MismatchedKey", func(t *testing.T) { copyFile(t, other.keyFile, p.keyFile) }, "private key does not match"},
		{"GarbageCertificate", func(t *testing.T) { writeFile(t, p.certFile, "not a certificate") }, "failed to find any PEM data"},
		{"MissingKey", func(t *testing.T) { os.Remove(p.keyFile) }, "no such file"},
	}
	for _, b := range breakages {
		t.Run(b.name, func(t *testing.T) {
			b.apply(t)
			err := cert.Reload()
			if err == nil || !strings.Contains(err.Error(), b.want) {
				t.Fatalf("Reload: got %v, want an error containing %q", err, b.want)
			}
			if !bytes.Equal(cert.Leaf().Raw, p.leaf.Raw) {
				t.Error("the certificate changed after a failed reload")
			}
			if body, leaf, err := get(trusting(p.leaf), url); err != nil || body != "ok" || !bytes.Equal(leaf.Raw, p.leaf.Raw) {
				t.Errorf("after a failed reload: got %q, %v, want ok with the old certificate", body, err)
			}
			// Restore.
			p = writeSelfSigned(t, p.certFile, p.keyFile, pki.ECDSA, "localhost")
			if err := cert.Reload(); err != nil {
				t.Fatalf("Reload after the fix: %v", err)
			}
		})
	}
}

// TestCertificate_Poll: the poller notices changed files by itself, reports
// failures, and keeps serving meanwhile.
func TestCertificate_Poll(t *testing.T) {
	t.Parallel()
	p := newPair(t, pki.ECDSA)
	var (
		mu      sync.Mutex
		reloads []error
	)
	var logs bytes.Buffer
	var logsMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logsMu, &logs}, nil))
	cert, err := tlsconfig.Load(p.certFile, p.keyFile, tlsconfig.WithPollInterval(10*time.Millisecond),
		tlsconfig.WithLogger(logger),
		tlsconfig.WithOnReload(func(err error) {
			mu.Lock()
			defer mu.Unlock()
			reloads = append(reloads, err)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer cert.Stop()
	cfg, err := tlsconfig.Server(cert)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + serve(t, cfg, okHandler) + "/"

	// A new pair (RSA, so the files' sizes change too).
	rotated := writeSelfSigned(t, p.certFile, p.keyFile, pki.RSA, "localhost")
	eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		// The poller may first see the new certificate with the old key.
		return len(reloads) > 0 && reloads[len(reloads)-1] == nil
	}, "the poller reloads successfully")
	if !bytes.Equal(cert.Leaf().Raw, rotated.leaf.Raw) {
		t.Fatal("the poller did not load the new certificate")
	}
	if body, leaf, err := get(trusting(rotated.leaf), url); err != nil || body != "ok" || !bytes.Equal(leaf.Raw, rotated.leaf.Raw) {
		t.Fatalf("after the poll: got %q, %v, want ok with the new certificate", body, err)
	}

	// A broken file: reported, and the current certificate stays.
	writeFile(t, p.certFile, "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
	eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return reloads[len(reloads)-1] != nil
	}, "the poller reports the broken file")
	if !bytes.Equal(cert.Leaf().Raw, rotated.leaf.Raw) {
		t.Error("a failed poll reload replaced the certificate")
	}
	if body, _, err := get(trusting(rotated.leaf), url); err != nil || body != "ok" {
		t.Errorf("after a failed poll reload: got %q, %v, want ok", body, err)
	}
	logsMu.Lock()
	text := logs.String()
	logsMu.Unlock()
	if !strings.Contains(text, "TLS certificate reloaded") || !strings.Contains(text, "TLS certificate reload failed") {
		t.Errorf("logs: want a reload and a failure in\n%s", text)
	}

	// Stop ends the polling; the certificate stays usable.
	cert.Stop()
	cert.Stop()
	mu.Lock()
	n := len(reloads)
	mu.Unlock()
	writeSelfSigned(t, p.certFile, p.keyFile, pki.Ed25519, "localhost")
	if body, _, err := get(trusting(rotated.leaf), url); err != nil || body != "ok" {
		t.Errorf("after Stop: got %q, %v, want ok", body, err)
	}
	mu.Lock()
	if len(reloads) != n {
		t.Errorf("reloads after Stop: got %d, want %d", len(reloads), n)
	}
	mu.Unlock()
}

func TestLoad_Errors(t *testing.T) {
	t.Parallel()
	p := newPair(t, pki.ECDSA)
	other := newPair(t, pki.ECDSA)
	missing := filepath.Join(t.TempDir(), "missing.crt")
	cases := []struct {
		name              string
		certFile, keyFile string
		opts              []tlsconfig.CertificateOption
		want              string
	}{
		{"NoFiles", "", "", nil, "need both"},
		{"MissingCert", missing, p.keyFile, nil, "no such file"},
		{"Mismatched", p.certFile, other.keyFile, nil, "does not match"},
		{"KeyAsCert", p.keyFile, p.keyFile, nil, "load TLS certificate"},
		{"ZeroInterval", p.certFile, p.keyFile, []tlsconfig.CertificateOption{tlsconfig.WithPollInterval(0)}, "poll interval"},
		{"NilLogger", p.certFile, p.keyFile, []tlsconfig.CertificateOption{tlsconfig.WithLogger(nil)}, "nil logger"},
		{"NilHook", p.certFile, p.keyFile, []tlsconfig.CertificateOption{tlsconfig.WithOnReload(nil)}, "nil reload callback"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cert, err := tlsconfig.Load(c.certFile, c.keyFile, c.opts...)
			if err == nil {
				cert.Stop()
				t.Fatal("got nil, want an error")
			}
			if !strings.HasPrefix(err.Error(), "load TLS certificate") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error: got %q, want \"load TLS certificate...%s...\"", err, c.want)
			}
		})
	}
}

func TestSelfSigned(t *testing.T) {
	t.Parallel()
	cert, err := tlsconfig.SelfSigned("dev.example", "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	defer cert.Stop()
	leaf := cert.Leaf()
	if leaf.Subject.CommonName != "dev.example" {
		t.Errorf("CN: got %q, want dev.example", leaf.Subject.CommonName)
	}
	if got, want := strings.Join(leaf.DNSNames, ","), "dev.example,localhost"; got != want {
		t.Errorf("DNS names: got %s, want %s", got, want)
	}
	if got, want := len(leaf.IPAddresses), 3; got != want {
		t.Errorf("IP addresses: got %v, want 127.0.0.1, ::1, 192.0.2.10", leaf.IPAddresses)
	}
	if err := cert.Reload(); err != nil {
		t.Errorf("Reload: got %v, want nil (nothing to re-read)", err)
	}

	// The fingerprint is the one openssl computes from the PEM.
	file := filepath.Join(t.TempDir(), "dev.crt")
	writeFile(t, file, string(cert.PEM()))
	out, err := runTool(t, "openssl", "x509", "-in", file, "-noout", "-fingerprint", "-sha256")
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	if _, want, _ := strings.Cut(strings.TrimSpace(out), "="); cert.Fingerprint() != want {
		t.Errorf("Fingerprint: got %s, openssl says %s", cert.Fingerprint(), want)
	}

	cfg, err := tlsconfig.Server(cert)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + serve(t, cfg, okHandler) + "/"
	if body, _, err := get(trusting(leaf), url); err != nil || body != "ok" {
		t.Errorf("got %q, %v, want ok", body, err)
	}
	out, err = runTool(t, "curl", "-sS", "--fail", "--max-time", "10", "--cacert", file, url)
	if err != nil || out != "ok" {
		t.Errorf("curl: got %q, %v, want ok", out, err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := pki.WriteFile(path, []byte(content), 0o600, true); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

// eventually polls cond every few milliseconds until it holds, and fails
// the test with msg if it does not within timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %s", timeout, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
