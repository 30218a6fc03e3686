package bench

import (
	"context"
	"fmt"

	"github.com/keyledger/keyledger/internal/ledger"
)

// runAppend measures key creations per second through
// ledger.Service.CreateKey (domain decision, optimistic append with its
// PubAck, wait for the projections), from one client and from 32, and the
// same number of raw JetStream publishes (PublishMsg, waiting for the
// PubAck) of a stored key.created event's bytes and headers to a
// file-storage stream of its own on the same server.
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
		rawRate, err := RawPublish(ctx, nc, fmt.Sprintf("BENCHRAW%d", i), like, c.n, c.clients)
		if err != nil {
			return results, fmt.Errorf("raw publish: %w", err)
		}
		rate, took, err := Parallel(ctx, c.n, c.clients, func(ctx context.Context, _ int) error {
			_, _, err := l.svc.CreateKey(ctx, ledger.CreateKey{UserID: l.userID, Name: "bench key"})
			return err
		})
		if err != nil {
			return results, fmt.Errorf("CreateKey: %w", err)
		}
		r := newResult("append", fmt.Sprintf("CreateKey clients=%d", c.clients), "ops/s", rate, rawRate,
			fmt.Sprintf("raw js.PublishMsg with ack, %d-byte messages, file storage, clients=%d", size, c.clients), c.n)
		r.Details["message_bytes"] = float64(size)
		r.Details["p50_us"] = micros(percentile(took, 50))
		r.Details["p99_us"] = micros(percentile(took, 99))
		r.ratioAtLeast(0.5)
		results = append(results, r)
	}
	return results, nil
}
