package handlers

import "testing"

// BenchmarkDecodeStrict measures the strict decoding of typical request
// bodies, already read, into their request types.
func BenchmarkDecodeStrict(b *testing.B) {
	cases := []struct {
		name  string
		body  string
		fresh func() any
	}{
		{"Credentials", `{"email":"alice@example.com","password":"correct horse battery staple"}`, func() any { return new(credentialsRequest) }},
		{"CreateKey", `{"name":"ci deploys","expires_at":"2030-01-02T15:04:05Z","signed_only":true}`, func() any { return new(createKeyRequest) }},
		{"Reason", `{"reason":"leaked in a public repository"}`, func() any { return new(reasonRequest) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			body := []byte(c.body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := decodeStrict(body, c.fresh()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
