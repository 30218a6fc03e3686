package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// testCA issues certificates for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
	dir  string
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyledger test CA"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	ca := &testCA{cert: cert, key: key, dir: dir, file: filepath.Join(dir, "ca.pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue writes a certificate for 127.0.0.1 with the given usage and
// returns its cert and key files.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(ca.dir, name+".crt"), filepath.Join(ca.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLS_Everywhere runs serve over HTTPS with its embedded NATS server
// demanding client certificates, and a validation node that reaches NATS
// over mutual TLS and serves HTTPS itself. A NATS client without a
// certificate is refused; a revocation through the ledger reaches the node.
func TestTLS_Everywhere(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	serverCert, serverKey := ca.issue(t, "server", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, "validator", x509.ExtKeyUsageClientAuth)

	s := &app.Server{
		Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
			Argon2:  auth.Argon2Params{Memory: 64, Time: 1, Threads: 1},
			HTTPS:   app.HTTPSConfig{CertFile: serverCert, KeyFile: serverKey},
			NATSTLS: app.EmbeddedTLSConfig{CertFile: serverCert, KeyFile: serverKey, ClientCA: ca.file}},
		Logger: slog.New(slog.DiscardHandler),
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("serve: %v", err)
	}
	defer s.Close(context.Background())
	natstest.Eventually(t, 10*time.Second, s.Ready, "serve ready")

	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ts := &apptest.Server{Server: s, Base: "https://" + s.HTTPAddr(), Logs: &apptest.SyncBuffer{}}

	t.Run("NATSRefusesClientsWithoutCertificate", func(t *testing.T) {
		tc := &tls.Config{RootCAs: pool}
		if nc, err := nats.Connect(s.NATSURL(), nats.Secure(tc), nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Fatal("got a NATS connection without a client certificate, want a refusal")
		}
		if nc, err := nats.Connect(strings.Replace(s.NATSURL(), "tls://", "nats://", 1), nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Fatal("got a plain NATS connection, want a refusal")
		}
	})

	node := &app.Node{Config: app.NodeConfig{NATSURL: s.NATSURL(), HTTPAddr: "127.0.0.1:0",
		HTTPS:      app.HTTPSConfig{CertFile: serverCert, KeyFile: serverKey},
		NATSClient: app.NATSClientConfig{CA: ca.file, Cert: clientCert, Key: clientKey, Creds: s.CredsFile(natsauth.Validator)}}}
	if err := node.Open(context.Background()); err != nil {
		t.Fatalf("validator over mutual TLS: %v", err)
	}
	defer node.Close(context.Background())

	// The walk-through, over HTTPS.
	token := httpsLogin(t, client, ts)
	req, _ := http.NewRequest("POST", ts.Base+"/api-keys", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	key := apptest.CreatedKey{Key: field(t, body, "api_key"), Secret: field(t, body, "secret")}

	nodeStatus := func() int {
		req, _ := http.NewRequest("GET", "https://"+node.HTTPAddr()+"/validate", nil)
		req.Header.Set("Authorization", "ApiKey "+apptest.Base64(key.Key+":"+key.Secret))
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return nodeStatus() == http.StatusOK }, "node accepts the key over HTTPS")
	req, _ = http.NewRequest("DELETE", ts.Base+"/api-keys/"+key.Key, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := client.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke over HTTPS: %v", err)
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return nodeStatus() == http.StatusUnauthorized }, "node rejects the revoked key")

	t.Run("PlainHTTPRefused", func(t *testing.T) {
		resp, err := http.Get("http://" + s.HTTPAddr() + "/healthz")
		if err == nil && resp.StatusCode == http.StatusOK {
			t.Fatal("got a plain-HTTP answer from an HTTPS server")
		}
	})
}

func httpsLogin(t *testing.T, client *http.Client, ts *apptest.Server) string {
	t.Helper()
	for _, path := range []string{"/users", "/sessions"} {
		resp, err := client.Post(ts.Base+path, "application/json",
			strings.NewReader(`{"email":"tls@example.com","password":"`+apptest.Password+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path == "/sessions" {
			return field(t, body, "token")
		}
	}
	return ""
}

// field extracts a string field from a JSON object.
func field(t *testing.T, body []byte, name string) string {
	t.Helper()
	r := apptest.Response{Body: body}
	v, _ := r.JSON(t)[name].(string)
	if v == "" {
		t.Fatalf("no %q in %s", name, body)
	}
	return v
}
