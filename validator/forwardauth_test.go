package validator_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/validator"
)

// TestForwardAuth_Nginx runs a real nginx with the auth_request
// configuration of testdata/forwardauth/nginx.conf.tmpl.
func TestForwardAuth_Nginx(t *testing.T) {
	t.Parallel()
	bin := nginxBinary(t)
	env := startForwardAuthEnv(t)
	base := startNginx(t, bin, nginxConf{Node: env.node.HTTPAddr(), App: env.app.Listener.Addr().String()})

	// The /admin/ location requires the scope admin:write: a valid key
	// without it is refused with 403 before the app, one with it (here
	// through admin:*) passes, and a client cannot lift the requirement.
	t.Run("RequiredScopes", func(t *testing.T) {
		admin := env.ledger.CreateKey(t, env.token, `{"scopes":["admin:*"]}`)
		natstest.Eventually(t, 10*time.Second, func() bool {
			return apptest.Send(t, "GET", base+"/admin/users", "", apptest.APIKeyAuth(admin)...).Status == http.StatusOK
		}, "the admin key validates through nginx")
		calls := env.app.calls.Load()
		for name, h := range map[string][]string{
			"Unscoped":           apptest.APIKeyAuth(env.key),
			"ClientClearsScopes": append(apptest.APIKeyAuth(env.key), validator.HeaderRequiredScopes, " "),
			"ClientClaimsScopes": append(apptest.APIKeyAuth(env.key), validator.HeaderScopes, "admin:write"),
		} {
			if r := apptest.Send(t, "GET", base+"/admin/users", "", h...); r.Status != http.StatusForbidden {
				t.Errorf("%s: got %d %s, want 403", name, r.Status, r.Body)
			}
		}
		if got := env.app.calls.Load(); got != calls {
			t.Errorf("the app was called %d times for refused requests, want 0", got-calls)
		}
		if r := apptest.Send(t, "GET", base+"/hello", "", apptest.APIKeyAuth(env.key)...); r.Status != http.StatusOK {
			t.Errorf("no scope required at /: got %d, want 200", r.Status)
		}
		if r := apptest.Send(t, "GET", base+"/hello", "", append(apptest.APIKeyAuth(env.key), validator.HeaderRequiredScopes, "x:y")...); r.Status != http.StatusOK {
			t.Errorf("a client's own required scopes reach the node: got %d, want 200", r.Status)
		}
	})

	// A key with a rate limit: nginx passes the node's RateLimit headers
	// on with the app's answer, and its 429 with Retry-After and the code,
	// without calling the app.
	t.Run("KeyLimits", func(t *testing.T) {
		limited := env.ledger.CreateKey(t, env.token, `{"rate_limit":{"limit":2,"window":"1h"},"credits":{"remaining":10}}`)
		var first apptest.Response
		natstest.Eventually(t, 10*time.Second, func() bool {
			first = apptest.Send(t, "GET", base+"/hello", "", apptest.APIKeyAuth(limited)...)
			return first.Status == http.StatusOK
		}, "the limited key validates through nginx")
		if got := first.Header.Get("RateLimit-Policy"); got != `"key";q=2;w=3600` {
			t.Errorf("first: RateLimit-Policy %q, want the key's policy", got)
		}
		if got := first.Header.Get("X-Keyledger-Credits-Remaining"); got != "9" {
			t.Errorf("first: X-Keyledger-Credits-Remaining %q, want 9", got)
		}
		apptest.WantStatus(t, apptest.Send(t, "GET", base+"/hello", "", apptest.APIKeyAuth(limited)...), http.StatusOK)
		calls := env.app.calls.Load()
		r := apptest.Send(t, "GET", base+"/hello", "", apptest.APIKeyAuth(limited)...)
		if r.Status != http.StatusTooManyRequests || r.ErrorCode(t) != "rate_limited" || r.Header.Get("Retry-After") == "" ||
			!strings.HasPrefix(r.Header.Get("RateLimit"), `"key";r=0;`) {
			t.Errorf("third: got %d %q, Retry-After %q, RateLimit %q; want 429 rate_limited with both headers",
				r.Status, r.Body, r.Header.Get("Retry-After"), r.Header.Get("RateLimit"))
		}
		if got := env.app.calls.Load(); got != calls {
			t.Errorf("the app was called %d times for a refused request, want 0", got-calls)
		}
		// A key without limits gets no limit headers.
		if r := apptest.Send(t, "GET", base+"/hello", "", apptest.APIKeyAuth(env.key)...); r.Header.Get("RateLimit") != "" {
			t.Errorf("a key without limits got RateLimit %q, want none", r.Header.Get("RateLimit"))
		}
	})

	testForwardAuth(t, env, base, func(t *testing.T, r apptest.Response) {
		// nginx answers its own 401 page, with the node's WWW-Authenticate.
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("got Content-Type %q, want nginx's own text/html 401 page", ct)
		}
	})

	// The configuration maps the node being unreachable to the same 503.
	t.Run("NodeDown", func(t *testing.T) {
		if err := env.closeNode(); err != nil {
			t.Fatalf("close node: %v", err)
		}
		calls := env.app.calls.Load()
		wantUnavailable(t, apptest.Send(t, "GET", base+"/hello", "", apptest.APIKeyAuth(env.key)...))
		if got := env.app.calls.Load(); got != calls {
			t.Fatalf("the app was called %d times with the node down, want 0", got-calls)
		}
	})
}

// TestForwardAuth_TraefikSemantics checks the validation node against
// Traefik's documented ForwardAuth contract. Traefik is not packaged in
// Debian, so traefikForwardAuth below emulates that contract; this is not a
// test of Traefik itself, and a change in Traefik would not show here.
func TestForwardAuth_TraefikSemantics(t *testing.T) {
	t.Parallel()
	env := startForwardAuthEnv(t)
	appURL, err := url.Parse(env.app.URL)
	if err != nil {
		t.Fatal(err)
	}
	// The router's middleware chain, configured as in
	// docs/forward-auth.md: keyledger (forwardAuth), then
	// strip-credentials (headers), then the service.
	app := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(appURL)
		pr.SetXForwarded()
	}}
	chain := &traefikForwardAuth{
		address:             "http://" + env.node.HTTPAddr() + "/validate",
		authRequestHeaders:  []string{"Authorization", "X-Api-Key", "X-Api-Secret", "Signature-Input", "Signature", "Content-Digest", "Content-Type"},
		authResponseHeaders: []string{validator.HeaderUser, validator.HeaderOwner, validator.HeaderOwnerType, validator.HeaderKey, "X-Keyledger-Content-Digest"},
		client: &http.Client{
			// A new connection for every auth request, as nginx does: on a
			// reused one the node's header size limit was seen to let a
			// little more through, and LargeHeaders would prove less.
			Transport:     &http.Transport{DisableKeepAlives: true},
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		next: traefikRemoveRequestHeaders(app, "Authorization", "X-Api-Key", "X-Api-Secret"),
	}
	proxy := httptest.NewServer(chain)
	t.Cleanup(proxy.Close)

	// The admin router of docs/forward-auth.md: its own forwardAuth
	// middleware names the scope in the address.
	t.Run("RequiredScopesPerRouter", func(t *testing.T) {
		adminChain := *chain
		adminChain.address += "?scope=admin:write"
		adminChain.authResponseHeaders = append(slices.Clone(chain.authResponseHeaders), validator.HeaderScopes)
		adminProxy := httptest.NewServer(&adminChain)
		t.Cleanup(adminProxy.Close)
		admin := env.ledger.CreateKey(t, env.token, `{"scopes":["admin:*"]}`)
		natstest.Eventually(t, 10*time.Second, func() bool {
			return apptest.Send(t, "GET", adminProxy.URL+"/admin/users", "", apptest.APIKeyAuth(admin)...).Status == http.StatusOK
		}, "the admin key validates through the admin router")
		calls := env.app.calls.Load()
		r := apptest.Send(t, "GET", adminProxy.URL+"/admin/users", "", append(apptest.APIKeyAuth(env.key),
			validator.HeaderRequiredScopes, "")...)
		if r.Status != http.StatusForbidden || r.ErrorCode(t) != "forbidden" {
			t.Errorf("a key without the scope: got %d %s, want the node's 403 forbidden", r.Status, r.Body)
		}
		if got := env.app.calls.Load(); got != calls {
			t.Errorf("the app was called %d times for a refused request, want 0", got-calls)
		}
		if r := apptest.Send(t, "GET", proxy.URL+"/hello", "", apptest.APIKeyAuth(env.key)...); r.Status != http.StatusOK {
			t.Errorf("the router without required scopes: got %d, want 200", r.Status)
		}
	})

	testForwardAuth(t, env, proxy.URL, func(t *testing.T, r apptest.Response) {
		// Traefik returns the auth server's answer as it is.
		if r.ErrorCode(t) != "unauthorized" || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("got %s with Cache-Control %q, want the node's JSON 401 with no-store",
				r.Body, r.Header.Get("Cache-Control"))
		}
	})
}

// TestForwardAuth_DocShowsTestedNginxConfig keeps the nginx configuration
// in docs/forward-auth.md the one TestForwardAuth_Nginx runs.
func TestForwardAuth_DocShowsTestedNginxConfig(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "forward-auth.md"))
	if err != nil {
		t.Fatal(err)
	}
	conf := renderNginxConf(t, nginxConf{Dir: "/unused", Listen: "127.0.0.1:80", Node: "validator:8081", App: "app:8080"})
	_, block, ok := strings.Cut(conf, "# BEGIN forward-auth\n")
	block, _, ok2 := strings.Cut(block, "# END forward-auth")
	if !ok || !ok2 {
		t.Fatal("found no BEGIN/END forward-auth markers in the nginx template")
	}
	if !strings.Contains(squeezeLines(string(doc)), squeezeLines(block)) {
		t.Fatalf("docs/forward-auth.md does not show the tested nginx configuration; want (indentation aside):\n%s", block)
	}
}

// squeezeLines trims every line and drops the empty ones.
func squeezeLines(s string) string {
	var out []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// wantUnavailable checks a "retry later" answer: 503 with Retry-After 1
// and the JSON error code unavailable.
func wantUnavailable(t *testing.T, r apptest.Response) {
	t.Helper()
	apptest.WantStatus(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") != "1" || r.ErrorCode(t) != "unavailable" {
		t.Fatalf("got Retry-After %q and %s, want 1 and code unavailable", r.Header.Get("Retry-After"), r.Body)
	}
}

// testForwardAuth runs the forward-auth contract through the proxy at
// Base; refused makes the checks on a 401 that differ between proxies.
// Subtests run in order: the last ones revoke a key and stop the ledger.
func testForwardAuth(t *testing.T, env *forwardAuthEnv, base string, refused func(t *testing.T, r apptest.Response)) {
	t.Helper()
	wantIdentity := func(t *testing.T, r apptest.Response) apptest.SeenRequest {
		t.Helper()
		apptest.WantStatus(t, r, http.StatusOK)
		s := r.Seen(t)
		if s.User != env.userID || s.Key != env.key.Key || s.Owner != env.userID || s.OwnerType != "user" {
			t.Fatalf("the app got identity %q %q owned by %s %q, want %q %q owned by user %q", s.User, s.Key, s.OwnerType, s.Owner,
				env.userID, env.key.Key, env.userID)
		}
		if s.Authorization != "" || s.APIKey != "" || s.APISecret != "" {
			t.Fatalf("the app got credentials %+v, want them stripped", s)
		}
		return s
	}

	t.Run("AuthorizationHeader", func(t *testing.T) {
		s := wantIdentity(t, apptest.Send(t, "GET", base+"/hello?x=1", "", apptest.APIKeyAuth(env.key)...))
		if s.Method != "GET" || s.URI != "/hello?x=1" {
			t.Fatalf("the app got %s %s, want GET /hello?x=1", s.Method, s.URI)
		}
	})
	t.Run("KeyAndSecretHeaders", func(t *testing.T) {
		wantIdentity(t, apptest.Send(t, "GET", base+"/hello", "", keyAndSecret(env.key)...))
	})
	t.Run("PostBodyNotNeeded", func(t *testing.T) {
		// Larger than nginx's in-memory body buffer: nginx spools it to
		// client_body_temp_path before the app gets it.
		body := strings.Repeat("0123456789abcdef", 16<<10)
		sum := sha256.Sum256([]byte(body))
		for name, rd := range map[string]func() io.Reader{
			"ContentLength": func() io.Reader { return strings.NewReader(body) },
			"Chunked":       func() io.Reader { return io.MultiReader(strings.NewReader(body)) },
		} {
			t.Run(name, func(t *testing.T) {
				s := wantIdentity(t, apptest.SendReader(t, "POST", base+"/things", rd(), keyAndSecret(env.key)...))
				if s.Method != "POST" || s.BodyLen != len(body) || s.BodySHA256 != hex.EncodeToString(sum[:]) {
					t.Fatalf("the app got %s with %d body bytes (sha256 %s), want POST with the %d bytes sent",
						s.Method, s.BodyLen, s.BodySHA256, len(body))
				}
			})
		}
	})
	t.Run("LargeHeaders", func(t *testing.T) {
		// Big cookies and the like are the app's business; they must not
		// push the auth request past the node's 16 KiB header limit.
		h := apptest.APIKeyAuth(env.key)
		for _, name := range []string{"X-Big-1", "X-Big-2", "X-Big-3"} {
			h = append(h, name, strings.Repeat("b", 7000))
		}
		wantIdentity(t, apptest.Send(t, "GET", base+"/hello", "", h...))
	})
	t.Run("Signed", func(t *testing.T) {
		body := `{"amount":100}`
		signer, err := client.NewSigner(env.key.Key, env.key.Secret, nil)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest("POST", base+"/orders?x=1", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if err := signer.SignRequest(req, []byte(body)); err != nil {
			t.Fatal(err)
		}
		h := []string{}
		for _, name := range []string{"X-Api-Key", "Content-Type", "Content-Digest", "Signature-Input", "Signature"} {
			h = append(h, name, req.Header.Get(name))
		}
		s := wantIdentity(t, apptest.Send(t, "POST", base+"/orders?x=1", body, h...))
		if s.Digest != req.Header.Get("Content-Digest") || !s.DigestOK {
			t.Fatalf("the app got digest %q (matches body: %v), want the signed %q", s.Digest, s.DigestOK, req.Header.Get("Content-Digest"))
		}
		refuse := apptest.Send(t, "POST", base+"/orders?x=1", body, h...)
		apptest.WantStatus(t, refuse, http.StatusUnauthorized)
		refused(t, refuse)
	})
	t.Run("SpoofedIdentityReplaced", func(t *testing.T) {
		h := append(apptest.APIKeyAuth(env.key), validator.HeaderUser, "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C",
			validator.HeaderKey, "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C")
		wantIdentity(t, apptest.Send(t, "GET", base+"/hello", "", h...))
	})

	refuse := func(t *testing.T, headers ...string) {
		t.Helper()
		calls := env.app.calls.Load()
		r := apptest.Send(t, "GET", base+"/hello", "", headers...)
		apptest.WantStatus(t, r, http.StatusUnauthorized)
		if got := r.Header.Get("WWW-Authenticate"); got != "ApiKey" {
			t.Fatalf("got WWW-Authenticate %q, want ApiKey", got)
		}
		if got := env.app.calls.Load(); got != calls {
			t.Fatalf("the app was called %d times for a refused request, want 0", got-calls)
		}
		refused(t, r)
	}
	t.Run("Refused", func(t *testing.T) {
		wrong := apptest.CreatedKey{Key: env.key.Key, Secret: env.other.Secret}
		for name, h := range map[string][]string{
			"NoCredentials":      {},
			"WrongSecret":        apptest.APIKeyAuth(wrong),
			"WrongSecretHeaders": keyAndSecret(wrong),
			"OnlyIdentity":       {validator.HeaderUser, env.userID, validator.HeaderKey, env.key.Key},
			"SessionToken":       {"Authorization", "Bearer " + env.token},
		} {
			t.Run(name, func(t *testing.T) { refuse(t, h...) })
		}
	})
	t.Run("AppErrorPassesThrough", func(t *testing.T) {
		r := apptest.Send(t, "GET", base+"/boom", "", apptest.APIKeyAuth(env.key)...)
		if r.Status != http.StatusInternalServerError || string(r.Body) != "boom\n" {
			t.Fatalf("got %d %q, want the app's own 500 boom", r.Status, r.Body)
		}
	})
	t.Run("Revoked", func(t *testing.T) {
		apptest.WantStatus(t, apptest.Send(t, "GET", base+"/hello", "", apptest.APIKeyAuth(env.doomed)...), http.StatusOK)
		apptest.WantStatus(t, env.ledger.Do(t, "DELETE", "/api-keys/"+env.doomed.Key, "", "Authorization", "Bearer "+env.token),
			http.StatusNoContent)
		natstest.Eventually(t, 10*time.Second, func() bool {
			return apptest.Send(t, "GET", base+"/hello", "", apptest.APIKeyAuth(env.doomed)...).Status == http.StatusUnauthorized
		}, "revoked key refused through the proxy")
		refuse(t, apptest.APIKeyAuth(env.doomed)...)
		refuse(t, keyAndSecret(env.doomed)...)
		wantIdentity(t, apptest.Send(t, "GET", base+"/hello", "", apptest.APIKeyAuth(env.key)...))
	})
	t.Run("NodeStale", func(t *testing.T) {
		// Without the log the node cannot know about revocations: past its
		// staleness bound it refuses to vouch for anyone.
		if err := env.closeLedger(); err != nil {
			t.Fatalf("close ledger: %v", err)
		}
		var r apptest.Response
		natstest.Eventually(t, 20*time.Second, func() bool {
			r = apptest.Send(t, "GET", base+"/hello", "", apptest.APIKeyAuth(env.key)...)
			return r.Status != http.StatusOK
		}, "stale node stops vouching")
		calls := env.app.calls.Load()
		wantUnavailable(t, r)
		wantUnavailable(t, apptest.Send(t, "POST", base+"/things", "{}", keyAndSecret(env.key)...))
		if got := env.app.calls.Load(); got != calls {
			t.Fatalf("the app was called %d times while the node was stale, want 0", got-calls)
		}
	})
}

// forwardAuthEnv is a ledger, a validation node following its log, an app
// to protect, and a user with keys.
type forwardAuthEnv struct {
	ledger *apptest.Server
	node   *app.Node
	app    *echoApp
	userID string
	token  string             // the user's session token
	key    apptest.CreatedKey // stays valid until the ledger stops
	other  apptest.CreatedKey // its secret is a well-formed wrong one for key
	doomed apptest.CreatedKey // revoked during the test

	// closeLedger and closeNode stop them early; they also run when the
	// test ends, and only the first call does anything.
	closeLedger, closeNode func() error
}

// nodeMaxStaleness is short so that NodeStale does not wait long, and long
// enough that a node under -race on a busy machine is not stale by mistake.
const nodeMaxStaleness = 3 * time.Second

func startForwardAuthEnv(t *testing.T) *forwardAuthEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts := apptest.Start(t, t.TempDir())
	env := &forwardAuthEnv{ledger: ts}
	env.closeLedger = sync.OnceValue(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return ts.Close(ctx)
	})
	t.Cleanup(func() {
		if err := env.closeLedger(); err != nil {
			t.Errorf("close ledger: %v", err)
		}
	})

	logs := &apptest.SyncBuffer{}
	env.node = &app.Node{
		Config: app.NodeConfig{NATSURL: ts.NATSURL(), HTTPAddr: "127.0.0.1:0", MaxStaleness: nodeMaxStaleness,
			NATSClient:     app.NATSClientConfig{Creds: ts.CredsFile(natsauth.Validator)},
			TrustedProxies: []string{"127.0.0.1", "::1"}}, // nginx and the Traefik emulation run on loopback
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	env.closeNode = sync.OnceValue(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return env.node.Close(ctx)
	})
	t.Cleanup(func() {
		if err := env.closeNode(); err != nil {
			t.Errorf("close node: %v", err)
		}
		if t.Failed() {
			t.Logf("validation node log:\n%s", logs)
		}
	})
	if err := env.node.Open(ctx); err != nil {
		t.Fatalf("open node: %v", err)
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return env.node.Validator().Status().Ready }, "validation node ready")

	env.app = startEchoApp(t)
	env.userID = ts.Register(t, "alice@example.com", apptest.Password)
	env.token = ts.Login(t, "alice@example.com", apptest.Password)
	env.key = ts.CreateKey(t, env.token, `{"name":"app"}`)
	env.other = ts.CreateKey(t, env.token, `{"name":"other"}`)
	env.doomed = ts.CreateKey(t, env.token, `{"name":"doomed"}`)
	if err := env.node.Validator().WaitFor(ctx, apptest.StreamHead(t, ts)); err != nil {
		t.Fatalf("node catching up with the keys: %v", err)
	}
	return env
}

// echoApp is the protected app: it answers with what reached it, and
// counts the requests that did.
type echoApp struct {
	*httptest.Server
	calls atomic.Int64
}

func startEchoApp(t *testing.T) *echoApp {
	t.Helper()
	app := &echoApp{}
	app.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.calls.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/boom" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		sum := sha256.Sum256(body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(apptest.SeenRequest{
			Method: r.Method, URI: r.RequestURI,
			User: r.Header.Get(validator.HeaderUser), Key: r.Header.Get(validator.HeaderKey),
			Owner: r.Header.Get(validator.HeaderOwner), OwnerType: r.Header.Get(validator.HeaderOwnerType),
			Authorization: r.Header.Get("Authorization"),
			APIKey:        r.Header.Get("X-Api-Key"), APISecret: r.Header.Get("X-Api-Secret"),
			BodyLen: len(body), BodySHA256: hex.EncodeToString(sum[:]),
			Digest:   r.Header.Get("X-Keyledger-Content-Digest"),
			DigestOK: validator.CheckForwardedBody(r.Header.Get("X-Keyledger-Content-Digest"), body) == nil,
		})
	}))
	t.Cleanup(app.Close)
	return app
}

func keyAndSecret(k apptest.CreatedKey) []string {
	return []string{"X-Api-Key", apptest.Base64(k.Key), "X-Api-Secret", apptest.Base64(k.Secret)}
}

// nginxBinary returns the path of nginx. Without it the test is skipped,
// except in CI (CI set), which must install it.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	// Debian puts it in /usr/sbin, which a non-root PATH often lacks.
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nginx is not installed; CI must install it (apt-get install -y nginx)")
	}
	t.Skip("nginx is not installed (apt-get install -y nginx); skipping the nginx auth_request test")
	return ""
}

// nginxConf fills testdata/forwardauth/nginx.conf.tmpl.
type nginxConf struct {
	Dir    string // prefix for pid, logs and temporary files
	Listen string // host:port nginx listens on
	Node   string // host:port of the validation node
	App    string // host:port of the protected app
	Root   bool   // nginx runs as root
}

func renderNginxConf(t *testing.T, c nginxConf) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "forwardauth", "nginx.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, c); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// startNginx runs nginx in the foreground on a free loopback port with
// everything it writes in a temporary directory, and returns its base URL.
// When the test ends it stops nginx gracefully (SIGQUIT) and waits for it.
func startNginx(t *testing.T, bin string, c nginxConf) string {
	t.Helper()
	c.Dir, c.Listen, c.Root = t.TempDir(), apptest.FreeAddr(t), os.Geteuid() == 0
	conf := filepath.Join(c.Dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(renderNginxConf(t, c)), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", c.Dir + "/", "-c", conf}
	if out, err := exec.Command(bin, append(args, "-t")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	out := &apptest.SyncBuffer{}
	cmd := exec.Command(bin, append(args, "-g", "daemon off;")...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	logs := func() string {
		b, _ := os.ReadFile(filepath.Join(c.Dir, "error.log"))
		return out.String() + string(b)
	}
	t.Cleanup(func() {
		if err := cmd.Process.Signal(syscall.SIGQUIT); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("signal nginx: %v", err)
		}
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("nginx: %v", waitErr)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("nginx did not stop within 10s of SIGQUIT")
		}
		if t.Failed() {
			t.Logf("nginx output and error log:\n%s", logs())
		}
	})
	natstest.Eventually(t, 10*time.Second, func() bool {
		select {
		case <-exited:
			t.Fatalf("nginx exited at start: %v\n%s", waitErr, logs())
		default:
		}
		conn, err := net.Dial("tcp", c.Listen)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}, "nginx listening")
	return "http://" + c.Listen
}

// traefikForwardAuth emulates the ForwardAuth middleware of Traefik as its
// documentation describes it
// (https://doc.traefik.io/traefik/middlewares/http/forwardauth/), so the
// node can be checked against that contract without Traefik:
//
//   - for every request it sends a GET, without a body, to address, with
//     the request's headers (hop-by-hop ones aside; only those named in
//     authRequestHeaders when it is set) and X-Forwarded-Method, -Proto,
//     -Host, -Uri and -For describing the original request;
//   - on a 2xx answer it copies the authResponseHeaders of the answer onto
//     the request, replacing any the client sent, and calls next;
//   - on any other answer it returns that answer, status, headers and body,
//     to the client;
//   - when the auth server cannot be reached it answers 500.
type traefikForwardAuth struct {
	address             string
	authRequestHeaders  []string
	authResponseHeaders []string
	client              *http.Client
	next                http.Handler
}

var hopByHopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (fa *traefikForwardAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	areq, err := http.NewRequestWithContext(r.Context(), http.MethodGet, fa.address, http.NoBody)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	areq.Header = r.Header.Clone()
	for _, h := range hopByHopHeaders {
		areq.Header.Del(h)
	}
	if len(fa.authRequestHeaders) > 0 {
		all := areq.Header
		areq.Header = http.Header{}
		for _, h := range fa.authRequestHeaders {
			if vs := all.Values(h); len(vs) > 0 {
				areq.Header[http.CanonicalHeaderKey(h)] = append([]string(nil), vs...)
			}
		}
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		areq.Header.Set("X-Forwarded-For", ip)
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	areq.Header.Set("X-Forwarded-Method", r.Method)
	areq.Header.Set("X-Forwarded-Proto", proto)
	areq.Header.Set("X-Forwarded-Host", r.Host)
	areq.Header.Set("X-Forwarded-Uri", r.URL.RequestURI())

	resp, err := fa.client.Do(areq)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		for k, vs := range resp.Header {
			w.Header()[k] = append([]string(nil), vs...)
		}
		for _, h := range hopByHopHeaders {
			w.Header().Del(h)
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
		return
	}
	for _, h := range fa.authResponseHeaders {
		h = http.CanonicalHeaderKey(h)
		r.Header.Del(h)
		if vs := resp.Header[h]; len(vs) > 0 {
			r.Header[h] = append([]string(nil), vs...)
		}
	}
	fa.next.ServeHTTP(w, r)
}

// traefikRemoveRequestHeaders emulates a Traefik headers middleware whose
// customRequestHeaders set each name to "", which removes it.
func traefikRemoveRequestHeaders(next http.Handler, names ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, n := range names {
			r.Header.Del(n)
		}
		next.ServeHTTP(w, r)
	})
}
