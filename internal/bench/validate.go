package bench

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/validator"
)

// entry has the layout of the lookup's packed entry, so the baseline's map
// holds as many bytes per key.
type entry struct {
	hash    [32]byte
	owner   ulid.ULID
	expires int64
	revoked int64
	version uint32
}

// queries are a log's keys in a random order with their secrets, keys
// that are not in the log, and well-formed secrets of no key.
type queries struct {
	keys, secrets, unknown, wrong []string
}

func newQueries(ks *keySet) (*queries, error) {
	rng := rand.NewChaCha8([32]byte{9})
	q := &queries{}
	for _, k := range rand.New(rand.NewPCG(4, 5)).Perm(len(ks.apiKeys)) {
		q.keys = append(q.keys, ks.apiKeys[k])
		q.secrets = append(q.secrets, ks.secret(k))
	}
	for range 4096 {
		q.unknown = append(q.unknown, domain.APIKeyPrefix+ulid.MustNew(ulid.Timestamp(t0), rng).String())
	}
	for range 64 {
		s, err := domain.NewSecret(rng)
		if err != nil {
			return nil, err
		}
		q.wrong = append(q.wrong, s.Reveal())
	}
	return q, nil
}

// filledLedger starts a NATS server and a ledger on it, and fills its log
// with n keys.
func filledLedger(ctx context.Context, e *env, n int) (*server.Server, *ledgerRun, *keySet, error) {
	ns, err := e.natsServer()
	if err != nil {
		return nil, nil, nil, err
	}
	nc, err := e.connect(ns)
	if err != nil {
		return nil, nil, nil, err
	}
	l, err := e.ledger(ctx, nc)
	if err != nil {
		return nil, nil, nil, err
	}
	ks, err := fillLog(ctx, l.store, n, 16)
	return ns, l, ks, err
}

// validationNode fills a log with n keys and opens a validation node that
// follows it, on a connection of its own.
func validationNode(ctx context.Context, e *env, n int) (*validator.Validator, *queries, error) {
	ns, _, ks, err := filledLedger(ctx, e, n)
	if err != nil {
		return nil, nil, err
	}
	// "wrong secret" fails every key again and again: without the limit on
	// failures, so that it measures the lookup, not the block.
	v, err := e.node(ctx, ns, validator.WithFailureLimit(validator.NoLimit, 0))
	if err != nil {
		return nil, nil, err
	}
	q, err := newQueries(ks)
	return v, q, err
}

// runValidate measures Validator.Validate on the formatted strings (hit,
// miss, wrong secret) against a node that follows a real stream of some
// thousand keys, and its floor: one SHA-256 of a 32-byte input and one
// map lookup by a parsed id in a map of the same size.
func runValidate(ctx context.Context, cfg Config) ([]Result, error) {
	var e env
	defer e.close()
	v, q, err := validationNode(ctx, &e, cfg.N(5000, 100))
	if err != nil {
		return nil, err
	}
	n := len(q.keys)
	baseline := make(map[ulid.ULID]entry, n)
	ids := make([]ulid.ULID, n)
	inputs := make([][32]byte, n) // the baseline hashes a 32-byte input
	for j, k := range q.keys {
		ids[j] = ulid.MustParseStrict(k[len(domain.APIKeyPrefix):])
		inputs[j] = sha256.Sum256([]byte(q.secrets[j]))
		baseline[ids[j]] = entry{hash: sha256.Sum256(inputs[j][:])}
	}
	iters := cfg.N(500_000, 2000)
	// timeLoop runs op iters times and returns ns/op.
	timeLoop := func(op func(i int) error) (float64, error) {
		runtime.GC()
		start := time.Now()
		for i := range iters {
			if err := op(i); err != nil {
				return 0, err
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(iters), nil
	}
	var sink byte
	baseNs, err := timeLoop(func(i int) error {
		h := sha256.Sum256(inputs[i%n][:])
		e, ok := baseline[ids[i%n]]
		if !ok || e.hash != h {
			return errors.New("baseline: no match")
		}
		sink ^= h[0]
		return nil
	})
	if err != nil {
		return nil, err
	}
	_ = sink
	expect := func(want error, op func(i int) error) func(i int) error {
		return func(i int) error {
			if err := op(i); !errors.Is(err, want) {
				return fmt.Errorf("got %v, want %v", err, want)
			}
			return nil
		}
	}
	cases := []struct {
		name string
		op   func(i int) error
	}{
		{"hit", expect(nil, func(i int) error {
			_, err := v.Validate(ctx, q.keys[i%n], q.secrets[i%n])
			return err
		})},
		{"miss", expect(validator.ErrUnauthorized, func(i int) error {
			_, err := v.Validate(ctx, q.unknown[i%len(q.unknown)], q.secrets[i%n])
			return err
		})},
		{"wrong secret", expect(validator.ErrUnauthorized, func(i int) error {
			_, err := v.Validate(ctx, q.keys[i%n], q.wrong[i%len(q.wrong)])
			return err
		})},
	}
	var results []Result
	for _, c := range cases {
		ns, err := timeLoop(c.op)
		if err != nil {
			return results, fmt.Errorf("%s: %w", c.name, err)
		}
		r := newResult("validate", c.name, "ns/op", ns, baseNs, "one SHA-256 of a 32-byte input + map lookup", iters)
		r.Details["keys"] = float64(n)
		r.ratioAtMost(2)
		results = append(results, r)
	}
	return results, nil
}
