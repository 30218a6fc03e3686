package usage

import (
	"encoding/json"
	"testing"
)

// FuzzParseReport: any bytes from the usage stream either parse into a
// report that passes its own checks again after a round trip, or are
// refused; nothing panics.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(`{"v":1,"node":"n1","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:10Z","keys":[{"api_key":"ak_01J00000000000000000000001","valid":3,"refused":{"revoked":1},"last_used":"2026-01-01T00:00:05Z"}]}`))
	f.Add([]byte(`{"v":1,"node":"n1","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:10Z","keys":[]}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"v":1,"node":"a.b","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:10Z"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseReport(again); err != nil {
			t.Fatalf("a parsed report does not parse again: %v\n%s", err, again)
		}
	})
}
