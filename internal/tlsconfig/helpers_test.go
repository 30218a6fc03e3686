package tlsconfig_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/pki"
)

// needTool skips the test when an independent peer (openssl, curl) is
// missing; under CI (env CI set) it fails instead.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required under CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
}

// runTool runs a command with empty stdin and returns its combined output.
func runTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	needTool(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// pair is a certificate and key written to files.
type pair struct {
	certFile, keyFile string
	leaf              *x509.Certificate
}

// writeSelfSigned makes a self-signed certificate for 127.0.0.1 and
// localhost with pki and writes it and its key over certFile and keyFile.
func writeSelfSigned(t *testing.T, certFile, keyFile string, typ pki.KeyType, cn string) pair {
	t.Helper()
	key, err := pki.GenerateKey(typ, 0)
	if err != nil {
		t.Fatal(err)
	}
	der, err := pki.NewSelfSigned(key, pkix.Name{CommonName: cn}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(keyFile, keyPEM, 0o600, true); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(certFile, pki.EncodeCertificate(der), 0o644, true); err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pair{certFile: certFile, keyFile: keyFile, leaf: leaf}
}

// newPair writes a self-signed pair into a new temporary directory.
func newPair(t *testing.T, typ pki.KeyType) pair {
	t.Helper()
	dir := t.TempDir()
	return writeSelfSigned(t, filepath.Join(dir, "certificate.crt"), filepath.Join(dir, "private.key"), typ, "localhost")
}

// serve runs an HTTPS server with cfg on a loopback port until the test
// ends, and returns its address.
func serve(t *testing.T, cfg *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Handshake failures are expected here; keep them out of the test log.
	srv := &http.Server{Handler: h, TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// okHandler answers "ok".
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })

// get makes one request over a new connection configured by cfg, and
// returns the body and the server's leaf certificate.
func get(cfg *tls.Config, url string) (string, *x509.Certificate, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), nil, fmt.Errorf("status %s", resp.Status)
	}
	return string(b), resp.TLS.PeerCertificates[0], nil
}

// trusting returns a client configuration trusting only certs.
func trusting(certs ...*x509.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &tls.Config{RootCAs: pool}
}

// testCA is a tiny certificate authority for client certificates.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	file string // the CA certificate in PEM
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(file, pki.EncodeCertificate(der), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

// issueClient signs a client certificate for cn and writes it and its key
// to files.
func (ca *testCA) issueClient(t *testing.T, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := pki.GenerateKey(pki.ECDSA, 0)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	keyPEM, err := pki.EncodePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(keyFile, keyPEM, 0o600, false); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(certFile, pki.EncodeCertificate(der), 0o644, false); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
