// Package oidctest runs a real OpenID provider for tests: the example
// server of the OpenID-certified github.com/zitadel/oidc/v3 library,
// built from the module proxy (go install) the first time and kept in the
// user's cache directory, started as its own process on loopback with the
// users and the redirect URI a test gives. It also drives the provider's
// login form the way a browser would.
package oidctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Module is the provider's module and version, as go install takes it.
const Module = "github.com/zitadel/oidc/v3/example/server@v3.52.0"

// The example's confidential web client: id "web", secret "secret".
const (
	ClientID     = "web"
	ClientSecret = "secret"
)

// User is a user of the provider.
type User struct {
	ID            string
	Username      string
	Password      string
	Email         string
	EmailVerified bool
}

// Provider is a running provider.
type Provider struct {
	// Issuer is the provider's issuer URL (http://localhost:PORT/).
	Issuer string
	cmd    *exec.Cmd
	logs   *lockedBuffer
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary returns the provider's executable, building it once per process
// (and once per machine: the cache directory keeps it).
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binary, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("build the OpenID provider %s: %v", Module, buildErr)
	}
	return binary
}

func build() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "keyledger-test", "zitadel-oidc-example-server-v3.52.0")
	bin := filepath.Join(dir, "server")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", Module)
	cmd.Dir = tmp // outside any module: the version given is the one built
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install: %v\n%s", err, out)
	}
	// A rename is atomic: concurrent test processes each build, and the
	// last one's binary stays.
	if err := os.Rename(filepath.Join(tmp, "server"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// Start runs the provider with the users given and one redirect URI for
// its client "web", and waits until it serves its discovery document.
// It stops with the test.
func Start(t testing.TB, redirectURI string, users ...User) *Provider {
	t.Helper()
	bin := Binary(t)
	file := filepath.Join(t.TempDir(), "users.json")
	m := map[string]map[string]any{}
	for _, u := range users {
		m[u.ID] = map[string]any{"ID": u.ID, "Username": u.Username, "Password": u.Password, "FirstName": "Test",
			"LastName": u.ID, "Email": u.Email, "EmailVerified": u.EmailVerified, "PreferredLanguage": "en"}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for range 5 { // a port free a moment ago may be taken by the time the provider binds it
		p, err := start(t, bin, file, redirectURI)
		if err == nil {
			return p
		}
		lastErr = err
	}
	t.Fatalf("start the OpenID provider: %v", lastErr)
	return nil
}

func start(t testing.TB, bin, usersFile, redirectURI string) (*Provider, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	logs := &lockedBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+port, "USERS_FILE="+usersFile, "REDIRECT_URI="+redirectURI)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p := &Provider{Issuer: "http://localhost:" + port + "/", cmd: cmd, logs: logs}
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("provider exited: %v\n%s", err, logs.String())
		default:
		}
		resp, err := client.Get(p.Issuer + ".well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("provider not serving after 20s: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a process we do not control
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("OpenID provider's log:\n%s", logs.String())
		}
	})
	return p, nil
}

// Authorize follows a login at the provider as a browser would: from the
// authorization URL keyledger redirected to, through the provider's login
// form with the user's username and password, to the redirect back to
// keyledger, which it returns without following (its query holds the
// code and the state).
func (p *Provider) Authorize(t testing.TB, authURL, username, password string) *url.URL {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := url.Parse(p.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	var back *url.URL
	errBack := errors.New("back at the client")
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host != issuer.Host {
				back = req.URL
				return errBack
			}
			return nil
		}}
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatalf("GET the authorization URL: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/login/username") {
		t.Fatalf("authorization URL: got %d at %s, want the login form", resp.StatusCode, resp.Request.URL.Path)
	}
	id := resp.Request.URL.Query().Get("authRequestID")
	form := url.Values{"id": {id}, "username": {username}, "password": {password}}
	resp, err = client.PostForm(p.Issuer+"login/username", form)
	if back != nil {
		return back
	}
	if err != nil {
		t.Fatalf("POST the login form: %v", err)
	}
	resp.Body.Close()
	t.Fatalf("login form: got %d at %s, want a redirect back to the client", resp.StatusCode, resp.Request.URL)
	return nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
