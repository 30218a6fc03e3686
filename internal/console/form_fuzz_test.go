package console

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzKeyForm feeds the key form's parsers what a hostile browser could
// post: they never panic, and what they accept is what the API expects
// (metadata a JSON object, no empty scope, counts that parsed).
func FuzzKeyForm(f *testing.F) {
	f.Add("orders:read, orders:write", `{"team":"billing"}`, "2030-01-02T15:04", "100", "1m", "1000", "10", "30d")
	f.Add("", "", "", "", "", "", "", "")
	f.Add(" , ,\n\t", "[1]", "2030-01-02T15:04:05Z", "-1", "", "18446744073709551616", "x", "")
	f.Add("*", `{"a":{"b":[1,2]}}`, "tomorrow", "0", "1y", "0", "", "1m")
	f.Add("a\x00b", "{\"a\":1}x", "2030-13-45T99:99", "1e3", "1d", " 5 ", "7", "24h")
	f.Fuzz(func(t *testing.T, scopes, metadata, expires, rate, window, credits, refill, every string) {
		form := keyForm{Scopes: scopes, Metadata: metadata, ExpiresAt: expires, RateLimit: rate, RateWindow: window,
			Credits: credits, RefillAmount: refill, RefillEvery: every}
		req, err := form.createRequest()
		if err != nil {
			if _, ok := err.(formError); !ok {
				t.Fatalf("error %v is not a form error", err)
			}
			return
		}
		for _, s := range req.Scopes {
			if s == "" || strings.ContainsAny(s, ", \n\r\t") {
				t.Fatalf("scope %q holds a separator", s)
			}
		}
		if req.Metadata != nil {
			var m map[string]any
			if json.Unmarshal(req.Metadata, &m) != nil {
				t.Fatalf("accepted metadata %q is not a JSON object", req.Metadata)
			}
		}
		if req.RateLimit != nil && req.RateLimit.Window == "" {
			t.Fatal("a rate limit without a window")
		}
		if req.Credits != nil && req.Credits.Refill != nil && req.Credits.Refill.Interval == "" {
			t.Fatal("a refill without an interval")
		}
	})
}
