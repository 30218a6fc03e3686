package apptest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/httpsig"
	"github.com/keyledger/keyledger/internal/ledger"
)

// CreateUser creates a user with Password (admin role if isAdmin) as
// `keyledger admin users create --name root` does, and returns the new
// user's id. The server's read models may not show it yet: see CaughtUp.
func (ts *Server) CreateUser(t *testing.T, email string, isAdmin bool) string {
	t.Helper()
	role := domain.RoleUser
	if isAdmin {
		role = domain.RoleAdmin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := ts.Service().CreateUser(ctx, ledger.CreateUser{Actor: domain.AdminActor("root"), Email: email, Password: Password, Role: role})
	if err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	return u.ID
}

// CaughtUp waits until the server's read models show everything in the
// log, such as what an admin command just wrote straight to NATS.
func (ts *Server) CaughtUp(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Projector().WaitFor(ctx, StreamHead(t, ts)); err != nil {
		t.Fatalf("server catching up with the log: %v", err)
	}
}

// Bearer is the header pair of a session token, for Server.Do.
func Bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// AdminKey is an admin key pair enrolled in a test server.
type AdminKey struct {
	Name    string
	File    string // the PKCS#8 PEM private key, as `keyledger admin keygen` writes it
	Private ed25519.PrivateKey
	Public  domain.PublicKey
	ID      string
}

// NewAdminKey writes a fresh admin key pair to dir/name.key (and .pub),
// not enrolled.
func NewAdminKey(t *testing.T, dir, name string) AdminKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	k := AdminKey{Name: name, File: filepath.Join(dir, name+".key"), Private: priv}
	copy(k.Public[:], pub)
	k.ID = domain.AdminKeyID(k.Public)
	if err := os.WriteFile(k.File, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	text, _ := k.Public.MarshalText()
	if err := os.WriteFile(k.File+".pub", append(text, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return k
}

// RootAdmin returns the admin "root" of the server, enrolled through the
// bootstrap (as serve --bootstrap-admin does) on the first call.
func (ts *Server) RootAdmin(t *testing.T) AdminKey {
	t.Helper()
	ts.rootOnce.Do(func() {
		dir := filepath.Join(ts.Config.DataDir, "admins")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		k := NewAdminKey(t, dir, "root")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ok, err := ts.Service().BootstrapAdmin(ctx, ledger.BootstrapAdmin{Name: "root", Key: k.Public})
		if err != nil || !ok {
			t.Fatalf("bootstrap admin root: got %v, %v, want true, nil", ok, err)
		}
		ts.root = k
	})
	if ts.root.File == "" {
		t.Fatal("no root admin")
	}
	return ts.root
}

// AdminSigned returns the headers, for Server.Do, of the request method
// path body signed with k as an admin request (tag keyledger-admin-v1).
func (ts *Server) AdminSigned(t *testing.T, k AdminKey, method, path, body string) []string {
	t.Helper()
	req, err := http.NewRequest(method, ts.Base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := httpsig.Sign(req, []byte(body), k.Private, httpsig.SignOptions{KeyID: k.ID, Tag: httpsig.AdminTag}); err != nil {
		t.Fatal(err)
	}
	h := []string{"Signature-Input", req.Header.Get("Signature-Input"), "Signature", req.Header.Get("Signature")}
	if d := req.Header.Get("Content-Digest"); d != "" {
		h = append(h, "Content-Digest", d)
	}
	return h
}

// AdminDo sends the request signed with k.
func (ts *Server) AdminDo(t *testing.T, k AdminKey, method, path, body string) Response {
	t.Helper()
	return ts.Do(t, method, path, body, ts.AdminSigned(t, k, method, path, body)...)
}
