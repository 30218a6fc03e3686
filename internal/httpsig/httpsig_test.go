package httpsig

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testKey derives a key pair from a fixed seed, as domain does from a
// secret; the tests only need it to be stable.
func testKey(name string) (ed25519.PublicKey, ed25519.PrivateKey) {
	seed := sha256.Sum256([]byte("httpsig test key " + name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	return priv.Public().(ed25519.PublicKey), priv
}

var (
	testCreated = time.Unix(1_700_000_000, 0)
	testExpires = testCreated.Add(5 * time.Minute)
	testOpts    = SignOptions{KeyID: "ak_01J0TESTKEY", Created: testCreated, Expires: testExpires, Nonce: "n0nce-0123456789abcdef"}
)

// clientRequest builds a request as a client of the API would, and signs it.
func clientRequest(t *testing.T, method, url, contentType string, body []byte, priv ed25519.PrivateKey) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if err := Sign(req, body, priv, testOpts); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return req
}

// serverRequest sends req through HTTP/1.1 wire format and returns it as a
// server reads it, with its body, and r.TLS set when the client used https.
func serverRequest(t *testing.T, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatalf("write request: %v", err)
	}
	r, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if req.URL.Scheme == "https" {
		r.TLS = &tls.ConnectionState{}
	}
	return r, body
}

var errBadSignature = errors.New("signature does not verify")

// check runs everything a server does with a signed request but the key
// lookup, the time window and replay.
func check(r *http.Request, body []byte, pub ed25519.PublicKey) (*Signature, error) {
	s, err := Parse(r)
	if err != nil {
		return nil, err
	}
	if err := s.CheckBody(body); err != nil {
		return nil, err
	}
	if !s.Verify(pub) {
		return nil, errBadSignature
	}
	return s, nil
}

func TestSign_RoundTrip(t *testing.T) {
	pub, priv := testKey("a")
	tests := []struct {
		name        string
		method, url string
		contentType string
		body        string
		want        []string
	}{
		{"GetNoBody", "GET", "https://api.example.com/v1/keys", "", "", []string{"@method", "@target-uri"}},
		{"GetQuery", "GET", "https://api.example.com/v1/keys?limit=10&after=ak_01%2F", "", "", []string{"@method", "@target-uri"}},
		{"PostJSON", "POST", "https://api.example.com/v1/keys", "application/json", `{"name":"ci"}`, []string{"@method", "@target-uri", "content-type", "content-digest"}},
		{"PostNoContentType", "POST", "https://api.example.com/v1/keys?dry_run=1", "", "raw bytes", []string{"@method", "@target-uri", "content-digest"}},
		{"DeleteContentTypeNoBody", "DELETE", "https://api.example.com/v1/keys/ak_1", "application/json", "", []string{"@method", "@target-uri", "content-type"}},
		{"HTTPWithPort", "PUT", "http://127.0.0.1:8080/v1/keys/ak_1", "text/plain", "x", []string{"@method", "@target-uri", "content-type", "content-digest"}},
		{"DefaultPort", "GET", "https://API.example.com:443/", "", "", []string{"@method", "@target-uri"}},
		{"EscapedPath", "GET", "https://api.example.com/v1/a%20b/%2Fc", "", "", []string{"@method", "@target-uri"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := clientRequest(t, tt.method, tt.url, tt.contentType, []byte(tt.body), priv)
			r, body := serverRequest(t, req)
			s, err := check(r, body, pub)
			if err != nil {
				t.Fatalf("check: got %v, want nil", err)
			}
			if strings.Join(s.Components, " ") != strings.Join(tt.want, " ") {
				t.Errorf("components: got %v, want %v", s.Components, tt.want)
			}
			if s.Label != "sig1" || s.KeyID != testOpts.KeyID || s.Nonce != testOpts.Nonce ||
				!s.Created.Equal(testCreated) || !s.Expires.Equal(testExpires) {
				t.Errorf("signature: got %+v, want label sig1 and %+v", s, testOpts)
			}
			other, _ := testKey("b")
			if s.Verify(other) {
				t.Errorf("Verify with another key: got true, want false")
			}
			if s.Verify(pub[:31]) {
				t.Errorf("Verify with a short key: got true, want false")
			}
		})
	}
}

func TestSign_Headers(t *testing.T) {
	_, priv := testKey("a")
	req, _ := http.NewRequest("POST", "https://api.example.com/v1/keys", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Signature", "stale=:AAAA:")
	body := []byte(`{"name":"ci"}`)
	if err := Sign(req, body, priv, testOpts); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	wantInput := `sig1=("@method" "@target-uri" "content-type" "content-digest");created=1700000000;expires=1700000300;keyid="ak_01J0TESTKEY";nonce="n0nce-0123456789abcdef";alg="ed25519";tag="keyledger-v1"`
	if got := req.Header.Get("Signature-Input"); got != wantInput {
		t.Errorf("Signature-Input:\ngot  %v\nwant %v", got, wantInput)
	}
	if got, want := req.Header.Get("Content-Digest"), ContentDigest(body); got != want {
		t.Errorf("Content-Digest: got %v, want %v", got, want)
	}
	if got := req.Header.Values("Signature"); len(got) != 1 || !strings.HasPrefix(got[0], "sig1=:") {
		t.Errorf("Signature: got %v, want one sig1 member", got)
	}

	// What the verifier signs over is what the header says.
	s, err := ParseFor(req.Header, Target{"POST", "https", "api.example.com", "/v1/keys"})
	if err != nil {
		t.Fatalf("ParseFor: %v", err)
	}
	params := strings.TrimPrefix(wantInput, "sig1=")
	if !bytes.HasSuffix(s.base, []byte("\n\"@signature-params\": "+params)) {
		t.Errorf("signature base: got %q, want it to end with the header's inner list", s.base)
	}

	// Signing again without a body drops the stale digest.
	if err := Sign(req, nil, priv, testOpts); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if got := req.Header.Values("Content-Digest"); got != nil {
		t.Errorf("Content-Digest after signing no body: got %v, want none", got)
	}
}

func TestSign_Defaults(t *testing.T) {
	pub, priv := testKey("a")
	req, _ := http.NewRequest("GET", "https://api.example.com/", nil)
	before := time.Now().Truncate(time.Second)
	if err := Sign(req, nil, priv, SignOptions{KeyID: "ak_1"}); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	r, body := serverRequest(t, req)
	s, err := check(r, body, pub)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if s.Created.Before(before) || s.Created.After(time.Now()) {
		t.Errorf("created: got %v, want about now", s.Created)
	}
	if got := s.Expires.Sub(s.Created); got != DefaultValidity {
		t.Errorf("validity: got %v, want %v", got, DefaultValidity)
	}
	if len(s.Nonce) != 43 {
		t.Errorf("nonce length: got %v, want %v", len(s.Nonce), 43)
	}
	if err := s.CheckTime(time.Now(), 0, DefaultValidity); err != nil {
		t.Errorf("CheckTime: got %v, want nil", err)
	}

	req2, _ := http.NewRequest("GET", "https://api.example.com/", nil)
	if err := Sign(req2, nil, priv, SignOptions{KeyID: "ak_1"}); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	r2, _ := serverRequest(t, req2)
	s2, err := Parse(r2)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if s2.Nonce == s.Nonce {
		t.Errorf("nonces of two signatures: got %v twice, want them different", s.Nonce)
	}
}

func TestSign_Errors(t *testing.T) {
	_, priv := testKey("a")
	tests := []struct {
		name string
		url  string
		key  ed25519.PrivateKey
		opts func(o *SignOptions)
	}{
		{"ShortKey", "https://a.example/", priv[:32], nil},
		{"NoKeyID", "https://a.example/", priv, func(o *SignOptions) { o.KeyID = "" }},
		{"KeyIDNotASCII", "https://a.example/", priv, func(o *SignOptions) { o.KeyID = "ak_é" }},
		{"ExpiresBeforeCreated", "https://a.example/", priv, func(o *SignOptions) { o.Expires = o.Created.Add(-time.Second) }},
		{"ExpiresSameSecond", "https://a.example/", priv, func(o *SignOptions) { o.Expires = o.Created.Add(500 * time.Millisecond) }},
		{"NonceShort", "https://a.example/", priv, func(o *SignOptions) { o.Nonce = "short" }},
		{"NonceBadChar", "https://a.example/", priv, func(o *SignOptions) { o.Nonce = "0123456789abcdef\"" }},
		{"RelativeURL", "/v1/keys", priv, nil},
		{"FTP", "ftp://a.example/", priv, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", tt.url, nil)
			if err != nil {
				t.Fatalf("NewRequest: %v", err)
			}
			opts := testOpts
			if tt.opts != nil {
				tt.opts(&opts)
			}
			if err := Sign(req, []byte("body"), tt.key, opts); err == nil {
				t.Fatalf("Sign: got nil error, want one")
			}
			if len(req.Header) != 0 {
				t.Errorf("headers after a failed Sign: got %v, want none", req.Header)
			}
		})
	}
}

// TestSign_Tamper changes one thing of a signed request after signing and
// expects the server to refuse it.
func TestSign_Tamper(t *testing.T) {
	pub, priv := testKey("a")
	tests := []struct {
		name   string
		change func(r *http.Request, body []byte) []byte
		want   error
	}{
		{"Method", func(r *http.Request, b []byte) []byte { r.Method = "PUT"; return b }, errBadSignature},
		{"Path", func(r *http.Request, b []byte) []byte { r.URL.Path = "/v1/keys/other"; return b }, errBadSignature},
		{"Query", func(r *http.Request, b []byte) []byte { r.URL.RawQuery = "dry_run=0"; return b }, errBadSignature},
		{"QueryAdded", func(r *http.Request, b []byte) []byte { r.URL.RawQuery += "&x=1"; return b }, errBadSignature},
		{"Host", func(r *http.Request, b []byte) []byte { r.Host = "evil.example.com"; return b }, errBadSignature},
		{"Scheme", func(r *http.Request, b []byte) []byte { r.TLS = nil; return b }, errBadSignature},
		{"BodyByte", func(r *http.Request, b []byte) []byte {
			c := bytes.Clone(b)
			c[3] ^= 1
			return c
		}, ErrDigest},
		{"BodyDropped", func(r *http.Request, b []byte) []byte { return nil }, ErrDigest},
		{"ContentType", func(r *http.Request, b []byte) []byte { r.Header.Set("Content-Type", "text/plain"); return b }, errBadSignature},
		{"ContentDigestReplaced", func(r *http.Request, b []byte) []byte {
			c := []byte(`{"name":"evil"}`)
			r.Header.Set("Content-Digest", ContentDigest(c))
			return c
		}, errBadSignature},
		{"ContentDigestRemoved", func(r *http.Request, b []byte) []byte { r.Header.Del("Content-Digest"); return b }, ErrMalformed},
		{"ContentTypeRemoved", func(r *http.Request, b []byte) []byte { r.Header.Del("Content-Type"); return b }, ErrMalformed},
		{"SignatureRemoved", func(r *http.Request, b []byte) []byte { r.Header.Del("Signature"); return b }, ErrMalformed},
		{"BothRemoved", func(r *http.Request, b []byte) []byte {
			r.Header.Del("Signature")
			r.Header.Del("Signature-Input")
			return b
		}, ErrMissing},
		{"Nonce", func(r *http.Request, b []byte) []byte {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), "n0nce", "nonce", 1))
			return b
		}, errBadSignature},
		{"Expires", func(r *http.Request, b []byte) []byte {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), "expires=1700000300", "expires=1900000300", 1))
			return b
		}, errBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := clientRequest(t, "POST", "https://api.example.com/v1/keys?dry_run=1", "application/json", []byte(`{"name":"ci"}`), priv)
			r, body := serverRequest(t, req)
			if _, err := check(r, body, pub); err != nil {
				t.Fatalf("check before the change: %v", err)
			}
			body = tt.change(r, body)
			if _, err := check(r, body, pub); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// handSigned returns fields with a Signature-Input member label=inner and a
// valid Signature over it for target, whatever the profile says of inner, so
// that a refusal can only come from the profile (or from inner not being a
// valid inner list: then the signature is zeros).
func handSigned(t *testing.T, target Target, h http.Header, label, inner string, priv ed25519.PrivateKey) http.Header {
	t.Helper()
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	sig := make([]byte, ed25519.SignatureSize) // for what cannot be signed
	if d, err := parseDictionary(label + "=" + inner); err == nil && len(d) == 1 && d[0].inner {
		var comps []string
		for _, it := range d[0].list {
			comps = append(comps, it.value.str)
		}
		nt, err := target.normalized()
		if err != nil {
			t.Fatalf("target: %v", err)
		}
		if base, err := signatureBase(comps, nt, h, serializeInnerList(d[0].list, d[0].params)); err == nil {
			sig = ed25519.Sign(priv, base)
		}
	}
	h.Add("Signature-Input", label+"="+inner)
	h.Add("Signature", label+"=:"+base64.StdEncoding.EncodeToString(sig)+":")
	return h
}

func TestParseFor_Profile(t *testing.T) {
	pub, priv := testKey("a")
	const (
		params = `;created=1700000000;expires=1700000300;keyid="ak_1";nonce="0123456789abcdef";tag="keyledger-v1"`
		target = `("@method" "@target-uri")`
	)
	plain := Target{"GET", "https", "api.example.com", "/v1/keys"}
	query := Target{"GET", "https", "api.example.com", "/v1/keys?limit=1"}
	withType := http.Header{"Content-Type": {"application/json"}}
	withDigest := http.Header{"Content-Digest": {ContentDigest([]byte("x"))}}
	tests := []struct {
		name   string
		target Target
		h      http.Header
		inner  string
		ok     bool
	}{
		{"OK", plain, nil, target + params, true},
		{"OKAlg", plain, nil, target + params + `;alg="ed25519"`, true},
		{"OKParamsReordered", plain, nil, `("@method" "@target-uri");tag="keyledger-v1";nonce="0123456789abcdef";keyid="ak_1";expires=1700000300;created=1700000000`, true},
		{"OKAuthorityPath", plain, nil, `("@method" "@authority" "@path")` + params, true},
		{"OKAuthorityPathQuery", query, nil, `("@authority" "@path" "@query" "@method" "@scheme")` + params, true},
		{"OKRequestTargetExtra", query, nil, `("@method" "@target-uri" "@request-target")` + params, true},
		{"OKOtherFields", plain, http.Header{"Date": {"x"}, "X-Foo": {" a ", "b"}}, `("@method" "@target-uri" "date" "x-foo")` + params, true},
		{"OKContentType", plain, withType, `("@method" "@target-uri" "content-type")` + params, true},
		{"OKContentDigest", plain, withDigest, `("@method" "@target-uri" "content-digest")` + params, true},
		{"OKSpaces", plain, nil, `(  "@method"   "@target-uri" )` + params, true},

		{"NoMethod", plain, nil, `("@target-uri")` + params, false},
		{"NoTarget", plain, nil, `("@method")` + params, false},
		{"AuthorityNoPath", plain, nil, `("@method" "@authority")` + params, false},
		{"PathNoAuthority", plain, nil, `("@method" "@path")` + params, false},
		{"QueryNotCovered", query, nil, `("@method" "@authority" "@path")` + params, false},
		{"ContentDigestNotCovered", plain, withDigest, target + params, false},
		{"ContentTypeNotCovered", plain, withType, target + params, false},
		{"CoveredFieldMissing", plain, nil, `("@method" "@target-uri" "content-type")` + params, false},
		{"UnknownDerived", plain, nil, `("@method" "@target-uri" "@query-param")` + params, false},
		{"Status", plain, nil, `("@method" "@target-uri" "@status")` + params, false},
		{"SignatureParams", plain, nil, `("@method" "@target-uri" "@signature-params")` + params, false},
		{"UpperCaseField", plain, withType, `("@method" "@target-uri" "Content-Type")` + params, false},
		{"ComponentParams", plain, nil, `("@method";req "@target-uri")` + params, false},
		{"ComponentToken", plain, nil, `(method "@target-uri")` + params, false},
		{"ComponentTwice", plain, nil, `("@method" "@target-uri" "@method")` + params, false},
		{"EmptyComponent", plain, nil, `("@method" "@target-uri" "")` + params, false},
		{"TooManyComponents", plain, nil, manyFields(31) + params, false},

		{"NoCreated", plain, nil, target + `;expires=1700000300;keyid="ak_1";nonce="0123456789abcdef";tag="keyledger-v1"`, false},
		{"NoExpires", plain, nil, target + `;created=1700000000;keyid="ak_1";nonce="0123456789abcdef";tag="keyledger-v1"`, false},
		{"NoKeyID", plain, nil, target + `;created=1700000000;expires=1700000300;nonce="0123456789abcdef";tag="keyledger-v1"`, false},
		{"NoNonce", plain, nil, target + `;created=1700000000;expires=1700000300;keyid="ak_1";tag="keyledger-v1"`, false},
		{"NoTag", plain, nil, target + `;created=1700000000;expires=1700000300;keyid="ak_1";nonce="0123456789abcdef"`, false},
		{"WrongTag", plain, nil, target + `;created=1700000000;expires=1700000300;keyid="ak_1";nonce="0123456789abcdef";tag="keyledger-v2"`, false},
		{"TagToken", plain, nil, target + `;created=1700000000;expires=1700000300;keyid="ak_1";nonce="0123456789abcdef";tag=keyledger-v1`, false},
		{"AlgHMAC", plain, nil, target + params + `;alg="hmac-sha256"`, false},
		{"AlgToken", plain, nil, target + params + `;alg=ed25519`, false},
		{"UnknownParam", plain, nil, target + params + `;foo=1`, false},
		{"UnknownBooleanParam", plain, nil, target + params + `;foo`, false},
		{"ExpiresEqualsCreated", plain, nil, target + `;created=1700000000;expires=1700000000;keyid="ak_1";nonce="0123456789abcdef";tag="keyledger-v1"`, false},
		{"ExpiresBeforeCreated", plain, nil, target + `;created=1700000000;expires=1600000000;keyid="ak_1";nonce="0123456789abcdef";tag="keyledger-v1"`, false},
		{"CreatedNegative", plain, nil, target + `;created=-5;expires=1700000000;keyid="ak_1";nonce="0123456789abcdef";tag="keyledger-v1"`, false},
		{"CreatedString", plain, nil, target + `;created="1700000000";expires=1700000300;keyid="ak_1";nonce="0123456789abcdef";tag="keyledger-v1"`, false},
		{"CreatedDecimal", plain, nil, target + `;created=1700000000.5;expires=1700000300;keyid="ak_1";nonce="0123456789abcdef";tag="keyledger-v1"`, false},
		{"KeyIDEmpty", plain, nil, target + `;created=1700000000;expires=1700000300;keyid="";nonce="0123456789abcdef";tag="keyledger-v1"`, false},
		{"KeyIDToken", plain, nil, target + `;created=1700000000;expires=1700000300;keyid=ak_1;nonce="0123456789abcdef";tag="keyledger-v1"`, false},
		{"NonceShort", plain, nil, target + `;created=1700000000;expires=1700000300;keyid="ak_1";nonce="0123456789abcde";tag="keyledger-v1"`, false},
		{"NonceLong", plain, nil, target + `;created=1700000000;expires=1700000300;keyid="ak_1";nonce="` + strings.Repeat("a", 129) + `";tag="keyledger-v1"`, false},
		{"NonceBadChar", plain, nil, target + `;created=1700000000;expires=1700000300;keyid="ak_1";nonce="0123456789abcdef!";tag="keyledger-v1"`, false},
		{"RepeatedParam", plain, nil, target + params + `;created=1700000001`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := handSigned(t, tt.target, tt.h, "sig1", tt.inner, priv)
			s, err := ParseFor(h, tt.target)
			if !tt.ok {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %v, want %v", err, ErrMalformed)
				}
				if s != nil {
					t.Errorf("signature with an error: got %+v, want nil", s)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if !s.Verify(pub) {
				t.Errorf("Verify: got false, want true")
			}
		})
	}
}

// manyFields returns an inner list of @method, @target-uri and n distinct
// fields.
func manyFields(n int) string {
	var b strings.Builder
	b.WriteString(`("@method" "@target-uri"`)
	for i := range n {
		fmt.Fprintf(&b, ` "x-h%d"`, i)
	}
	b.WriteString(")")
	return b.String()
}

func TestParseFor_Labels(t *testing.T) {
	pub, priv := testKey("a")
	const ours = `("@method" "@target-uri");created=1700000000;expires=1700000300;keyid="ak_1";nonce="0123456789abcdef";tag="keyledger-v1"`
	const foreign = `("@method" "@authority");created=1;keyid="other"`
	target := Target{"GET", "https", "api.example.com", "/"}
	sig := ":" + base64.StdEncoding.EncodeToString(make([]byte, 64)) + ":"

	t.Run("OtherLabel", func(t *testing.T) {
		h := handSigned(t, target, nil, "kl", ours, priv)
		s, err := ParseFor(h, target)
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if s.Label != "kl" || !s.Verify(pub) {
			t.Errorf("got label %v and verified %v, want kl and true", s.Label, s.Verify(pub))
		}
	})
	t.Run("AmongForeign", func(t *testing.T) {
		h := handSigned(t, target, nil, "sig1", ours, priv)
		h.Set("Signature-Input", "proxy="+foreign+", "+h.Get("Signature-Input")+", flag")
		h.Add("Signature", "proxy="+sig)
		s, err := ParseFor(h, target)
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if s.Label != "sig1" || !s.Verify(pub) {
			t.Errorf("got label %v and verified %v, want sig1 and true", s.Label, s.Verify(pub))
		}
	})

	bad := []struct {
		name   string
		input  string
		sig    string
		target Target
	}{
		{"TwoTagged", "a=" + ours + ", b=" + ours, "a=" + sig + ", b=" + sig, target},
		{"OnlyForeign", "proxy=" + foreign, "proxy=" + sig, target},
		{"RepeatedKey", "sig1=" + ours + ", sig1=" + ours, "sig1=" + sig, target},
		{"RepeatedKeyInSignature", "sig1=" + ours, "sig1=" + sig + ", sig1=" + sig, target},
		{"NoSignatureMember", "sig1=" + ours, "other=" + sig, target},
		{"SignatureShort", "sig1=" + ours, "sig1=:" + base64.StdEncoding.EncodeToString(make([]byte, 63)) + ":", target},
		{"SignatureLong", "sig1=" + ours, "sig1=:" + base64.StdEncoding.EncodeToString(make([]byte, 65)) + ":", target},
		{"SignatureString", "sig1=" + ours, `sig1="abc"`, target},
		{"SignatureInnerList", "sig1=" + ours, "sig1=(" + sig + ")", target},
		{"SignatureParams", "sig1=" + ours, "sig1=" + sig + ";x=1", target},
		{"SignatureBadBase64", "sig1=" + ours, "sig1=:!!!!:", target},
		{"InputNotInnerList", `sig1="@method";tag="keyledger-v1"`, "sig1=" + sig, target},
		{"InputTrailingComma", "sig1=" + ours + ",", "sig1=" + sig, target},
		{"InputUnterminated", `sig1=("@method" "@target-uri"`, "sig1=" + sig, target},
		{"InputBadEscape", `sig1=("@me\thod");tag="keyledger-v1"`, "sig1=" + sig, target},
		{"InputUpperKey", "SIG1=" + ours, "SIG1=" + sig, target},
		{"InputTooLong", "sig1=" + ours + ", " + strings.Repeat("x", maxHeaderLen), "sig1=" + sig, target},
		{"SignatureTooLong", "sig1=" + ours, "sig1=" + sig + ", x=" + strings.Repeat("a", maxHeaderLen), target},
		{"TargetRelative", "sig1=" + ours, "sig1=" + sig, Target{"GET", "https", "api.example.com", "v1"}},
		{"TargetNoHost", "sig1=" + ours, "sig1=" + sig, Target{"GET", "https", "", "/"}},
		{"TargetScheme", "sig1=" + ours, "sig1=" + sig, Target{"GET", "ws", "api.example.com", "/"}},
		{"TargetMethodSpace", "sig1=" + ours, "sig1=" + sig, Target{"G T", "https", "api.example.com", "/"}},
		{"TargetNewline", "sig1=" + ours, "sig1=" + sig, Target{"GET", "https", "api.example.com", "/\n\"x\": y"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Signature-Input": {tt.input}, "Signature": {tt.sig}}
			if _, err := ParseFor(h, tt.target); !errors.Is(err, ErrMalformed) {
				t.Errorf("got %v, want %v", err, ErrMalformed)
			}
		})
	}

	t.Run("ErrMissing", func(t *testing.T) {
		if _, err := ParseFor(http.Header{}, target); !errors.Is(err, ErrMissing) {
			t.Errorf("got %v, want %v", err, ErrMissing)
		}
	})
	t.Run("MultipleFieldLines", func(t *testing.T) {
		// Two lines of one field are one Dictionary (RFC 8941 section 4.2).
		h := handSigned(t, target, nil, "sig1", ours, priv)
		h.Add("Signature-Input", "proxy="+foreign)
		h.Add("Signature", "proxy="+sig)
		if _, err := ParseFor(h, target); err != nil {
			t.Errorf("got %v, want nil", err)
		}
		h.Add("Signature", "sig1="+sig)
		if _, err := ParseFor(h, target); !errors.Is(err, ErrMalformed) {
			t.Errorf("a label repeated across lines: got %v, want %v", err, ErrMalformed)
		}
	})
}

// TestParse_Body checks that Parse, which sees the request, insists on a
// covered digest whenever the request may have a body.
func TestParse_Body(t *testing.T) {
	pub, priv := testKey("a")
	const inner = `("@method" "@target-uri");created=1700000000;expires=1700000300;keyid="ak_1";nonce="0123456789abcdef";tag="keyledger-v1"`
	for _, tt := range []struct {
		name          string
		contentLength int64
		ok            bool
	}{
		{"NoBody", 0, true},
		{"Body", 5, false},
		{"Chunked", -1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("POST", "http://api.example.com/v1/keys", nil)
			r.ContentLength = tt.contentLength
			r.Header = handSigned(t, TargetOf(r), nil, "sig1", inner, priv)
			s, err := Parse(r)
			if tt.ok {
				if err != nil || !s.Verify(pub) {
					t.Errorf("got %v, want a valid signature", err)
				}
				if err := s.CheckBody([]byte("x")); !errors.Is(err, ErrMalformed) {
					t.Errorf("CheckBody with an uncovered body: got %v, want %v", err, ErrMalformed)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("got %v, want %v", err, ErrMalformed)
			}
		})
	}
}

// TestParseFor_ForwardAuth verifies a request the way a forward-auth
// endpoint does: from the fields of a subrequest and what the proxy says of
// the original request.
func TestParseFor_ForwardAuth(t *testing.T) {
	pub, priv := testKey("a")
	body := []byte(`{"name":"ci"}`)
	orig := clientRequest(t, "POST", "https://api.example.com/v1/keys?dry_run=1", "application/json", body, priv)

	sub, _ := http.NewRequest("GET", "http://keyledger:8080/auth", nil)
	for k, v := range orig.Header {
		sub.Header[k] = v
	}
	sub.Header.Set("X-Forwarded-Method", "POST")
	sub.Header.Set("X-Forwarded-Proto", "https")
	sub.Header.Set("X-Forwarded-Host", "api.example.com")
	sub.Header.Set("X-Forwarded-Uri", "/v1/keys?dry_run=1")
	target := Target{
		Method:     sub.Header.Get("X-Forwarded-Method"),
		Scheme:     sub.Header.Get("X-Forwarded-Proto"),
		Authority:  sub.Header.Get("X-Forwarded-Host"),
		RequestURI: sub.Header.Get("X-Forwarded-Uri"),
	}
	s, err := ParseFor(sub.Header, target)
	if err != nil {
		t.Fatalf("ParseFor: %v", err)
	}
	if err := s.CheckBody(body); err != nil {
		t.Errorf("CheckBody: got %v, want nil", err)
	}
	if !s.Verify(pub) {
		t.Errorf("Verify: got false, want true")
	}

	// Verifying against the subrequest itself fails: it is another request.
	s, err = Parse(sub)
	if err == nil && s.Verify(pub) {
		t.Errorf("Parse of the subrequest: got a valid signature, want none")
	}
}

// TestTargetOf_SchemeOverride covers a server behind a proxy that
// terminates TLS.
func TestTargetOf_SchemeOverride(t *testing.T) {
	pub, priv := testKey("a")
	req := clientRequest(t, "GET", "https://api.example.com/v1/keys", "", nil, priv)
	r, _ := serverRequest(t, req)
	r.TLS = nil
	target := TargetOf(r)
	if target.Scheme != "http" {
		t.Fatalf("scheme: got %v, want %v", target.Scheme, "http")
	}
	if s, err := ParseFor(r.Header, target); err != nil || s.Verify(pub) {
		t.Errorf("as http: got %v and a verifying signature, want it not to verify", err)
	}
	target.Scheme = "https"
	s, err := ParseFor(r.Header, target)
	if err != nil || !s.Verify(pub) {
		t.Errorf("as https: got %v, want a valid signature", err)
	}
}

func TestCheckContentDigest(t *testing.T) {
	body := []byte("hello")
	sha256OK := ContentDigest(body)
	tests := []struct {
		name   string
		header string
		body   []byte
		want   error
	}{
		{"OK", sha256OK, body, nil},
		{"OKEmptyBody", ContentDigest(nil), nil, nil},
		{"OKUnknownAlgorithms", "md5=:AAAA:, " + sha256OK + ", new-alg=?1", body, nil},
		{"OKParams", sha256OK + ";x=1", body, nil},
		{"Mismatch", sha256OK, []byte("hellO"), ErrDigest},
		{"NoSHA256", "sha-512=:" + base64.StdEncoding.EncodeToString(make([]byte, 64)) + ":", body, ErrDigest},
		{"WrongSHA512", sha256OK + ", sha-512=:" + base64.StdEncoding.EncodeToString(make([]byte, 64)) + ":", body, ErrDigest},
		{"Empty", "", body, ErrDigest},
		{"ShortDigest", "sha-256=:AAAA:", body, ErrDigest},
		{"UpperCaseAlgorithm", strings.ToUpper(sha256OK[:7]) + sha256OK[7:], body, ErrMalformed},
		{"NotBytes", `sha-256="abc"`, body, ErrMalformed},
		{"InnerList", "sha-256=(" + sha256OK[8:] + ")", body, ErrMalformed},
		{"RepeatedAlgorithm", sha256OK + ", " + sha256OK, body, ErrMalformed},
		{"LegacyDigest", "SHA-256=" + sha256OK[9:len(sha256OK)-1], body, ErrMalformed},
		{"TooLong", sha256OK + ", x=" + strings.Repeat("a", maxHeaderLen), body, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckContentDigest(tt.header, tt.body)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignature_CheckTime(t *testing.T) {
	s := &Signature{Created: testCreated, Expires: testExpires}
	tests := []struct {
		name        string
		now         time.Time
		skew, max   time.Duration
		wantExpired bool
	}{
		{"AtCreated", testCreated, 0, 0, false},
		{"Within", testCreated.Add(time.Minute), 0, 0, false},
		{"JustBeforeExpires", testExpires.Add(-time.Nanosecond), 0, 0, false},
		{"AtExpires", testExpires, 0, 0, true},
		{"AfterExpires", testExpires.Add(time.Second), 0, 0, true},
		{"AfterExpiresWithinSkew", testExpires.Add(time.Second), 5 * time.Second, 0, false},
		{"BeforeCreated", testCreated.Add(-time.Second), 0, 0, true},
		{"BeforeCreatedWithinSkew", testCreated.Add(-time.Second), 5 * time.Second, 0, false},
		{"ValidityAtMax", testCreated, 0, 5 * time.Minute, false},
		{"ValidityOverMax", testCreated, 0, time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CheckTime(tt.now, tt.skew, tt.max)
			if got := errors.Is(err, ErrExpired); got != tt.wantExpired || !tt.wantExpired && err != nil {
				t.Errorf("got %v, want expired %v", err, tt.wantExpired)
			}
		})
	}
}

// TestErrors_NoSecrets checks that refusals do not echo the signature or
// long attacker-chosen text.
func TestErrors_NoSecrets(t *testing.T) {
	_, priv := testKey("a")
	req := clientRequest(t, "POST", "https://api.example.com/v1/keys", "application/json", []byte("{}"), priv)
	r, _ := serverRequest(t, req)
	sig := r.Header.Get("Signature")
	long := strings.Repeat("z", 500)
	r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `"@method"`, `"@`+long+`"`, 1))
	_, err := Parse(r)
	if err == nil {
		t.Fatalf("Parse: got nil error, want one")
	}
	msg := err.Error()
	if strings.Contains(msg, sig[6:20]) || len(msg) > 200 || msg != strings.ToLower(msg) {
		t.Errorf("error message: got %q, want a short lower-case one without the signature", msg)
	}
}

// TestSign_AdminTag: an admin signature and an API key signature are told
// apart by their tag, so neither is accepted for the other, and the kept
// base and input verify on their own.
func TestSign_AdminTag(t *testing.T) {
	pub, priv := testKey("a")
	req, _ := http.NewRequest("DELETE", "https://api.example.com/admin/keys/ak_1", nil)
	opts := testOpts
	opts.Tag = AdminTag
	if err := Sign(req, []byte(`{"reason":"leaked"}`), priv, opts); err != nil {
		t.Fatal(err)
	}
	target := Target{"DELETE", "https", "api.example.com", "/admin/keys/ak_1"}
	if _, err := ParseFor(req.Header, target); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseFor of an admin signature: got %v, want ErrMalformed", err)
	}
	s, err := ParseForTag(req.Header, target, AdminTag)
	if err != nil || !s.Verify(pub) {
		t.Fatalf("ParseForTag: got %v (verified %v), want a valid signature", err, s != nil && s.Verify(pub))
	}
	if !ed25519.Verify(pub, s.Base(), s.Bytes()) {
		t.Errorf("the kept base and signature do not verify")
	}
	if !strings.HasSuffix(string(s.Base()), `"@signature-params": `+s.Input()) || !strings.Contains(s.Input(), `tag="keyledger-admin-v1"`) {
		t.Errorf("base %q does not end with input %q", s.Base(), s.Input())
	}
	if _, err := ParseForTag(req.Header, target, Tag); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseForTag(Tag) of an admin signature: got %v, want ErrMalformed", err)
	}
	opts.Tag = "other"
	if err := Sign(req, nil, priv, opts); err == nil {
		t.Errorf("Sign with an unknown tag: got nil, want an error")
	}
}
