package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/snapshot"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/validator"
)

// readyGoalSeconds and readyGoalRatio are the goals of a node's time to
// ready from a snapshot: at most 2 s, and at most half the time a raw
// ordered consumer takes to read the whole log.
const (
	readyGoalSeconds = 2.0
	readyGoalRatio   = 0.5
	// readyMemoryGoal is the most heap a lookup loaded from a snapshot
	// may hold per key.
	readyMemoryGoal = 130
)

// runReady fills file-storage logs with N key.created events (1M at
// scale 1), appended on every core, and measures a validation node's time
// from validator.Open to ready:
//
//   - from neither a snapshot nor a checkpoint (every signature verified),
//     on a log without checkpoints;
//   - from checkpoints, without a snapshot (validator.WithoutSnapshot:
//     the checkpoint fast path), on a log the ledger's checkpoint writer
//     followed as it grew (a checkpoint every checkpoint.DefaultEvery
//     messages, as serve writes them);
//   - from a snapshot the ledger wrote (snapshot.Writer, bound to the
//     checkpoint), then the tail after it;
//
// and serve's read models (app.StartReadModels) folded from the whole
// log and loaded from the snapshot of them the same writer wrote, each
// beside the baseline of a raw ordered consumer reading the whole log in
// the same run (eventstore.SubscribeRaw, counting), measured again before
// each case so that machine load hits both alike. It also measures
// the heap the lookup read from the snapshot holds per key, beside a
// lookup of as many keys built by Lookup.Apply, presized.
func runReady(ctx context.Context, cfg Config) ([]Result, error) {
	var e env
	defer e.close()
	n := cfg.N(1_000_000, 2000)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	var results []Result
	rawName := "raw ordered consumer (eventstore.SubscribeRaw) counting the whole log, no decoding"
	// measure opens a node on ns and notes its time to ready beside the
	// raw read of the same log.
	measure := func(ns *server.Server, store *eventstore.Store, fillTook time.Duration, name string, opts ...validator.Option) error {
		head, err := store.Head(ctx)
		if err != nil {
			return err
		}
		raw, err := replayRaw(ctx, ns, head)
		if err != nil {
			return fmt.Errorf("raw read: %w", err)
		}
		took, outcome, err := readyNode(ctx, ns, n, opts...)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r := newResult("ready", fmt.Sprintf("%s n=%d", name, n), "s", took.Seconds(), raw.Seconds(), rawName, int(head))
		r.Details["fill_s"] = fillTook.Seconds()
		r.Details["snapshot_loaded"] = boolFloat(outcome == snapshot.OutcomeLoaded)
		if outcome == snapshot.OutcomeLoaded {
			r.Goal = fmt.Sprintf("<= %.0f s and ratio <= %.2f", readyGoalSeconds, readyGoalRatio)
			r.Met = r.Value <= readyGoalSeconds && r.Ratio <= readyGoalRatio
		}
		results = append(results, r)
		return nil
	}

	// A log without checkpoints, on a server of its own, for a node that
	// verifies every signature.
	if err := readyPlain(ctx, key, n, measure); err != nil {
		return results, err
	}

	// The ledger's log: checkpoints every checkpoint.DefaultEvery
	// messages as it grows, as serve writes them.
	ns, err := e.natsServer()
	if err != nil {
		return results, err
	}
	nc, err := e.connect(ns)
	if err != nil {
		return results, err
	}
	store, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(key))
	if err != nil {
		return results, fmt.Errorf("event store: %w", err)
	}
	cw, err := checkpoint.Start(ctx, store, slog.New(slog.DiscardHandler), time.Hour)
	if err != nil {
		return results, fmt.Errorf("checkpoint.Start: %w", err)
	}
	e.defer_(cw.Close)
	start := time.Now()
	// The writer verifies every message it did not write, so it follows
	// slower than the fill appends: each window waits for it to catch up
	// and checkpoint, as it would behind a ledger appending one command
	// at a time.
	checkpointNow := func() error {
		head, err := store.Head(ctx)
		if err != nil {
			return err
		}
		if err := cw.WaitFor(ctx, head); err != nil {
			return err
		}
		if _, err := cw.WriteNow(ctx); err != nil && !errors.Is(err, checkpoint.ErrNothingNew) {
			return fmt.Errorf("checkpoint: %w", err)
		}
		return nil
	}
	if err := fastFill(ctx, nc, store, key, n, checkpointNow); err != nil {
		return results, err
	}
	fillTook := time.Since(start)
	if err := checkpointNow(); err != nil {
		return results, err
	}

	// A snapshot bound to the newest checkpoint, written by the
	// projector serve runs for its read models.
	lookup := projections.NewLookup(n)
	models := projections.NewModels()
	p, err := projections.New(store, nil, append(models.List(), lookup)...)
	if err != nil {
		return results, err
	}
	if err := p.Start(ctx); err != nil {
		return results, err
	}
	e.defer_(p.Stop)
	if err := p.WaitReady(ctx); err != nil {
		return results, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return results, err
	}
	if err := snapshot.SetUp(ctx, js, eventstore.DefaultStream); err != nil {
		return results, err
	}
	bucket, err := snapshot.Open(ctx, js, eventstore.DefaultStream)
	if err != nil {
		return results, err
	}
	w, err := snapshot.StartWriter(snapshot.WriterConfig{Log: store, Projector: p, Lookup: lookup, Models: &models,
		Checkpoints: cw, Store: bucket, Key: key, Interval: time.Hour})
	if err != nil {
		return results, err
	}
	e.defer_(w.Close)
	start = time.Now()
	written, err := w.WriteNow(ctx)
	if err != nil {
		return results, fmt.Errorf("snapshot: %w", err)
	}
	writeTook := time.Since(start)
	p.Stop()

	if err := measure(ns, store, fillTook, "checkpointed, no snapshot", validator.WithoutSnapshot()); err != nil {
		return results, err
	}
	cps, err := store.Checkpoints(ctx)
	if err != nil {
		return results, err
	}
	results[len(results)-1].Details["checkpoints"] = float64(len(cps))
	for range 2 {
		if err := measure(ns, store, fillTook, "from a snapshot"); err != nil {
			return results, err
		}
		results[len(results)-1].Details["snapshot_bytes"] = float64(written.Size)
		results[len(results)-1].Details["snapshot_write_s"] = writeTook.Seconds()
		results[len(results)-1].Details["snapshot_froze_s"] = written.Froze.Seconds()
	}

	// serve's side: its read models folded from the whole log, and from
	// the snapshot of them written beside the lookup's.
	for _, fromSnapshot := range []bool{false, true} {
		head, err := store.Head(ctx)
		if err != nil {
			return results, err
		}
		raw, err := replayRaw(ctx, ns, head)
		if err != nil {
			return results, fmt.Errorf("raw read: %w", err)
		}
		took, loaded, err := readyLedger(ctx, ns, n, fromSnapshot)
		if err != nil {
			return results, err
		}
		name := "serve's read models, folding the whole log"
		if fromSnapshot {
			name = "serve's read models from a snapshot"
		}
		r := newResult("ready", fmt.Sprintf("%s n=%d", name, n), "s", took.Seconds(), raw.Seconds(), rawName, int(head))
		r.Details["snapshot_loaded"] = boolFloat(loaded)
		results = append(results, r)
	}

	data, err := bucket.Get(ctx, written.Name, snapshot.DefaultMaxSize)
	if err != nil {
		return results, err
	}
	// Everything this scenario started stops first: a nats-server
	// dropping its caches while the lookup is read would show as memory
	// the lookup did not take.
	e.close()
	mem, err := readyMemory(data, n)
	if err != nil {
		return results, err
	}
	return append(results, mem), nil
}

// readyPlain fills a log without checkpoints with n keys, on a server of
// its own that it stops afterwards, and measures a node reading it whole.
func readyPlain(ctx context.Context, key ed25519.PrivateKey, n int,
	measure func(*server.Server, *eventstore.Store, time.Duration, string, ...validator.Option) error) error {
	var e env
	defer e.close()
	ns, err := e.natsServer()
	if err != nil {
		return err
	}
	nc, err := e.connect(ns)
	if err != nil {
		return err
	}
	store, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(key))
	if err != nil {
		return fmt.Errorf("event store: %w", err)
	}
	start := time.Now()
	if err := fastFill(ctx, nc, store, key, n, nil); err != nil {
		return err
	}
	return measure(ns, store, time.Since(start), "neither snapshot nor checkpoint", validator.WithoutSnapshot())
}

// readyNode opens a validation node and returns the time from
// validator.Open to Status().Ready, polled every millisecond, and how it
// started (snapshot.Outcome*, "not_tried").
func readyNode(ctx context.Context, ns *server.Server, n int, opts ...validator.Option) (time.Duration, string, error) {
	var e env
	defer e.close()
	nc, err := e.connect(ns)
	if err != nil {
		return 0, "", err
	}
	logs := &outcomeLog{}
	start := time.Now()
	v, err := validator.Open(ctx, nc, slog.New(logs), opts...)
	if err != nil {
		return 0, "", fmt.Errorf("validator.Open: %w", err)
	}
	defer v.Close()
	for !v.Status().Ready {
		if err := sleep(ctx, time.Millisecond); err != nil {
			return 0, "", fmt.Errorf("validator not ready: %+v: %w", v.Status(), err)
		}
	}
	took := time.Since(start)
	if got := v.Status().Keys; got != n {
		return 0, "", fmt.Errorf("node holds %d keys, want %d", got, n)
	}
	return took, logs.outcome, nil
}

// readyLedger starts serve's read models as serve does (from the newest
// snapshot of them, or folding the whole log) and returns the time until
// the projector is ready, and whether a snapshot was loaded.
func readyLedger(ctx context.Context, ns *server.Server, n int, fromSnapshot bool) (time.Duration, bool, error) {
	var e env
	defer e.close()
	nc, err := e.connect(ns)
	if err != nil {
		return 0, false, err
	}
	start := time.Now()
	store, err := eventstore.New(ctx, nc, eventstore.ReadOnly())
	if err != nil {
		return 0, false, fmt.Errorf("event store: %w", err)
	}
	var m app.ReadModels
	var logs bytes.Buffer // says why a snapshot was refused
	if fromSnapshot {
		m, err = app.StartReadModelsFromSnapshot(ctx, nc, store, slog.New(slog.NewTextHandler(&logs, nil)))
	} else {
		m, err = app.StartReadModels(ctx, store, nil)
	}
	if err != nil {
		return 0, false, err
	}
	defer m.Projector.Stop()
	if err := m.Projector.WaitReady(ctx); err != nil {
		return 0, false, err
	}
	took := time.Since(start)
	if got := m.Keys.Len(); got != n {
		return 0, false, fmt.Errorf("serve's read models hold %d keys, want %d", got, n)
	}
	if fromSnapshot && m.Snapshot == nil {
		return 0, false, fmt.Errorf("serve's read models did not start from the snapshot (%s): %s", m.SnapshotOutcome, logs.String())
	}
	return took, m.Snapshot != nil, nil
}

// outcomeLog is a slog handler that notes how a node started from its
// log lines and discards the rest.
type outcomeLog struct {
	outcome string
}

func (h *outcomeLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *outcomeLog) Handle(_ context.Context, r slog.Record) error {
	switch r.Message {
	case "starting from a snapshot: following the log from the sequence after it":
		h.outcome = snapshot.OutcomeLoaded
	case "starting without a snapshot: reading the whole log":
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "reason" {
				h.outcome = a.Value.String()
			}
			return true
		})
	}
	return nil
}

func (h *outcomeLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *outcomeLog) WithGroup(string) slog.Handler      { return h }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// readyMemory measures the heap a lookup read from the snapshot holds per
// key (the snapshot's bytes read first, outside the measure), beside a
// presized lookup of as many synthetic keys built by Lookup.Apply.
func readyMemory(data []byte, n int) (Result, error) {
	s, err := snapshot.Decode(data)
	if err != nil {
		return Result{}, err
	}
	// heapOf is the heap fill leaves held, per key; a reading below
	// what any structure needs (other goroutines freed memory meanwhile)
	// is taken again, up to three times, as runMemory does.
	heapOf := func(fill func() (any, error)) (float64, error) {
		var perKey float64
		for range 3 {
			before := settledHeap()
			held, err := fill()
			if err != nil {
				return 0, err
			}
			after := settledHeap()
			runtime.KeepAlive(held)
			perKey = float64(int64(after)-int64(before)) / float64(n)
			if perKey >= minPlausibleBytesPerKey {
				break
			}
		}
		return perKey, nil
	}
	loadStart := time.Now()
	loaded, err := heapOf(func() (any, error) { return projections.ReadSnapshot(s.Lookup) })
	if err != nil {
		return Result{}, err
	}
	loadTook := time.Since(loadStart)
	built, err := heapOf(func() (any, error) { return syntheticLookup(n) })
	if err != nil {
		return Result{}, err
	}
	r := newResult("ready", fmt.Sprintf("lookup read from a snapshot n=%d", n), "B/key", loaded, built,
		"projections.Lookup presized, built by Lookup.Apply of as many keys", n)
	r.Details["read_s"] = loadTook.Seconds()
	r.Details["snapshot_bytes/key"] = float64(len(data)) / float64(n)
	r.Goal = fmt.Sprintf("<= %d B/key", readyMemoryGoal)
	r.Met = loaded > 0 && loaded <= readyMemoryGoal
	return r, nil
}

// syntheticLookup is a presized lookup of n keys, ten per owner, named as
// fillLog names them.
func syntheticLookup(n int) (*projections.Lookup, error) {
	rng := mrand.NewChaCha8([32]byte{6})
	l := projections.NewLookup(n)
	var owner string
	for i := range n {
		if i%keysPerUser == 0 {
			owner = domain.UserIDPrefix + ulid.MustNew(ulid.Timestamp(t0), rng).String()
		}
		var k domain.Key
		events, err := k.Create(domain.CreateKey{APIKey: domain.APIKeyPrefix + ulid.MustNew(ulid.Timestamp(t0), rng).String(),
			UserID: owner, Name: "bench key", SecretHash: domain.Hash{1, byte(i)}, PublicKey: domain.PublicKey{1, byte(i)}}, t0)
		if err != nil {
			return nil, err
		}
		if err := l.Apply(events[0]); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// fastFill appends n key.created events, ten keys per owner, as the
// ledger would sign them, fast: events are encoded and signed on every
// core and published asynchronously (new keys need no expected sequence),
// so that a million keys take seconds, not the minutes of one
// acknowledged append at a time. every, if set, is called each
// checkpoint.DefaultEvery messages, once they are stored.
func fastFill(ctx context.Context, nc *nats.Conn, store *eventstore.Store, key ed25519.PrivateKey, n int, every func() error) error {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return err
	}
	workers := max(runtime.GOMAXPROCS(0), 1)
	msgs := make(chan *nats.Msg, 4096)
	errs := make(chan error, workers+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := mrand.NewChaCha8([32]byte{9, byte(w)})
			var owner string
			for i, j := w, 0; i < n; i, j = i+workers, j+1 {
				if j%keysPerUser == 0 {
					owner = domain.UserIDPrefix + ulid.MustNew(ulid.Timestamp(t0), rng).String()
				}
				var k domain.Key
				h := domain.Hash{1, byte(i), byte(i >> 8), byte(i >> 16)}
				events, err := k.Create(domain.CreateKey{APIKey: domain.APIKeyPrefix + ulid.MustNew(ulid.Timestamp(t0), rng).String(),
					UserID: owner, Name: "bench key", SecretHash: h, PublicKey: domain.PublicKey(h)}, t0)
				if err != nil {
					errs <- err
					return
				}
				e := events[0]
				e.ID = ulid.MustNew(ulid.Timestamp(t0), rng).String()
				data, err := domain.EncodeEvent(e)
				if err != nil {
					errs <- err
					return
				}
				m := nats.NewMsg(store.Subject(e.Category(), e.Aggregate))
				m.Data = data
				m.Header.Set(jetstream.MsgIDHeader, e.ID)
				sum := sha256.Sum256(data)
				m.Header.Set(eventstore.HeaderHash, hex.EncodeToString(sum[:]))
				eventstore.Sign(key, m)
				select {
				case msgs <- m:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(msgs) }()
	sent := 0
	for m := range msgs {
		if _, err := js.PublishMsgAsync(m); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		if sent++; sent%4096 == 0 {
			// Wait for the window's acknowledgements: the client stalls
			// (and fails) past its limit of outstanding publishes.
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				return ctx.Err()
			}
			if every != nil && sent%checkpoint.DefaultEvery == 0 {
				if err := every(); err != nil {
					return err
				}
			}
		}
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	if head < uint64(n) {
		return fmt.Errorf("the log holds %d messages after appending %d keys", head, n)
	}
	return nil
}
