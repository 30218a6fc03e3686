package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/keyledger/keyledger/internal/ledger"
)

// runAppend measures key creations per second through
// ledger.Service.CreateKey (domain decision, optimistic append with its
// PubAck, wait for the projections), from one client and from 32, and the
// same number of raw JetStream publishes (PublishMsg, waiting for the
// PubAck) of a stored key.created event's bytes and headers to a
// file-storage stream of its own on the same server, in DefaultRounds
// interleaved rounds: the round with the median ratio is reported.
func runAppend(ctx context.Context, cfg Config) ([]Result, error) {
	var e env
	defer e.close()
	ns, err := e.natsServer()
	if err != nil {
		return nil, err
	}
	nc, err := e.connect(ns)
	if err != nil {
		return nil, err
	}
	l, err := e.ledger(ctx, nc)
	if err != nil {
		return nil, err
	}
	// Warm up, and take a stored key.created event as the baseline's message.
	if _, _, err := l.svc.CreateKey(ctx, ledger.CreateKey{UserID: l.userID, Name: "bench key"}); err != nil {
		return nil, fmt.Errorf("CreateKey: %w", err)
	}
	like, err := SampleEvent(ctx, nc, l.store.StreamName())
	if err != nil {
		return nil, fmt.Errorf("sample event: %w", err)
	}
	size := len(like.Data)
	for k, vs := range like.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	var results []Result
	for i, c := range []struct{ clients, n int }{{1, cfg.N(2000, 20)}, {32, cfg.N(10000, 64)}} {
		per := max(c.n/DefaultRounds, c.clients)
		in, err := Interleave(ctx, DefaultRounds, func(ctx context.Context, round int) (float64, int, error) {
			rate, err := RawPublish(ctx, nc, fmt.Sprintf("BENCHRAW%d_%d", i, round), like, per, c.clients)
			if err != nil {
				return 0, 0, fmt.Errorf("raw publish: %w", err)
			}
			return rate, per, nil
		}, func(ctx context.Context, _ int) (float64, []time.Duration, error) {
			rate, took, err := Parallel(ctx, per, c.clients, func(ctx context.Context, _ int) error {
				_, _, err := l.svc.CreateKey(ctx, ledger.CreateKey{UserID: l.userID, Name: "bench key"})
				return err
			})
			if err != nil {
				return 0, nil, fmt.Errorf("CreateKey: %w", err)
			}
			return rate, took, nil
		})
		if err != nil {
			return results, err
		}
		r := newResult("append", fmt.Sprintf("CreateKey clients=%d", c.clients), "ops/s", in.Median.Value, in.Median.Baseline,
			fmt.Sprintf("raw js.PublishMsg with ack, %d-byte messages, file storage, clients=%d, the median of %d interleaved rounds",
				size, c.clients, DefaultRounds), len(in.Took))
		r.Details["message_bytes"] = float64(size)
		r.Details["p50_us"] = micros(percentile(in.Took, 50))
		r.Details["p99_us"] = micros(percentile(in.Took, 99))
		r.AddRounds(in)
		r.ratioAtLeast(0.5)
		results = append(results, r)
	}
	return results, nil
}
