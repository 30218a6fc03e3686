package httpsig

import (
	"bytes"
	"net/http"
	"testing"
)

// benchBody is a typical small JSON request body.
var benchBody = []byte(`{"name":"deploy bot","scopes":["keys:read","keys:write"],"expires_in":86400}`)

func BenchmarkSign(b *testing.B) {
	_, priv := testKey("a")
	req, _ := http.NewRequest("POST", "https://api.example.com/v1/keys", bytes.NewReader(benchBody))
	req.Header.Set("Content-Type", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		if err := Sign(req, benchBody, priv, testOpts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is a server's share of a small signed POST: parse, check
// the body's digest, verify.
func BenchmarkVerify(b *testing.B) {
	pub, priv := testKey("a")
	req, _ := http.NewRequest("POST", "https://api.example.com/v1/keys", nil)
	req.Header.Set("Content-Type", "application/json")
	if err := Sign(req, benchBody, priv, testOpts); err != nil {
		b.Fatal(err)
	}
	target := Target{Method: "POST", Scheme: "https", Authority: "api.example.com", RequestURI: "/v1/keys"}
	b.ReportAllocs()
	for b.Loop() {
		s, err := ParseFor(req.Header, target)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.CheckBody(benchBody); err != nil {
			b.Fatal(err)
		}
		if !s.Verify(pub) {
			b.Fatal("signature does not verify")
		}
	}
}
