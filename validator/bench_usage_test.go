package validator_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/usage"
	"github.com/keyledger/keyledger/validator"
)

// BenchmarkValidateUsage measures Validate on one node without and with
// usage counting (WithUsage), in the same run: x_plain is the ratio to the
// plain validation, the cost of counting.
func BenchmarkValidateUsage(b *testing.B) {
	l := benchNewLog(b)
	l.add(b, benchValidateKeys, 16)
	plain, _ := benchOpen(b, l.srv, validator.WithFailureLimit(validator.NoLimit, 0))
	counters := usage.NewCounters(0, time.Now())
	counted, _ := benchOpen(b, l.srv, validator.WithFailureLimit(validator.NoLimit, 0), validator.WithUsage(counters))
	q := benchNewQueries(b, l)
	n := len(q.keys)
	ctx := context.Background()
	var plainNs, plainParNs float64
	for _, c := range []struct {
		name string
		v    *validator.Validator
		base *float64
		par  bool
	}{{"Plain", plain, &plainNs, false}, {"Counted", counted, &plainNs, false},
		{"PlainParallel", plain, &plainParNs, true}, {"CountedParallel", counted, &plainParNs, true}} {
		isPlain := c.v == plain
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			if c.par {
				b.RunParallel(func(pb *testing.PB) {
					i := rand.IntN(n)
					for pb.Next() {
						if _, err := c.v.Validate(ctx, q.keys[i%n], q.secrets[i%n]); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			} else {
				i := 0
				for b.Loop() {
					if _, err := c.v.Validate(ctx, q.keys[i%n], q.secrets[i%n]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if isPlain {
				*c.base = ns
			} else if *c.base > 0 {
				b.ReportMetric(ns / *c.base, "x_plain")
			}
		})
	}
	if r := counters.Take("bench", time.Now()); len(r.Keys) == 0 {
		b.Fatal("counted nothing")
	}
}
