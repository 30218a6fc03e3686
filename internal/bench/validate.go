package bench

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
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

// validateRounds is how many times each case of runValidate is timed,
// interleaved with its baseline: the median of each is reported, so that
// a burst of load from elsewhere on the machine moves one round, not the
// result.
const validateRounds = 5

// runValidate measures Validator.Validate on the formatted strings (hit,
// miss, wrong secret) against a node that follows a real stream of some
// thousand keys, and its floor: the same job done in the least work there
// is, one SHA-256 and one map lookup. The baseline takes the very strings
// Validate receives, in the same order: it hashes the secret string (a
// copy on the stack, as the lookup does, no allocation) and looks the key
// string up in a map of the same size keyed by it, then compares the
// hashes. It parses and checks nothing: any work Validate does beyond that
// shows in the ratio. Each case and the baseline are timed in
// validateRounds interleaved rounds; the medians are reported. Beside the
// wall-clock time, the details give the CPU time of the measuring thread
// (Linux), which time the OS gives other processes does not inflate:
// on a busy machine, cpu_ratio is the steadier of the two.
func runValidate(ctx context.Context, cfg Config) ([]Result, error) {
	var e env
	defer e.close()
	v, q, err := validationNode(ctx, &e, cfg.N(5000, 100))
	if err != nil {
		return nil, err
	}
	n := len(q.keys)
	baseline := make(map[string]entry, n)
	for j, k := range q.keys {
		baseline[k] = entry{hash: sha256.Sum256([]byte(q.secrets[j]))}
	}
	iters := cfg.N(500_000, 2000)
	perRound := max(iters/validateRounds, 1)
	// timeLoop runs op perRound times and returns ns/op, wall-clock and
	// CPU time of the thread (0 when it cannot be read).
	timeLoop := func(op func(i int) error) (wall, cpu float64, err error) {
		runtime.GC()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cpu0, cpuOK := threadCPUTime()
		start := time.Now()
		for i := range perRound {
			if err := op(i); err != nil {
				return 0, 0, err
			}
		}
		wall = float64(time.Since(start).Nanoseconds()) / float64(perRound)
		if cpu1, ok := threadCPUTime(); ok && cpuOK {
			cpu = float64(cpu1-cpu0) / float64(perRound)
		}
		return wall, cpu, nil
	}
	var sink byte
	base := func(i int) error {
		var b [domain.SecretLength]byte
		copy(b[:], q.secrets[i%n])
		h := sha256.Sum256(b[:])
		e, ok := baseline[q.keys[i%n]]
		if !ok || e.hash != h {
			return errors.New("baseline: no match")
		}
		sink ^= h[0]
		return nil
	}
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
	var baseNs, baseCPU []float64
	caseNs, caseCPU := make([][]float64, len(cases)), make([][]float64, len(cases))
	for range validateRounds {
		ns, cpu, err := timeLoop(base)
		if err != nil {
			return nil, err
		}
		baseNs, baseCPU = append(baseNs, ns), append(baseCPU, cpu)
		for j, c := range cases {
			ns, cpu, err := timeLoop(c.op)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			caseNs[j], caseCPU[j] = append(caseNs[j], ns), append(caseCPU[j], cpu)
		}
	}
	_ = sink
	var results []Result
	for j, c := range cases {
		r := newResult("validate", c.name, "ns/op", median(caseNs[j]), median(baseNs),
			"one SHA-256 of the secret string + lookup of the key string in a map, median of 5 interleaved rounds", perRound*validateRounds)
		r.Details["keys"] = float64(n)
		r.Details["min_ns"] = slices.Min(caseNs[j])
		r.Details["baseline_min_ns"] = slices.Min(baseNs)
		if cpu, baseCPU := median(caseCPU[j]), median(baseCPU); cpu > 0 && baseCPU > 0 {
			r.Details["cpu_ns"], r.Details["baseline_cpu_ns"], r.Details["cpu_ratio"] = cpu, baseCPU, cpu/baseCPU
		}
		r.ratioAtMost(2)
		results = append(results, r)
	}
	return results, nil
}
