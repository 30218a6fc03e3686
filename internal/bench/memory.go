package bench

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// memoryGoal is the most heap the validation lookup may hold per key.
const memoryGoal = 150

// settledHeap returns the bytes of live heap objects after two
// collections: objects parked in a sync.Pool survive the first (moved to
// its victim cache) and are freed by the second, and would otherwise be
// counted before a fill and gone after it.
func settledHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// minPlausibleBytesPerKey is less than any structure measured here can
// hold a key in (the 16-byte id alone, plus the secret hash).
const minPlausibleBytesPerKey = 32

// record is the naive baseline's value: the lookup's fields, unpacked.
type record struct {
	hash    domain.Hash
	owner   ulid.ULID
	expires time.Time
	revoked time.Time
	version uint32
}

// runMemory measures the heap projections.Lookup holds per key at N keys
// (1M at scale 1), filled in memory by Lookup.Apply of synthetic
// key.created events (no NATS), grown from empty as validator.Open builds
// it and presized; and, as the baseline, a naive map[string]*record of the
// same fields keyed by the formatted API key. Each is the heap delta
// (runtime.GC, then runtime.ReadMemStats HeapAlloc) across its fill.
func runMemory(ctx context.Context, cfg Config) ([]Result, error) {
	n := cfg.N(1_000_000, 1000)
	rng := mrand.NewChaCha8([32]byte{5})
	s, err := domain.NewSecret(rng)
	if err != nil {
		return nil, err
	}
	hash := s.Hash()
	owners := make([]string, (n+keysPerUser-1)/keysPerUser)
	for i := range owners {
		owners[i] = domain.UserIDPrefix + ulid.MustNew(ulid.Timestamp(t0), rng).String()
	}
	ids := make([]ulid.ULID, n)
	for i := range ids {
		ids[i] = ulid.MustNew(ulid.Timestamp(t0), rng)
	}
	fillLookup := func(sizeHint int) (any, error) {
		l := projections.NewLookup(sizeHint)
		for i, id := range ids {
			if i%4096 == 0 && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var k domain.Key
			events, err := k.Create(domain.CreateKey{APIKey: domain.APIKeyPrefix + id.String(),
				UserID: owners[i/keysPerUser], Name: "bench key", SecretHash: hash, PublicKey: domain.PublicKey(hash)}, t0)
			if err != nil {
				return nil, err
			}
			if err := l.Apply(events[0]); err != nil {
				return nil, err
			}
		}
		if l.Len() != n {
			return nil, fmt.Errorf("lookup holds %d keys, want %d", l.Len(), n)
		}
		return l, nil
	}
	fillNaive := func() (any, error) {
		m := make(map[string]*record)
		for i, id := range ids {
			owner := ulid.MustParseStrict(owners[i/keysPerUser][len(domain.UserIDPrefix):])
			m[domain.APIKeyPrefix+id.String()] = &record{hash: hash, owner: owner}
		}
		return m, nil
	}
	// perKey returns the heap fill leaves held, per key.
	// perKey fills once and measures; other goroutines of the process
	// (servers of earlier scenarios winding down) can free memory during
	// the fill, which shows as a delta too small to be the fill's, even
	// below zero at small scales: such a reading is taken again, up to
	// three times.
	perKey := func(fill func() (any, error)) (float64, time.Duration, error) {
		var perKey float64
		var took time.Duration
		for range 3 {
			before := settledHeap()
			start := time.Now()
			held, err := fill()
			took = time.Since(start)
			if err != nil {
				return 0, 0, err
			}
			after := settledHeap()
			runtime.KeepAlive(held)
			perKey = float64(int64(after)-int64(before)) / float64(n)
			if perKey >= minPlausibleBytesPerKey {
				break
			}
		}
		return perKey, took, nil
	}
	base, baseTook, err := perKey(fillNaive)
	if err != nil {
		return nil, err
	}
	var results []Result
	for _, c := range []struct {
		name string
		hint int
	}{{"Lookup grown", 0}, {"Lookup presized", n}} {
		v, took, err := perKey(func() (any, error) { return fillLookup(c.hint) })
		if err != nil {
			return results, fmt.Errorf("%s: %w", c.name, err)
		}
		r := newResult("memory", fmt.Sprintf("%s n=%d", c.name, n), "B/key", v, base,
			"naive map[string]*record of the same fields, keyed by the API key", n)
		r.Details["fill_ns/key"] = float64(took.Nanoseconds()) / float64(n)
		r.Details["baseline_fill_ns/key"] = float64(baseTook.Nanoseconds()) / float64(n)
		r.Goal = fmt.Sprintf("<= %d B/key", memoryGoal)
		r.Met = v > 0 && v <= memoryGoal
		results = append(results, r)
	}
	return results, nil
}
