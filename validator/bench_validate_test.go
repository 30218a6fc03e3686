package validator_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/validator"
)

// benchValidateKeys is the size of the log behind BenchmarkValidate and
// BenchmarkValidateHTTP: a modest node; the lookup at 1M keys is measured
// in projections.BenchmarkLookupCheck.
const benchValidateKeys = 10_000

// benchEntry has the layout of the lookup's packed entry.
type benchEntry struct {
	hash    [32]byte
	owner   ulid.ULID
	expires int64
	revoked int64
	version uint32
}

// benchQueries are the log's keys in a random order, with their secrets as
// strings, keys that are not in the log, and well-formed secrets of no key.
type benchQueries struct {
	keys, secrets, unknown, wrong []string
}

func benchNewQueries(b *testing.B, l *benchLog) *benchQueries {
	b.Helper()
	rng := rand.NewChaCha8([32]byte{9})
	q := &benchQueries{}
	for _, k := range rand.New(rand.NewPCG(4, 5)).Perm(len(l.apiKeys)) {
		q.keys = append(q.keys, strings.Clone(l.apiKeys[k]))
		q.secrets = append(q.secrets, l.secret(k).Reveal())
	}
	for range 4096 {
		q.unknown = append(q.unknown, domain.APIKeyPrefix+ulid.MustNew(ulid.Timestamp(benchT0), rng).String())
	}
	for range 64 {
		s, err := domain.NewSecret(rng)
		if err != nil {
			b.Fatal(err)
		}
		q.wrong = append(q.wrong, s.Reveal())
	}
	return q
}

// BenchmarkValidate measures Validator.Validate on the formatted strings
// against a node that follows a real stream, and its floor: one SHA-256 of
// the secret string and one map lookup by a parsed id, in a map of the same
// size. ParseSecret is the format and checksum check Validate starts with.
func BenchmarkValidate(b *testing.B) {
	l := benchNewLog(b)
	l.add(b, benchValidateKeys, 16)
	// WrongSecret fails every key again and again: without the limit on
	// failures, so that it measures the lookup, not the block.
	v, _ := benchOpen(b, l.srv, validator.WithFailureLimit(validator.NoLimit, 0))
	q := benchNewQueries(b, l)
	n := len(q.keys)
	baseline := make(map[ulid.ULID]benchEntry)
	ids := make([]ulid.ULID, n)
	for j, k := range q.keys {
		ids[j] = ulid.MustParseStrict(k[len(domain.APIKeyPrefix):])
		baseline[ids[j]] = benchEntry{hash: sha256.Sum256([]byte(q.secrets[j]))}
	}
	ctx := context.Background()
	runtime.GC()
	var baselineNs float64 // measured first, each variant reports its ratio to it

	b.Run("Baseline", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			h := sha256.Sum256([]byte(q.secrets[i%n]))
			if e, ok := baseline[ids[i%n]]; !ok || e.hash != h {
				b.Fatal("baseline: no match")
			}
			i++
		}
		baselineNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	run := func(name string, wantErr error, op func(i int) error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := op(i); !errors.Is(err, wantErr) {
					b.Fatalf("got %v, want %v", err, wantErr)
				}
				i++
			}
			if baselineNs > 0 {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baselineNs, "x_baseline")
			}
		})
	}
	run("Hit", nil, func(i int) error {
		_, err := v.Validate(ctx, q.keys[i%n], q.secrets[i%n])
		return err
	})
	run("Miss", validator.ErrUnauthorized, func(i int) error {
		_, err := v.Validate(ctx, q.unknown[i%len(q.unknown)], q.secrets[i%n])
		return err
	})
	run("WrongSecret", validator.ErrUnauthorized, func(i int) error {
		_, err := v.Validate(ctx, q.keys[i%n], q.wrong[i%len(q.wrong)])
		return err
	})
	run("ParseSecret", nil, func(i int) error {
		_, err := domain.ParseSecret(q.secrets[i%n])
		return err
	})
	var parallelNs float64
	b.Run("BaselineParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(n)
			for pb.Next() {
				h := sha256.Sum256([]byte(q.secrets[i%n]))
				if e, ok := baseline[ids[i%n]]; !ok || e.hash != h {
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
				if _, err := v.Validate(ctx, q.keys[i%n], q.secrets[i%n]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
		if parallelNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/parallelNs, "x_baseline")
		}
	})
}

// BenchmarkValidateHTTP measures /validate over loopback HTTP with
// keep-alive clients (clients, server, and nats-server share the machine),
// and the same clients against a bare handler that only answers 200.
// It reports requests per second and the p50/p99 latency of the b.N
// requests; run it with a fixed count (-benchtime 20000x) so that every
// variant times the same number of requests.
func BenchmarkValidateHTTP(b *testing.B) {
	l := benchNewLog(b)
	l.add(b, benchValidateKeys, 16)
	v, _ := benchOpen(b, l.srv)
	q := benchNewQueries(b, l)
	creds := make([][2]string, len(q.keys))
	for j := range q.keys {
		creds[j] = [2]string{base64.StdEncoding.EncodeToString([]byte(q.keys[j])),
			base64.StdEncoding.EncodeToString([]byte(q.secrets[j]))}
	}
	validateSrv := httptest.NewServer(v.Handler())
	b.Cleanup(validateSrv.Close)
	bareSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(bareSrv.Close)

	for _, clients := range []int{2, 16, 64} {
		var bare float64 // measured first, /validate reports its ratio to it
		b.Run(fmt.Sprintf("clients=%d/BareHandler", clients), func(b *testing.B) {
			bare = benchHTTP(b, bareSrv.URL+"/validate", clients, creds)
		})
		b.Run(fmt.Sprintf("clients=%d/Validate", clients), func(b *testing.B) {
			rps := benchHTTP(b, validateSrv.URL+"/validate", clients, creds)
			if bare > 0 {
				b.ReportMetric(rps/bare, "x_bare_rps")
			}
		})
	}
}

// benchHTTP sends b.N requests with valid credentials from clients
// concurrent keep-alive connections, expects 200 to each, and reports the
// throughput and the latency percentiles.
func benchHTTP(b *testing.B, url string, clients int, creds [][2]string) (reqPerSec float64) {
	transport := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, DisableCompression: true,
		IdleConnTimeout: time.Minute}
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	do := func(i int) (time.Duration, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		c := creds[i%len(creds)]
		req.Header.Set("X-Api-Key", c[0])
		req.Header.Set("X-Api-Secret", c[1])
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return took, err
	}
	// Open the connections before the clock starts.
	var warm sync.WaitGroup
	for c := range clients {
		warm.Go(func() {
			if _, err := do(c); err != nil {
				b.Error(err)
			}
		})
	}
	warm.Wait()

	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(creds))
		var mine []time.Duration
		for pb.Next() {
			took, err := do(i)
			if err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, took)
			i++
		}
		mu.Lock()
		all = append(all, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(all)
	reqPerSec = float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(reqPerSec, "req/s")
	b.ReportMetric(benchMicros(benchPercentile(all, 50)), "p50_us")
	b.ReportMetric(benchMicros(benchPercentile(all, 99)), "p99_us")
	return reqPerSec
}
