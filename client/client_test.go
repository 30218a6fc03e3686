package client_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/domain"
)

const testKey = "ak_01ARZ3NDEKTSV4RRFFQ69G5FAV"

func newSecret(t *testing.T) string {
	t.Helper()
	s, err := domain.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return s.Reveal()
}

// The helpers' headers are what the server's own parser accepts.
func TestSetAPIKeyHeaders(t *testing.T) {
	secret := newSecret(t)
	h := http.Header{}
	client.SetAPIKeyHeaders(h, testKey, secret)
	if got, want := h.Get("x-api-key"), base64.StdEncoding.EncodeToString([]byte(testKey)); got != want {
		t.Fatalf("got x-api-key %q, want %q", got, want)
	}
	key, s, err := domain.ParseCredentials(h.Values("X-Api-Key"), h.Values("X-Api-Secret"), h.Values("Authorization"))
	if err != nil {
		t.Fatalf("ParseCredentials: %v", err)
	}
	if key != testKey || s.Reveal() != secret {
		t.Fatalf("got %q and another secret, want %q and the one set", key, testKey)
	}
}

func TestSetAuthorizationAPIKey(t *testing.T) {
	secret := newSecret(t)
	h := http.Header{}
	client.SetAuthorizationAPIKey(h, testKey, secret)
	scheme, param, _ := strings.Cut(h.Get("Authorization"), " ")
	if scheme != "ApiKey" {
		t.Fatalf("got scheme %q, want ApiKey", scheme)
	}
	if b, _ := base64.StdEncoding.DecodeString(param); string(b) != testKey+":"+secret {
		t.Fatalf("got a parameter that does not decode to key:secret")
	}
	key, s, err := domain.ParseCredentials(nil, nil, h.Values("Authorization"))
	if err != nil || key != testKey || s.Reveal() != secret {
		t.Fatalf("ParseCredentials: got %q, %v, want %q and the secret", key, err, testKey)
	}
}

func TestTransport(t *testing.T) {
	secret := newSecret(t)
	var mu sync.Mutex
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
	}))
	defer srv.Close()

	for _, tc := range []struct {
		style          client.HeaderStyle
		wantAPIHeaders bool
	}{
		{client.StyleAPIKeyHeaders, true},
		{client.StyleAuthorization, false},
	} {
		t.Run(tc.style.String(), func(t *testing.T) {
			hc := &http.Client{Transport: &client.Transport{APIKey: testKey, Secret: secret, Style: tc.style}}
			req, _ := http.NewRequest("GET", srv.URL, nil)
			// A stale pair of the other style must not reach the server.
			client.SetAPIKeyHeaders(req.Header, "stale", "stale")
			client.SetAuthorizationAPIKey(req.Header, "stale", "stale")
			before := req.Header.Clone()
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if fmt.Sprint(req.Header) != fmt.Sprint(before) {
				t.Fatalf("RoundTrip changed the caller's request headers")
			}
			mu.Lock()
			h := seen
			mu.Unlock()
			if got := h.Get("X-Api-Key") != ""; got != tc.wantAPIHeaders {
				t.Fatalf("got x-api-key present %v, want %v", got, tc.wantAPIHeaders)
			}
			if got := h.Get("Authorization") != ""; got == tc.wantAPIHeaders {
				t.Fatalf("got Authorization present %v, want %v", got, !tc.wantAPIHeaders)
			}
			key, s, err := domain.ParseCredentials(h.Values("X-Api-Key"), h.Values("X-Api-Secret"), h.Values("Authorization"))
			if err != nil || key != testKey || s.Reveal() != secret {
				t.Fatalf("ParseCredentials: got %q, %v, want %q and the secret", key, err, testKey)
			}
		})
	}

	t.Run("ErrMissingCredentials", func(t *testing.T) {
		hc := &http.Client{Transport: &client.Transport{APIKey: testKey}}
		if _, err := hc.Get(srv.URL); err == nil {
			t.Fatal("got nil error, want one for a missing secret")
		}
	})
}

// stub answers every request with status, header and body.
func stub(t *testing.T, status int, body string, header ...string) *client.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, client.WithToken("tok.en.secret-session"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestError(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		header     []string
		want       client.Error
		is         func(error) bool
		notInError string
	}{
		{"NotFound", 404, `{"error":{"code":"not_found","message":"api key not found"}}` + "\n", nil,
			client.Error{Status: 404, Code: "not_found", Message: "api key not found"}, client.IsNotFound, ""},
		{"Unauthorized", 401, `{"error":{"code":"unauthorized","message":"invalid or missing API key credentials"}}`,
			[]string{"WWW-Authenticate", "ApiKey"},
			client.Error{Status: 401, Code: "unauthorized", Message: "invalid or missing API key credentials"}, client.IsUnauthorized, ""},
		{"Conflict", 409, `{"error":{"code":"conflict","message":"email already registered"}}`, nil,
			client.Error{Status: 409, Code: "conflict", Message: "email already registered"}, client.IsConflict, ""},
		{"Forbidden", 403, `{"error":{"code":"forbidden","message":"admin role required"}}`, nil,
			client.Error{Status: 403, Code: "forbidden", Message: "admin role required"}, client.IsForbidden, ""},
		{"RateLimited", 429, `{"error":{"code":"rate_limited","message":"too many attempts"}}`, []string{"Retry-After", "7"},
			client.Error{Status: 429, Code: "rate_limited", Message: "too many attempts", RetryAfter: 7 * time.Second}, client.IsRateLimited, ""},
		{"NotJSON", 502, "<html>upstream said sk_leaked</html>", nil,
			client.Error{Status: 502, Code: "bad_gateway", Message: "bad gateway"}, nil, "sk_leaked"},
		{"NotJSONKnownStatus", 404, "404 page not found\n", nil,
			client.Error{Status: 404, Code: "not_found", Message: "not found"}, client.IsNotFound, "page"},
		{"ControlCharacters", 400, `{"error":{"code":"invalid","message":"bad\nline"}}`, nil,
			client.Error{Status: 400, Code: "invalid", Message: "bad line"}, nil, "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := stub(t, tc.status, tc.body, tc.header...)
			_, err := c.GetKey(ctx, testKey)
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %T %v, want *client.Error", err, err)
			}
			if *e != tc.want {
				t.Fatalf("got %+v, want %+v", *e, tc.want)
			}
			if tc.is != nil && !tc.is(err) {
				t.Fatalf("got Is* false for %v, want true", err)
			}
			if tc.notInError != "" && strings.Contains(err.Error(), tc.notInError) {
				t.Fatalf("got error %q, want it without %q", err, tc.notInError)
			}
			if strings.Contains(err.Error(), "secret-session") {
				t.Fatalf("got error %q, want it without the session token", err)
			}
			wrapped := fmt.Errorf("context: %w", err)
			if tc.is != nil && !tc.is(wrapped) {
				t.Fatalf("got Is* false for a wrapped %v, want true", err)
			}
		})
	}

	t.Run("RetryAfterDate", func(t *testing.T) {
		at := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
		c := stub(t, 503, `{"error":{"code":"unavailable","message":"starting up"}}`, "Retry-After", at)
		err := c.Healthz(ctx)
		var e *client.Error
		if !errors.As(err, &e) || e.RetryAfter < 80*time.Second || e.RetryAfter > 91*time.Second {
			t.Fatalf("got %v (%+v), want RetryAfter about 90s", err, e)
		}
	})

	t.Run("NoCredentialInMessage", func(t *testing.T) {
		secret := newSecret(t)
		c := stub(t, 401, `{"error":{"code":"unauthorized","message":"invalid or missing API key credentials"}}`)
		for _, style := range []client.HeaderStyle{client.StyleAPIKeyHeaders, client.StyleAuthorization} {
			_, err := c.Validate(ctx, testKey, secret, style)
			if !client.IsUnauthorized(err) {
				t.Fatalf("got %v, want a 401", err)
			}
			if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, base64.StdEncoding.EncodeToString([]byte(secret))) {
				t.Fatalf("got error %q, want it without the secret", msg)
			}
		}
	})

	t.Run("Transport", func(t *testing.T) {
		c, err := client.New("http://127.0.0.1:1", client.WithToken("tok.en.secret-session"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListKeys(ctx, client.ListOptions{})
		var e *client.Error
		if err == nil || errors.As(err, &e) || strings.Contains(err.Error(), "secret-session") {
			t.Fatalf("got %v, want a transport error without the token", err)
		}
	})
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name    string
		base    string
		opts    []client.Option
		wantErr bool
	}{
		{"OK", "http://localhost:8080", nil, false},
		{"OKPathPrefix", "https://example.com/keyledger/", nil, false},
		{"OKOptions", "http://localhost", []client.Option{client.WithHTTPClient(&http.Client{}), client.WithToken("a.b.c")}, false},
		{"ErrNoScheme", "localhost:8080", nil, true},
		{"ErrScheme", "ftp://example.com", nil, true},
		{"ErrNoHost", "http://", nil, true},
		{"ErrUserInfo", "http://u:p@example.com", nil, true},
		{"ErrQuery", "http://example.com/?a=b", nil, true},
		{"ErrFragment", "http://example.com/#x", nil, true},
		{"ErrNilHTTPClient", "http://example.com", []client.Option{client.WithHTTPClient(nil)}, true},
		{"ErrEmptyToken", "http://example.com", []client.Option{client.WithToken("")}, true},
		{"ErrTokenWhitespace", "http://example.com", []client.Option{client.WithToken("a b")}, true},
		{"ErrNilOption", "http://example.com", []client.Option{nil}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.New(tc.base, tc.opts...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("got %v, want error %v", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "u:p") {
				t.Fatalf("got %q, want no user info in the error", err)
			}
		})
	}
}

func TestClient_Session(t *testing.T) {
	var mu sync.Mutex
	var auth, path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth, path = r.Header.Get("Authorization"), r.URL.EscapedPath()
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"api_key":"` + testKey + `","name":"n","status":"active","created_at":"2030-01-02T15:04:05Z"}`))
	}))
	defer srv.Close()
	ctx := context.Background()

	c, err := client.New(srv.URL + "/prefix")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetKey(ctx, testKey); !errors.Is(err, client.ErrNoSession) {
		t.Fatalf("got %v, want ErrNoSession", err)
	}
	signedIn := c.WithSession("t.o.k")
	k, err := signedIn.GetKey(ctx, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if auth != "Bearer t.o.k" || path != "/prefix/api-keys/a%2Fb" {
		t.Errorf("got Authorization %q, path %q, want Bearer t.o.k, /prefix/api-keys/a%%2Fb", auth, path)
	}
	mu.Unlock()
	if k.APIKey != testKey || k.Status != client.StatusActive {
		t.Errorf("got %+v, want the decoded key", k)
	}
	if _, err := c.GetKey(ctx, testKey); !errors.Is(err, client.ErrNoSession) {
		t.Fatalf("got %v after WithSession, want the original still without a session", err)
	}
	if _, err := c.WithSession("bad token").GetKey(ctx, testKey); err == nil || strings.Contains(err.Error(), "bad token") {
		t.Fatalf("got %v, want an error without the token", err)
	}
}

func TestClient_AllKeys(t *testing.T) {
	// Three pages of two, two and one key.
	keys := []string{"k5", "k4", "k3", "k2", "k1"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("limit") != "2" {
			http.Error(w, `{"error":{"code":"invalid","message":"limit"}}`, 400)
			return
		}
		start := 0
		if c := r.URL.Query().Get("cursor"); c != "" {
			fmt.Sscan(c, &start)
		}
		end := min(start+2, len(keys))
		var b strings.Builder
		b.WriteString(`{"keys":[`)
		for i, k := range keys[start:end] {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"api_key":%q,"status":"active","created_at":"2030-01-02T15:04:05Z"}`, k)
		}
		b.WriteString(`],"next_cursor":`)
		if end < len(keys) {
			fmt.Fprintf(&b, `"%d"}`, end)
		} else {
			b.WriteString(`null}`)
		}
		_, _ = w.Write([]byte(b.String()))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, client.WithToken("t"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k, err := range c.AllKeys(context.Background(), client.ListOptions{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k.APIKey)
	}
	if fmt.Sprint(got) != fmt.Sprint(keys) {
		t.Fatalf("got %v, want %v", got, keys)
	}

	// Breaking out early stops fetching; an error ends the walk.
	for range c.AllKeys(context.Background(), client.ListOptions{Limit: 2}) {
		break
	}
	n := 0
	for _, err := range c.AllKeys(context.Background(), client.ListOptions{Limit: 3}) {
		n++
		if !errors.As(err, new(*client.Error)) {
			t.Fatalf("got %v, want *client.Error", err)
		}
	}
	if n != 1 {
		t.Fatalf("got %d yields, want 1", n)
	}
}

func TestClient_Readyz(t *testing.T) {
	ctx := context.Background()
	r, err := stub(t, 503, `{"ready":false,"applied_seq":3,"start_seq":9}`).Readyz(ctx)
	if err != nil || r != (client.Readiness{Ready: false, AppliedSeq: 3, StartSeq: 9}) {
		t.Fatalf("got %+v, %v, want not ready 3/9 and no error", r, err)
	}
	r, err = stub(t, 200, `{"ready":true,"applied_seq":9,"start_seq":9}`).Readyz(ctx)
	if err != nil || !r.Ready {
		t.Fatalf("got %+v, %v, want ready", r, err)
	}
	if _, err := stub(t, 502, `bad gateway`).Readyz(ctx); !errors.As(err, new(*client.Error)) {
		t.Fatalf("got %v, want *client.Error", err)
	}
}

// TestWithRetries: what a retry can cure is retried up to the limit, with
// one Idempotency-Key for a command's attempts; what it cannot is not.
func TestWithRetries(t *testing.T) {
	var mu sync.Mutex
	var calls []string // Idempotency-Key per call
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Header.Get("Idempotency-Key"))
		st := status
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(st)
		fmt.Fprintf(w, `{"error":{"code":"x","message":"status %d"}}`, st)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, client.WithRetries(3, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reset := func(st int) {
		mu.Lock()
		defer mu.Unlock()
		calls, status = nil, st
	}
	for _, st := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		reset(st)
		_, err := c.Register(ctx, "a@example.com", "correct horse battery staple")
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != st {
			t.Fatalf("%d: got %v, want the last *client.Error", st, err)
		}
		mu.Lock()
		if len(calls) != 3 || calls[0] == "" || calls[1] != calls[0] || calls[2] != calls[0] {
			t.Errorf("%d: got keys %q, want three attempts with one Idempotency-Key", st, calls)
		}
		mu.Unlock()
	}
	reset(http.StatusBadRequest)
	if _, err := c.Register(ctx, "a@example.com", "correct horse battery staple"); err == nil {
		t.Fatal("400: got nil error")
	}
	mu.Lock()
	if len(calls) != 1 {
		t.Errorf("400: got %d calls, want 1 (not retried)", len(calls))
	}
	mu.Unlock()
	reset(http.StatusServiceUnavailable)
	cctx := client.WithIdempotencyKey(ctx, "mine")
	_, _ = c.Register(cctx, "a@example.com", "correct horse battery staple")
	mu.Lock()
	if len(calls) != 3 || calls[0] != "mine" || calls[2] != "mine" {
		t.Errorf("context key: got %q, want \"mine\" three times", calls)
	}
	mu.Unlock()
	if _, err := client.New(srv.URL, client.WithRetries(0, time.Second)); err == nil {
		t.Error("WithRetries(0, ...): got nil error")
	}
}
