package validator_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/httpsig"
	"github.com/keyledger/keyledger/validator"
)

// BenchmarkValidateSigned measures a signed request's check
// (ValidateSigned: parse, time, lookup, digest, Ed25519 verify, replay
// cache) beside plain secret validation on the same node, and the floor
// of the signed path: one ed25519.Verify. Requests are signed with the
// timer stopped, each with its own nonce, so every one is fresh.
func BenchmarkValidateSigned(b *testing.B) {
	l := benchNewLog(b)
	l.add(b, benchValidateKeys, 16)
	const signable = 256
	keys := make([]string, signable)
	secrets := make([]domain.Secret, signable)
	rng := rand.NewChaCha8([32]byte{11})
	ctx := context.Background()
	for i := range keys {
		s, err := domain.NewSecret(rng)
		if err != nil {
			b.Fatal(err)
		}
		keys[i], secrets[i] = domain.APIKeyPrefix+ulid.MustNew(ulid.Timestamp(benchT0), rng).String(), s
		pub, err := s.PublicKey(keys[i])
		if err != nil {
			b.Fatal(err)
		}
		var k domain.Key
		events, err := k.Create(domain.CreateKey{APIKey: keys[i], UserID: domain.UserIDPrefix + ulid.MustNew(ulid.Timestamp(benchT0), rng).String(),
			SecretHash: s.Hash(), PublicKey: pub}, benchT0)
		if err == nil {
			_, err = l.store.Append(ctx, eventstore.Pending{Event: events[0]})
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	v, _ := benchOpen(b, l.srv)
	shared, _ := benchOpen(b, l.srv, validator.WithSharedReplayCache())
	body := []byte(`{"amount":100,"currency":"EUR","reference":"order-4711"}`)
	signKeys := make([]ed25519.PrivateKey, signable)
	for i := range keys {
		priv, err := secrets[i].SigningKey(keys[i])
		if err != nil {
			b.Fatal(err)
		}
		signKeys[i] = priv
	}
	sign := func(i int) *http.Request {
		req, err := http.NewRequest(http.MethodPost, "https://api.example.com/orders?id=7", strings.NewReader(string(body)))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if err := httpsig.Sign(req, body, signKeys[i%signable], httpsig.SignOptions{KeyID: keys[i%signable],
			Nonce: fmt.Sprintf("bench-nonce-%016d", i)}); err != nil {
			b.Fatal(err)
		}
		return req
	}
	target := validator.Target{Method: http.MethodPost, Scheme: "https", Authority: "api.example.com", RequestURI: "/orders?id=7"}

	b.Run("Plain", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := v.Validate(ctx, keys[i%signable], secrets[i%signable].Reveal()); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	var floorNs float64
	b.Run("Ed25519VerifyFloor", func(b *testing.B) {
		req := sign(0)
		base := sha256.Sum256([]byte(req.Header.Get("Signature-Input")))
		sig := ed25519.Sign(signKeys[0], base[:])
		pub := signKeys[0].Public().(ed25519.PublicKey)
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(pub, base[:], sig) {
				b.Fatal("verify")
			}
		}
		floorNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("Signed", func(b *testing.B) {
		b.ReportAllocs()
		i := 1 << 30 // nonces apart from any earlier run
		for b.Loop() {
			b.StopTimer()
			req := sign(i)
			b.StartTimer()
			if _, reason, err := v.ValidateSigned(req.Header, target, body, true); err != nil {
				b.Fatalf("%s: %v", reason, err)
			}
			i++
		}
		if floorNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/floorNs, "x_verify")
		}
	})
	b.Run("SignedSharedReplayCache", func(b *testing.B) {
		b.ReportAllocs()
		i := 2 << 30
		for b.Loop() {
			b.StopTimer()
			req := sign(i)
			b.StartTimer()
			if _, reason, err := shared.ValidateSigned(req.Header, target, body, true); err != nil {
				b.Fatalf("%s: %v", reason, err)
			}
			i++
		}
		if floorNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/floorNs, "x_verify")
		}
	})
}
