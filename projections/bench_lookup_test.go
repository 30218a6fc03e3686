package projections_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// The benchmarks in this file measure the validation lookup on its own, in
// memory, at the sizes a validation node holds. Run them with
//
//	go test -run '^$' -bench 'Lookup' ./projections
//
// Every top-level identifier here starts with "bench" so that it cannot
// collide with the package's other test files.

var benchNow = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

const (
	benchKeysPerUser = 10   // owners are shared, as real users have several keys
	benchSecretPool  = 4096 // distinct secrets, reused round-robin over the keys
)

// benchKeySet is a lookup of n synthetic keys and what the benchmarks need
// to query it: key i has owner i/benchKeysPerUser and secret
// secrets[i%benchSecretPool].
type benchKeySet struct {
	lookup  *projections.Lookup
	apiKeys []string
	ids     []ulid.ULID
	owners  []ulid.ULID
	secrets []domain.Secret
}

// benchSecrets returns n distinct, well-formed secrets.
func benchSecrets(b *testing.B, rng *rand.ChaCha8, n int) []domain.Secret {
	b.Helper()
	out := make([]domain.Secret, n)
	for i := range out {
		s, err := domain.NewSecret(rng)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = s
	}
	return out
}

// benchKeyCreated returns the key.created event of a new key, as the
// domain records it.
func benchKeyCreated(b *testing.B, apiKey, userID string, hash domain.Hash) domain.Event {
	var k domain.Key
	events, err := k.Create(domain.CreateKey{APIKey: apiKey, UserID: userID, Name: "bench key", SecretHash: hash,
		PublicKey: domain.PublicKey(hash)}, benchNow)
	if err != nil {
		b.Fatalf("Create: %v", err)
	}
	return events[0]
}

// benchFillLookup builds a Lookup of n keys through Lookup.Apply.
func benchFillLookup(b *testing.B, n int) *benchKeySet {
	b.Helper()
	rng := rand.NewChaCha8([32]byte{1})
	ks := &benchKeySet{lookup: projections.NewLookup(0), apiKeys: make([]string, n), ids: make([]ulid.ULID, n),
		owners: make([]ulid.ULID, (n+benchKeysPerUser-1)/benchKeysPerUser), secrets: benchSecrets(b, rng, benchSecretPool)}
	hashes := make([]domain.Hash, len(ks.secrets))
	for i, s := range ks.secrets {
		hashes[i] = s.Hash()
	}
	ms := ulid.Timestamp(benchNow)
	for i := range ks.owners {
		ks.owners[i] = ulid.MustNew(ms, rng)
	}
	for i := range n {
		ks.ids[i] = ulid.MustNew(ms, rng)
		ks.apiKeys[i] = domain.APIKeyPrefix + ks.ids[i].String()
		owner := domain.UserIDPrefix + ks.owners[i/benchKeysPerUser].String()
		if err := ks.lookup.Apply(benchKeyCreated(b, ks.apiKeys[i], owner, hashes[i%len(hashes)])); err != nil {
			b.Fatalf("Apply: %v", err)
		}
	}
	if ks.lookup.Len() != n {
		b.Fatalf("lookup holds %d keys, want %d", ks.lookup.Len(), n)
	}
	return ks
}

// benchQueries returns the keys of set in a random order, each a fresh
// copy laid out in that order: a request's key is hot in cache when it is
// checked, while the entry it finds is anywhere in the table.
func benchQueries(ks *benchKeySet) (keys []string, ids []ulid.ULID, secrets []int32) {
	perm := rand.New(rand.NewPCG(2, 3)).Perm(len(ks.apiKeys))
	keys, ids, secrets = make([]string, len(perm)), make([]ulid.ULID, len(perm)), make([]int32, len(perm))
	for j, k := range perm {
		keys[j] = strings.Clone(ks.apiKeys[k])
		ids[j] = ks.ids[k]
		secrets[j] = int32(k % benchSecretPool)
	}
	return keys, ids, secrets
}

// benchEntry has the layout of the Lookup's packed entry: the baseline map
// holds the same bytes per key.
type benchEntry struct {
	hash    [32]byte
	owner   ulid.ULID
	expires int64
	revoked int64
	version uint32
}

// BenchmarkLookupCheck measures Lookup.Check at 1M keys against its floor
// (Baseline): one SHA-256 of the secret string and one lookup by an
// already parsed ULID in a map of the same size and entry layout. Queries
// visit the keys in a random order; each variant reports its ratio to the
// baseline (x_baseline), the parallel ones to BaselineParallel.
func BenchmarkLookupCheck(b *testing.B) {
	const n = 1_000_000
	ks := benchFillLookup(b, n)
	queries, queryIDs, querySecrets := benchQueries(ks)
	unknown := make([]string, 1<<16)
	rng := rand.NewChaCha8([32]byte{4})
	for i := range unknown {
		unknown[i] = domain.APIKeyPrefix + ulid.MustNew(ulid.Timestamp(benchNow), rng).String()
	}
	wrong := benchSecrets(b, rng, 64) // not in the pool: every key's hash differs
	baseline := make(map[ulid.ULID]benchEntry)
	for i, id := range ks.ids {
		baseline[id] = benchEntry{hash: ks.secrets[i%benchSecretPool].Hash(), owner: ks.owners[i/benchKeysPerUser]}
	}
	secretStrings := make([]string, len(ks.secrets))
	for i, s := range ks.secrets {
		secretStrings[i] = s.Reveal()
	}
	runtime.GC()
	var baselineNs float64 // measured first, each variant reports its ratio to it

	b.Run("Baseline", func(b *testing.B) {
		b.ReportAllocs()
		i, found := 0, 0
		for b.Loop() {
			j := i % n
			h := sha256.Sum256([]byte(secretStrings[querySecrets[j]]))
			e, ok := baseline[queryIDs[j]]
			if ok && e.hash == h {
				found++
			}
			i++
		}
		if found != b.N {
			b.Fatalf("baseline matched %d of %d", found, b.N)
		}
		baselineNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	run := func(name string, want domain.Reason, op func(i int) projections.Result) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if r := op(i); r.Reason != want {
					b.Fatalf("reason %q, want %q", r.Reason, want)
				}
				i++
			}
			if baselineNs > 0 {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baselineNs, "x_baseline")
			}
		})
	}
	run("Hit", domain.ReasonOK, func(i int) projections.Result {
		j := i % n
		return ks.lookup.Check(queries[j], ks.secrets[querySecrets[j]], benchNow)
	})
	run("Miss", domain.ReasonUnknownKey, func(i int) projections.Result {
		return ks.lookup.Check(unknown[i&(len(unknown)-1)], ks.secrets[i%benchSecretPool], benchNow)
	})
	run("WrongSecret", domain.ReasonWrongSecret, func(i int) projections.Result {
		return ks.lookup.Check(queries[i%n], wrong[i&63], benchNow)
	})
	var parallelNs float64
	b.Run("BaselineParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(n)
			for pb.Next() {
				j := i % n
				h := sha256.Sum256([]byte(secretStrings[querySecrets[j]]))
				if e, ok := baseline[queryIDs[j]]; !ok || e.hash != h {
					b.Error("baseline: no match")
					return
				}
				i++
			}
		})
		parallelNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("HitParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(n)
			for pb.Next() {
				j := i % n
				if r := ks.lookup.Check(queries[j], ks.secrets[querySecrets[j]], benchNow); !r.OK {
					b.Errorf("reason %q, want ok", r.Reason)
					return
				}
				i++
			}
		})
		if parallelNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/parallelNs, "x_baseline")
		}
	})
	runtime.KeepAlive(ks)
}

// BenchmarkLookupMemory measures the heap a Lookup holds per key (B/key):
// grown from empty as validator.Open builds it, presized, and a baseline
// map of the same packed entry filled directly. The payload itself is 84
// bytes a key (16-byte id, 32-byte hash, 16-byte owner, two 8-byte times,
// a 4-byte version); the rest is the map's slack.
func BenchmarkLookupMemory(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			rng := rand.NewChaCha8([32]byte{5})
			hash := benchSecrets(b, rng, 1)[0].Hash()
			owners := make([]string, (n+benchKeysPerUser-1)/benchKeysPerUser)
			for i := range owners {
				owners[i] = domain.UserIDPrefix + ulid.MustNew(ulid.Timestamp(benchNow), rng).String()
			}
			ids := make([]ulid.ULID, n)
			for i := range ids {
				ids[i] = ulid.MustNew(ulid.Timestamp(benchNow), rng)
			}
			// Scopes: 3 drawn from a set of 20 for each key; metadata: an
			// object of 200 bytes, different for every key.
			pool := make([]string, 20)
			for i := range pool {
				pool[i] = fmt.Sprintf("service%02d:read", i)
			}
			limits := &domain.RateLimit{Limit: 100, Window: domain.Period(time.Minute)}
			credits := &domain.Credits{Remaining: 1000, Refill: &domain.Refill{Amount: 1000, Interval: domain.Period(24 * time.Hour)}}
			fillPolicyLookup := func(scopes, metadata, limited bool) any {
				l := projections.NewLookup(0)
				pick := rand.New(rand.NewPCG(6, 7))
				for i, id := range ids {
					e := benchKeyCreated(b, domain.APIKeyPrefix+id.String(), owners[i/benchKeysPerUser], hash)
					d := e.Data.(domain.KeyCreated)
					if scopes {
						d.Scopes = []string{pool[pick.IntN(20)], pool[pick.IntN(20)], pool[pick.IntN(20)]}
					}
					if metadata {
						d.Metadata = json.RawMessage(fmt.Sprintf(`{"tenant":%10d,"note":"%s"}`, i, strings.Repeat("m", 200-31)))
					}
					if limited {
						d.RateLimit, d.Credits = limits, credits
						e.Schema = domain.KeyLimitsSchema
					}
					e.Data = d
					if err := l.Apply(e); err != nil {
						b.Fatalf("Apply: %v", err)
					}
				}
				return l
			}
			fillLookup := func(sizeHint int) any {
				l := projections.NewLookup(sizeHint)
				for i, id := range ids {
					if err := l.Apply(benchKeyCreated(b, domain.APIKeyPrefix+id.String(), owners[i/benchKeysPerUser], hash)); err != nil {
						b.Fatalf("Apply: %v", err)
					}
				}
				return l
			}
			variants := []struct {
				name string
				fill func() any
			}{
				{"Lookup", func() any { return fillLookup(0) }},
				{"LookupPresized", func() any { return fillLookup(n) }},
				{"LookupScopes3of20", func() any { return fillPolicyLookup(true, false, false) }},
				{"LookupMetadata200B", func() any { return fillPolicyLookup(false, true, false) }},
				{"LookupLimits", func() any { return fillPolicyLookup(false, false, true) }},
				{"Baseline", func() any {
					m := make(map[ulid.ULID]benchEntry)
					for _, id := range ids {
						m[id] = benchEntry{hash: hash}
					}
					return m
				}},
			}
			for _, v := range variants {
				b.Run(v.name, func(b *testing.B) {
					var perKey float64
					for b.Loop() {
						b.StopTimer()
						var before, after runtime.MemStats
						runtime.GC()
						runtime.ReadMemStats(&before)
						b.StartTimer()
						held := v.fill()
						b.StopTimer()
						runtime.GC()
						runtime.ReadMemStats(&after)
						runtime.KeepAlive(held)
						perKey = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
						b.StartTimer()
					}
					b.ReportMetric(perKey, "B/key")
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/key")
				})
			}
		})
	}
}
