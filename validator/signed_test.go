package validator_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/httpsig"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/validator"
)

// signed builds a request to rawURL signed with apiKey's secret as a client
// would (x-api-key, Content-Digest, Signature-Input, Signature), with
// opts' times and nonce.
func signed(t testing.TB, method, rawURL string, body []byte, contentType, apiKey string, secret domain.Secret, opts httpsig.SignOptions) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ledgertest.Context(t), method, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	key, err := secret.SigningKey(apiKey)
	if err != nil {
		t.Fatal(err)
	}
	opts.KeyID = apiKey
	if err := httpsig.Sign(req, body, key, opts); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	req.Header.Set("X-Api-Key", b64(apiKey))
	return req
}

func send(t testing.TB, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// wantRefused checks the one 401 every refused credential gets.
func wantRefused(t testing.TB, r response, what string) {
	t.Helper()
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `"unauthorized"`) {
		t.Errorf("%s: got %d %s, want 401 unauthorized", what, r.status, r.body)
	}
}

// echoBody answers with the identity and the body it received, to show
// that Middleware hands the body on intact after checking its digest.
func echoBody(calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		id, _ := validator.IdentityFrom(r.Context())
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Identity", id.UserID+" "+id.APIKey)
		_, _ = w.Write(b)
	})
}

func TestValidator_SignedRequests(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	v, _ := openValidator(t, natstest.Connect(t, e.srv))
	awaitReady(t, v)
	var calls atomic.Int64
	srv := httptest.NewServer(v.Middleware(echoBody(&calls)))
	t.Cleanup(srv.Close)
	body := []byte(`{"amount":100,"currency":"EUR"}`)
	target := srv.URL + "/orders?id=7&x=y"
	sign := func(opts httpsig.SignOptions) *http.Request {
		return signed(t, http.MethodPost, target, body, "application/json", k.APIKey, secret, opts)
	}

	t.Run("Accepted", func(t *testing.T) {
		before := calls.Load()
		r := send(t, sign(httpsig.SignOptions{}))
		if r.status != http.StatusOK || r.body != string(body) || r.header.Get("X-Identity") != e.user.ID+" "+k.APIKey {
			t.Fatalf("got %d %q identity %q, want 200, the body, and %s %s", r.status, r.body, r.header.Get("X-Identity"), e.user.ID, k.APIKey)
		}
		if calls.Load() != before+1 {
			t.Errorf("handler calls: got %d, want %d", calls.Load(), before+1)
		}
		get := signed(t, http.MethodGet, srv.URL+"/orders", nil, "", k.APIKey, secret, httpsig.SignOptions{})
		if r := send(t, get); r.status != http.StatusOK {
			t.Errorf("signed GET: got %d %s, want 200", r.status, r.body)
		}
	})

	t.Run("Replayed", func(t *testing.T) {
		req := sign(httpsig.SignOptions{})
		again := req.Clone(req.Context())
		again.Body = io.NopCloser(bytes.NewReader(body))
		if r := send(t, req); r.status != http.StatusOK {
			t.Fatalf("first: got %d %s, want 200", r.status, r.body)
		}
		before := calls.Load()
		wantRefused(t, send(t, again), "the same signed request again")
		if calls.Load() != before {
			t.Errorf("a replay reached the handler")
		}
	})

	// Each covered element changed after signing.
	tampers := []struct {
		name string
		edit func(r *http.Request)
	}{
		{"Method", func(r *http.Request) { r.Method = http.MethodPut }},
		{"Path", func(r *http.Request) { r.URL.Path = "/refunds" }},
		{"Query", func(r *http.Request) { r.URL.RawQuery = "id=8&x=y" }},
		{"QueryDropped", func(r *http.Request) { r.URL.RawQuery = "" }},
		{"BodyByte", func(r *http.Request) {
			b := bytes.Clone(body)
			b[12] = '9'
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}},
		{"BodyDigestToo", func(r *http.Request) {
			b := []byte(`{"amount":900,"currency":"EUR"}`)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
			r.Header.Set("Content-Digest", httpsig.ContentDigest(b))
		}},
		{"ContentType", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }},
		{"Host", func(r *http.Request) { r.Host = "evil.example" }},
		{"KeyHeader", func(r *http.Request) {
			r.Header.Set("X-Api-Key", b64(domain.APIKeyPrefix+"01JH6Z3Q8X4N6V2R9T5M7K3B1C"))
		}},
		{"SecretAlongside", func(r *http.Request) { r.Header.Set("X-Api-Secret", b64(secret.Reveal())) }},
		// A credential header twice, or an ApiKey Authorization under a
		// first one, is ambiguous even when the first names the signer.
		{"KeyHeaderTwice", func(r *http.Request) {
			r.Header.Add("X-Api-Key", b64(domain.APIKeyPrefix+"01JH6Z3Q8X4N6V2R9T5M7K3B1C"))
		}},
		{"ApiKeyUnderBearer", func(r *http.Request) {
			r.Header["Authorization"] = []string{"Bearer x", "ApiKey " + b64(k.APIKey+":"+secret.Reveal())}
		}},
		{"KelvinApiKeyAlongside", func(r *http.Request) {
			r.Header.Set("Authorization", "Api\u212aey "+b64(k.APIKey+":"+secret.Reveal()))
		}},
		{"SignatureByte", func(r *http.Request) {
			s := r.Header.Get("Signature")
			i := strings.Index(s, ":") + 5
			c := byte('A')
			if s[i] == 'A' {
				c = 'B'
			}
			r.Header.Set("Signature", s[:i]+string(c)+s[i+1:])
		}},
	}
	for _, tc := range tampers {
		t.Run("Tampered/"+tc.name, func(t *testing.T) {
			req := sign(httpsig.SignOptions{})
			tc.edit(req)
			before := calls.Load()
			wantRefused(t, send(t, req), tc.name+" changed after signing")
			if calls.Load() != before {
				t.Errorf("a tampered request reached the handler")
			}
		})
	}

	// Required components and parameters removed from Signature-Input (the
	// signature no longer matches either, but the profile refuses first).
	removals := []struct{ name, from, to string }{
		{"NoMethod", `"@method" `, ``},
		{"NoTarget", `"@target-uri" `, ``},
		{"NoContentDigest", ` "content-digest"`, ``},
		{"NoContentType", ` "content-type"`, ``},
		{"NoCreated", `;created=`, `;x=`},
		{"NoExpires", `;expires=`, `;x=`},
		{"NoNonce", `;nonce=`, `;x=`},
		{"NoKeyID", `;keyid=`, `;x=`},
		{"OtherTag", `tag="keyledger-v1"`, `tag="other"`},
		{"OtherAlg", `alg="ed25519"`, `alg="hmac-sha256"`},
	}
	for _, tc := range removals {
		t.Run("Missing/"+tc.name, func(t *testing.T) {
			req := sign(httpsig.SignOptions{})
			in := req.Header.Get("Signature-Input")
			if !strings.Contains(in, tc.from) {
				t.Fatalf("Signature-Input %q has no %q", in, tc.from)
			}
			req.Header.Set("Signature-Input", strings.Replace(in, tc.from, tc.to, 1))
			wantRefused(t, send(t, req), tc.name)
		})
	}
	t.Run("Missing/SignatureHeader", func(t *testing.T) {
		req := sign(httpsig.SignOptions{})
		req.Header.Del("Signature")
		wantRefused(t, send(t, req), "no Signature")
	})

	t.Run("Time", func(t *testing.T) {
		now := time.Now()
		cases := []struct {
			name             string
			created, expires time.Time
		}{
			{"CreatedTooOld", now.Add(-6 * time.Minute), now.Add(time.Minute)},
			{"CreatedInFuture", now.Add(6 * time.Minute), now.Add(7 * time.Minute)},
			{"Expired", now.Add(-2 * time.Minute), now.Add(-time.Minute)},
		}
		for _, tc := range cases {
			wantRefused(t, send(t, sign(httpsig.SignOptions{Created: tc.created, Expires: tc.expires})), tc.name)
		}
		r := send(t, sign(httpsig.SignOptions{Created: now.Add(-4 * time.Minute), Expires: now.Add(time.Minute)}))
		if r.status != http.StatusOK {
			t.Errorf("created 4 minutes ago, not expired: got %d %s, want 200", r.status, r.body)
		}
	})

	t.Run("UnknownKey", func(t *testing.T) {
		other := domain.APIKeyPrefix + "01JH6Z3Q8X4N6V2R9T5M7K3B1C"
		wantRefused(t, send(t, signed(t, http.MethodGet, target, nil, "", other, secret, httpsig.SignOptions{})), "unknown key")
	})
}

func TestValidator_SignedKeyLifecycle(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	ctx := ledgertest.Context(t)
	k, secret, err := e.l.Service.CreateKey(ctx, ledger.CreateKey{UserID: e.user.ID, SignedOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := openValidator(t, natstest.Connect(t, e.srv))
	awaitReady(t, v)
	var calls atomic.Int64
	srv := httptest.NewServer(v.Middleware(echoBody(&calls)))
	t.Cleanup(srv.Close)
	signedGet := func(s domain.Secret) response {
		return send(t, signed(t, http.MethodGet, srv.URL+"/", nil, "", k.APIKey, s, httpsig.SignOptions{}))
	}

	t.Run("SignedOnlyRefusesSecret", func(t *testing.T) {
		if _, err := v.Validate(context.Background(), k.APIKey, secret.Reveal()); err == nil {
			t.Errorf("Validate with the secret: got nil, want %v", validator.ErrUnauthorized)
		}
		wantRefused(t, do(t, http.MethodGet, srv.URL+"/", xAPIHeaders(k.APIKey, secret.Reveal())), "x-api-secret")
		wantRefused(t, do(t, http.MethodGet, srv.URL+"/", authorizationHeader("ApiKey", k.APIKey, secret.Reveal())), "Authorization: ApiKey")
		if r := signedGet(secret); r.status != http.StatusOK {
			t.Errorf("signed: got %d %s, want 200", r.status, r.body)
		}
	})

	newSecret, err := e.l.Service.RegenerateSecret(ctx, ledger.RegenerateSecret{UserID: e.user.ID, APIKey: k.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("RegenerateRetiresOldPair", func(t *testing.T) {
		natstest.Eventually(t, awaitTimeout, func() bool { return signedGet(newSecret).status == http.StatusOK },
			"the new secret's signatures accepted")
		wantRefused(t, signedGet(secret), "signed with the old secret")
	})

	t.Run("Revoked", func(t *testing.T) {
		seq := e.l.Revoke(t, e.user.ID, k.APIKey)
		if err := v.WaitFor(ctx, seq); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, signedGet(newSecret), "signed for a revoked key")
	})
}

func TestValidator_SignedForwardAuth(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	// The proxy's subrequests come from loopback: only such peers are
	// believed.
	fromLoopback := func(r *http.Request) bool {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		return err == nil && ap.Addr().IsLoopback()
	}
	v, _ := openValidator(t, natstest.Connect(t, e.srv), validator.WithTrustedProxy(fromLoopback))
	awaitReady(t, v)
	srv := httptest.NewServer(v.Handler())
	t.Cleanup(srv.Close)
	const original = "https://api.example.com/orders?id=7"
	body := []byte(`{"amount":100}`)

	// forward turns a signed request into the subrequest a proxy sends to
	// /validate: the original's fields, and its method and URL in
	// X-Forwarded-*; the body only if withBody.
	forward := func(orig *http.Request, withBody bool) *http.Request {
		u, _ := url.Parse(orig.URL.String())
		var b io.Reader
		if withBody {
			b = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ledgertest.Context(t), http.MethodGet, srv.URL+"/validate", b)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = orig.Header.Clone()
		req.Header.Set("X-Forwarded-Method", orig.Method)
		req.Header.Set("X-Forwarded-Proto", u.Scheme)
		req.Header.Set("X-Forwarded-Host", u.Host)
		req.Header.Set("X-Forwarded-Uri", u.RequestURI())
		return req
	}
	post := func() *http.Request {
		return signed(t, http.MethodPost, original, body, "application/json", k.APIKey, secret, httpsig.SignOptions{})
	}

	t.Run("WithoutBody", func(t *testing.T) {
		orig := post()
		r := send(t, forward(orig, false))
		if r.status != http.StatusOK || r.header.Get(validator.HeaderKey) != k.APIKey {
			t.Fatalf("got %d %s, want 200 for %s", r.status, r.body, k.APIKey)
		}
		digest := r.header.Get("X-Keyledger-Content-Digest")
		if digest != orig.Header.Get("Content-Digest") {
			t.Errorf("X-Keyledger-Content-Digest: got %q, want the signed %q", digest, orig.Header.Get("Content-Digest"))
		}
		if err := validator.CheckForwardedBody(digest, body); err != nil {
			t.Errorf("CheckForwardedBody(the body): got %v, want nil", err)
		}
		if err := validator.CheckForwardedBody(digest, []byte(`{"amount":900}`)); err == nil {
			t.Errorf("CheckForwardedBody(another body): got nil, want an error")
		}
	})
	t.Run("GetHasNoBody", func(t *testing.T) {
		orig := signed(t, http.MethodGet, original, nil, "", k.APIKey, secret, httpsig.SignOptions{})
		r := send(t, forward(orig, false))
		if r.status != http.StatusOK || r.header.Get("X-Keyledger-Content-Digest") != "none" {
			t.Fatalf("got %d %s digest %q, want 200 and none", r.status, r.body, r.header.Get("X-Keyledger-Content-Digest"))
		}
		if err := validator.CheckForwardedBody("none", []byte("smuggled")); err == nil {
			t.Errorf("CheckForwardedBody(none, a body): got nil, want an error")
		}
	})
	t.Run("WithBody", func(t *testing.T) {
		if r := send(t, forward(post(), true)); r.status != http.StatusOK {
			t.Fatalf("got %d %s, want 200", r.status, r.body)
		}
		req := forward(post(), false)
		req.Body = io.NopCloser(strings.NewReader(`{"amount":900}`))
		req.ContentLength = 14
		wantRefused(t, send(t, req), "forwarded body changed")
	})
	t.Run("OtherTarget", func(t *testing.T) {
		req := forward(post(), false)
		req.Header.Set("X-Forwarded-Uri", "/refunds?id=7")
		wantRefused(t, send(t, req), "forwarded to another path")
		req = forward(post(), false)
		req.Header.Set("X-Forwarded-Method", "DELETE")
		wantRefused(t, send(t, req), "forwarded with another method")
	})
	t.Run("ForwardedHeaderTwice", func(t *testing.T) {
		req := forward(post(), false)
		req.Header.Add("X-Forwarded-Uri", "/refunds?id=7")
		wantRefused(t, send(t, req), "X-Forwarded-Uri twice")
	})

	// Anyone who reaches /validate directly must not have a signature
	// checked against a request of their choosing: X-Forwarded-* count
	// only from a trusted proxy.
	for name, opts := range map[string][]validator.Option{
		"NoTrustedProxy":      nil,
		"PeerNotTrustedProxy": {validator.WithTrustedProxy(func(*http.Request) bool { return false })},
	} {
		t.Run("Untrusted/"+name, func(t *testing.T) {
			untrusted, logs := openValidator(t, natstest.Connect(t, e.srv), opts...)
			awaitReady(t, untrusted)
			node := httptest.NewServer(untrusted.Handler())
			t.Cleanup(node.Close)
			for i := range 2 {
				req := forward(post(), false)
				req.URL, _ = url.Parse(node.URL + "/validate")
				req.Host = req.URL.Host
				wantRefused(t, send(t, req), fmt.Sprintf("forwarded by an untrusted peer, #%d", i))
			}
			if got := strings.Count(logs.String(), "ignoring X-Forwarded-*"); got != 1 {
				t.Errorf("log lines about ignored X-Forwarded-*: got %d, want 1 in\n%s", got, logs.String())
			}
			// The signed request itself, sent to /validate as it is, still
			// validates there: only the forwarded description is ignored.
			direct := signed(t, http.MethodPost, node.URL+"/validate", body, "application/json", k.APIKey, secret, httpsig.SignOptions{})
			direct.Header.Set("X-Forwarded-Uri", "/orders?id=7")
			if r := send(t, direct); r.status != http.StatusOK {
				t.Errorf("the signed /validate request itself: got %d %s, want 200", r.status, r.body)
			}
		})
	}
}

func TestSigner_RoundTrip(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	v, _ := openValidator(t, natstest.Connect(t, e.srv))
	awaitReady(t, v)
	var calls atomic.Int64
	var sawSecret atomic.Bool
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echoBody(&calls).ServeHTTP(w, r)
	})))
	t.Cleanup(srv.Close)
	// A listener in front records what travels on the wire.
	wire := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, vs := range r.Header {
			for _, val := range vs {
				if strings.Contains(val, b64(secret.Reveal())) || strings.Contains(val, secret.Reveal()) {
					sawSecret.Store(true)
				}
			}
		}
		u, _ := url.Parse(srv.URL)
		r.URL.Scheme, r.URL.Host, r.RequestURI = u.Scheme, u.Host, ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(wire.Close)

	signer, err := client.NewSigner(k.APIKey, secret.Reveal(), nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: signer}
	for i := range 3 {
		req, err := http.NewRequestWithContext(ledgertest.Context(t), http.MethodPost, srv.URL+"/orders?n=1", strings.NewReader(`{"n":1}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != `{"n":1}` {
			t.Fatalf("request %d: got %d %s, want 200 and the body", i, resp.StatusCode, b)
		}
	}
	// Through the recording hop, which keeps the Host it was addressed by.
	req, _ := http.NewRequestWithContext(ledgertest.Context(t), http.MethodGet, wire.URL+"/x", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("through the hop: got %d, want 200", resp.StatusCode)
	}
	if sawSecret.Load() {
		t.Errorf("the secret travelled in a header")
	}
	if _, err := client.NewSigner(k.APIKey, "sk_not-a-secret", nil); err == nil {
		t.Errorf("NewSigner with a malformed secret: got nil error, want one")
	}
}

// TestValidator_SharedReplayCache: with WithSharedReplayCache, a signed
// request one node accepted is a replay on every other node; without it,
// each node accepts it once (the documented per-node behaviour). With
// NATS out of reach a node with the shared cache refuses signed requests
// as unavailable, and keeps validating plain ones.
func TestValidator_SharedReplayCache(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	a, _ := openValidator(t, natstest.Connect(t, e.srv), validator.WithSharedReplayCache())
	b, _ := openValidator(t, natstest.Connect(t, e.srv), validator.WithSharedReplayCache())
	local1, _ := openValidator(t, natstest.Connect(t, e.srv))
	local2, _ := openValidator(t, natstest.Connect(t, e.srv))
	for _, v := range []*validator.Validator{a, b, local1, local2} {
		awaitReady(t, v)
	}
	target := validator.Target{Method: http.MethodGet, Scheme: "https", Authority: "api.example.com", RequestURI: "/orders"}
	req := signed(t, http.MethodGet, "https://api.example.com/orders", nil, "", k.APIKey, secret, httpsig.SignOptions{})

	if _, reason, err := a.ValidateSigned(req.Header, target, nil, true); err != nil {
		t.Fatalf("node a: got %s %v, want accepted", reason, err)
	}
	if _, reason, err := b.ValidateSigned(req.Header, target, nil, true); !errors.Is(err, validator.ErrUnauthorized) || reason != domain.ReasonReplayed {
		t.Errorf("node b, the same request: got %s %v, want replayed", reason, err)
	}
	for i, v := range []*validator.Validator{local1, local2} {
		if _, reason, err := v.ValidateSigned(req.Header, target, nil, true); err != nil {
			t.Errorf("local node %d: got %s %v, want accepted once per node", i+1, reason, err)
		}
	}

	t.Run("NATSUnreachable", func(t *testing.T) {
		p := natstest.StartProxy(t, e.srv.Addr().String())
		v, _ := openValidator(t, connectVia(t, p), validator.WithSharedReplayCache(), validator.WithMaxStaleness(time.Hour))
		awaitReady(t, v)
		fresh := signed(t, http.MethodGet, "https://api.example.com/orders", nil, "", k.APIKey, secret, httpsig.SignOptions{})
		p.Cut()
		_, reason, err := v.ValidateSigned(fresh.Header, target, nil, true)
		if !errors.Is(err, validator.ErrReplayCacheUnavailable) || domain.KindOf(err) != domain.Unavailable {
			t.Errorf("signed, NATS cut: got %s %v, want %v", reason, err, validator.ErrReplayCacheUnavailable)
		}
		if _, err := v.Validate(context.Background(), k.APIKey, secret.Reveal()); err != nil {
			t.Errorf("plain, NATS cut: got %v, want accepted", err)
		}
	})
}
