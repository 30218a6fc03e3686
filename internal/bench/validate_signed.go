package bench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/httpsig"
	"github.com/keyledger/keyledger/validator"
)

// runValidateSigned measures the check of a signed request
// (Validator.ValidateSigned: parse, time window, lookup, Content-Digest,
// Ed25519 verification, replay cache) on a node that follows a real
// stream, against its floor: one ed25519.Verify of a signature base of the
// same size. Plain secret validation of the same keys is reported beside
// it. Every request is signed beforehand with its own nonce, so each is
// fresh.
func runValidateSigned(ctx context.Context, cfg Config) ([]Result, error) {
	var e env
	defer e.close()
	ns, l, _, err := filledLedger(ctx, &e, cfg.N(5000, 100))
	if err != nil {
		return nil, err
	}
	const signable = 256
	rng := rand.NewChaCha8([32]byte{12})
	keys := make([]string, signable)
	secrets := make([]domain.Secret, signable)
	privs := make([]ed25519.PrivateKey, signable)
	for i := range keys {
		if secrets[i], err = domain.NewSecret(rng); err != nil {
			return nil, err
		}
		keys[i] = domain.APIKeyPrefix + ulid.MustNew(ulid.Timestamp(t0), rng).String()
		if privs[i], err = secrets[i].SigningKey(keys[i]); err != nil {
			return nil, err
		}
		var pub domain.PublicKey
		copy(pub[:], privs[i].Public().(ed25519.PublicKey))
		var k domain.Key
		events, err := k.Create(domain.CreateKey{APIKey: keys[i], UserID: domain.UserIDPrefix + ulid.MustNew(ulid.Timestamp(t0), rng).String(),
			SecretHash: secrets[i].Hash(), PublicKey: pub}, t0)
		if err == nil {
			_, err = l.store.Append(ctx, eventstore.Pending{Event: events[0]})
		}
		if err != nil {
			return nil, err
		}
	}
	v, err := e.node(ctx, ns)
	if err != nil {
		return nil, err
	}

	iters := cfg.N(20_000, 200)
	body := []byte(`{"amount":100,"currency":"EUR","reference":"order-4711"}`)
	target := validator.Target{Method: http.MethodPost, Scheme: "https", Authority: "api.example.com", RequestURI: "/orders?id=7"}
	headers := make([]http.Header, iters)
	for i := range headers {
		req, err := http.NewRequest(http.MethodPost, "https://api.example.com/orders?id=7", strings.NewReader(string(body)))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		if err := httpsig.Sign(req, body, privs[i%signable], httpsig.SignOptions{KeyID: keys[i%signable],
			Nonce: fmt.Sprintf("bench-nonce-%016d", i)}); err != nil {
			return nil, err
		}
		headers[i] = req.Header
	}
	// The floor: verify one signature over a message as long as a typical
	// signature base.
	msg := make([]byte, 300)
	sig := ed25519.Sign(privs[0], msg)
	pub := privs[0].Public().(ed25519.PublicKey)

	timeLoop := func(n int, op func(i int) error) (float64, error) {
		runtime.GC()
		start := time.Now()
		for i := range n {
			if err := op(i); err != nil {
				return 0, err
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(n), nil
	}
	floorNs, err := timeLoop(iters, func(int) error {
		if !ed25519.Verify(pub, msg, sig) {
			return fmt.Errorf("floor: verify failed")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	signedNs, err := timeLoop(iters, func(i int) error {
		if _, reason, err := v.ValidateSigned(headers[i], target, body, true); err != nil {
			return fmt.Errorf("signed request %d: %s: %w", i, reason, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	plainIters := cfg.N(200_000, 2000)
	plainNs, err := timeLoop(plainIters, func(i int) error {
		_, err := v.Validate(ctx, keys[i%signable], secrets[i%signable].Reveal())
		return err
	})
	if err != nil {
		return nil, err
	}
	r := newResult("validate-signed", "signed request", "ns/op", signedNs, floorNs, "one ed25519.Verify of a 300-byte message", iters)
	r.Details["plain_secret_ns"] = plainNs
	r.Details["signed_over_plain"] = signedNs / plainNs
	r.ratioAtMost(1.5)
	return []Result{r}, nil
}
