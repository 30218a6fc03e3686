package httpsig

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
)

// FuzzParse feeds both signature fields, a Content-Digest field and a
// request target to ParseFor: no panic, only this package's errors, and a
// signature that parses has a base ending with its own parameters, checks
// a body and verifies (to false) without trouble. More seeds are in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	_, priv := testKey("a")
	req, _ := http.NewRequest("POST", "https://api.example.com/v1/keys?dry_run=1", nil)
	req.Header.Set("Content-Type", "application/json")
	if err := Sign(req, []byte(`{"name":"ci"}`), priv, testOpts); err != nil {
		f.Fatalf("Sign: %v", err)
	}
	f.Add(req.Header.Get("Signature-Input"), req.Header.Get("Signature"), req.Header.Get("Content-Digest"), "/v1/keys?dry_run=1")
	f.Add(`sig1=("@method" "@authority" "@path" "@query");created=1;expires=2;keyid="k";nonce="0123456789abcdef";tag="keyledger-v1"`, "sig1=:"+string(bytes.Repeat([]byte("A"), 86))+"==:", "", "/?")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, input, signature, digest, requestURI string) {
		h := http.Header{}
		if input != "" {
			h.Set("Signature-Input", input)
		}
		if signature != "" {
			h.Set("Signature", signature)
		}
		if digest != "" {
			h.Set("Content-Digest", digest)
		}
		h.Set("Content-Type", "application/json")
		target := Target{Method: "POST", Scheme: "https", Authority: "api.example.com", RequestURI: requestURI}
		s, err := ParseFor(h, target)
		if err != nil {
			if !errors.Is(err, ErrMissing) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseFor: got %v, want ErrMissing or ErrMalformed", err)
			}
			if s != nil {
				t.Fatalf("ParseFor: got %+v with an error, want nil", s)
			}
			return
		}
		if len(s.sig) != 64 || len(s.Components) == 0 || len(s.Components) > maxComponents {
			t.Fatalf("ParseFor(%q, %q): got %d-byte signature, %d components", input, signature, len(s.sig), len(s.Components))
		}
		if !bytes.Contains(s.base, []byte(`"@signature-params": (`)) {
			t.Fatalf("signature base %q has no @signature-params line", s.base)
		}
		if err := s.CheckBody([]byte("{}")); err != nil && !errors.Is(err, ErrDigest) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("CheckBody: got %v, want nil, ErrDigest or ErrMalformed", err)
		}
		other, _ := testKey("fuzz")
		_ = s.Verify(other)
		_ = s.Verify(nil)
	})
}

// FuzzCheckContentDigest: no panic, and only this package's errors.
func FuzzCheckContentDigest(f *testing.F) {
	f.Add(ContentDigest([]byte("hello")), []byte("hello"))
	f.Add("sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:, "+ContentDigest([]byte(`{"hello": "world"}`)), []byte(`{"hello": "world"}`))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := CheckContentDigest(header, body)
		if err != nil && !errors.Is(err, ErrDigest) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("got %v, want nil, ErrDigest or ErrMalformed", err)
		}
		if err == nil && CheckContentDigest(ContentDigest(body), body) != nil {
			t.Fatalf("ContentDigest(body) does not check")
		}
	})
}
