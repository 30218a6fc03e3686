package httpsig

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// The published test material of RFC 9421 and RFC 9530. These bypass the
// keyledger-v1 profile checks (the RFC's signature has no tag, nonce or
// expires) and test the signature base and algorithm directly.

// RFC 9421 appendix B.1.4, "Example Ed25519 Test Key".
const (
	rfcEd25519Public = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----`
	rfcEd25519Private = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----`
)

// rfcRequest returns the example request of RFC 9421 appendix B.2 as a
// server would see it.
func rfcRequest() (Target, http.Header, []byte) {
	t := Target{Method: "POST", Scheme: "https", Authority: "example.com", RequestURI: "/foo?param=Value&Pet=dog"}
	h := http.Header{}
	h.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Digest", "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:")
	h.Set("Content-Length", "18")
	return t, h, []byte(`{"hello": "world"}`)
}

func rfcKeys(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	block, _ := pem.Decode([]byte(rfcEd25519Public))
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	block, _ = pem.Decode([]byte(rfcEd25519Private))
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	return pub.(ed25519.PublicKey), priv.(ed25519.PrivateKey)
}

// TestRFC9421_B26 reproduces RFC 9421 appendix B.2.6, "Signing a Request
// Using ed25519".
func TestRFC9421_B26(t *testing.T) {
	const (
		input = `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`
		sig   = `sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:`
		// The RFC shows it wrapped per RFC 8792; these are its lines.
		wantBase = `"date": Tue, 20 Apr 2021 02:07:55 GMT` + "\n" +
			`"@method": POST` + "\n" +
			`"@path": /foo` + "\n" +
			`"@authority": example.com` + "\n" +
			`"content-type": application/json` + "\n" +
			`"content-length": 18` + "\n" +
			`"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`
	)
	target, h, _ := rfcRequest()
	pub, priv := rfcKeys(t)

	inputs, err := parseDictionary(input)
	if err != nil {
		t.Fatalf("parse signature-input: %v", err)
	}
	m, ok := inputs.get("sig-b26")
	if !ok || !m.inner {
		t.Fatalf("signature-input: got %+v, want an inner list labelled sig-b26", inputs)
	}
	var components []string
	for _, it := range m.list {
		components = append(components, it.value.str)
	}
	nt, err := target.normalized()
	if err != nil {
		t.Fatalf("target: %v", err)
	}
	base, err := signatureBase(components, nt, h, serializeInnerList(m.list, m.params))
	if err != nil {
		t.Fatalf("signatureBase: %v", err)
	}
	if string(base) != wantBase {
		t.Fatalf("signature base:\ngot  %q\nwant %q", base, wantBase)
	}

	sigs, err := parseDictionary(sig)
	if err != nil {
		t.Fatalf("parse signature: %v", err)
	}
	sm, _ := sigs.get("sig-b26")
	published := sm.value.bytes
	s := &Signature{base: base, sig: published}
	if !s.Verify(pub) {
		t.Errorf("Verify with the published key: got false, want true")
	}
	if got := ed25519.Sign(priv, base); !bytes.Equal(got, published) {
		t.Errorf("signing the base with the published key:\ngot  %s\nwant %s",
			base64.StdEncoding.EncodeToString(got), base64.StdEncoding.EncodeToString(published))
	}

	// The profile refuses it: it carries no keyledger-v1 tag.
	h.Set("Signature-Input", input)
	h.Set("Signature", sig)
	if _, err := ParseFor(h, target); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseFor: got %v, want %v", err, ErrMalformed)
	}
}

// TestRFC9530_Digest checks the example digests of RFC 9530 over the body
// of RFC 9421's example request.
func TestRFC9530_Digest(t *testing.T) {
	_, h, body := rfcRequest()
	const want256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
	if got := ContentDigest(body); got != want256 {
		t.Errorf("ContentDigest: got %v, want %v", got, want256)
	}
	both := want256 + ", " + h.Get("Content-Digest")
	if err := CheckContentDigest(both, body); err != nil {
		t.Errorf("CheckContentDigest(%q): got %v, want nil", both, err)
	}
	bad := want256 + ", " + strings.Replace(h.Get("Content-Digest"), "WZD", "XZD", 1)
	if err := CheckContentDigest(bad, body); !errors.Is(err, ErrDigest) {
		t.Errorf("CheckContentDigest with a wrong sha-512: got %v, want %v", err, ErrDigest)
	}
}

// TestComponentValue checks the derived components against the examples of
// RFC 9421 section 2.2, and field values against section 2.1.
func TestComponentValue(t *testing.T) {
	h := http.Header{}
	h.Add("X-Obs", "  leading and trailing  ")
	h.Add("Cache-Control", "max-age=60")
	h.Add("Cache-Control", "   must-revalidate")
	h.Add("X-Empty", "")
	tests := []struct {
		name   string
		target Target
		comp   string
		want   string
	}{
		{"Method", Target{"POST", "https", "www.example.com", "/path?param=value"}, "@method", "POST"},
		{"TargetURI", Target{"POST", "https", "www.example.com", "/path?param=value"}, "@target-uri", "https://www.example.com/path?param=value"},
		{"Authority", Target{"POST", "https", "www.example.com", "/path?param=value"}, "@authority", "www.example.com"},
		{"AuthorityLowerCased", Target{"POST", "https", "WWW.Example.COM", "/"}, "@authority", "www.example.com"},
		{"AuthorityDefaultPort", Target{"POST", "https", "www.example.com:443", "/"}, "@authority", "www.example.com"},
		{"AuthorityOtherPort", Target{"POST", "https", "www.example.com:8443", "/"}, "@authority", "www.example.com:8443"},
		{"AuthorityHTTPDefaultPort", Target{"POST", "http", "www.example.com:80", "/"}, "@authority", "www.example.com"},
		{"AuthorityIPv6", Target{"GET", "https", "[::1]:443", "/"}, "@authority", "[::1]"},
		{"Scheme", Target{"POST", "HTTP", "www.example.com", "/path?param=value"}, "@scheme", "http"},
		{"RequestTarget", Target{"POST", "https", "www.example.com", "/path?param=value"}, "@request-target", "/path?param=value"},
		{"Path", Target{"POST", "https", "www.example.com", "/path?param=value"}, "@path", "/path"},
		{"PathEmpty", Target{"GET", "https", "www.example.com", ""}, "@path", "/"},
		{"PathNotDecoded", Target{"GET", "https", "www.example.com", "/a%20b/c"}, "@path", "/a%20b/c"},
		{"Query", Target{"POST", "https", "www.example.com", "/path?param=value&foo=bar&baz=batman"}, "@query", "?param=value&foo=bar&baz=batman"},
		{"QueryNotDecoded", Target{"GET", "https", "www.example.com", "/path?queryString=%20x"}, "@query", "?queryString=%20x"},
		{"QueryAbsent", Target{"GET", "https", "www.example.com", "/path"}, "@query", "?"},
		{"FieldTrimmed", Target{"GET", "https", "a", "/"}, "x-obs", "leading and trailing"},
		{"FieldLinesJoined", Target{"GET", "https", "a", "/"}, "cache-control", "max-age=60, must-revalidate"},
		{"FieldEmpty", Target{"GET", "https", "a", "/"}, "x-empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nt, err := tt.target.normalized()
			if err != nil {
				t.Fatalf("normalized: %v", err)
			}
			got, err := componentValue(tt.comp, nt, h)
			if err != nil {
				t.Fatalf("componentValue: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	for _, comp := range []string{"@query-param", "@status", "@signature-params", "@x", "Content-Type", "x-missing", ""} {
		nt, _ := Target{"GET", "https", "a", "/"}.normalized()
		if _, err := componentValue(comp, nt, h); err == nil {
			t.Errorf("componentValue(%q): got nil error, want one", comp)
		}
	}
}
