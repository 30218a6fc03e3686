// Package audit reads the event log back for auditors: it verifies that
// nobody added, altered, reordered or removed events (signatures, hash
// chains, sequence gaps, signed Merkle checkpoints), replays events with
// filters, and reconstructs an aggregate's state at a point in time with
// the same fold the projections use.
package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/checkpoint"
)

// Problem is one thing wrong with the log.
type Problem struct {
	Seq       uint64 `json:"seq"`
	Subject   string `json:"subject,omitempty"`
	Aggregate string `json:"aggregate,omitempty"`
	What      string `json:"what"`
}

// String describes the problem in one line: where, and what.
func (p Problem) String() string {
	s := fmt.Sprintf("sequence %d", p.Seq)
	if p.Aggregate != "" {
		s += " (" + p.Aggregate + ")"
	} else if p.Subject != "" {
		s += " (" + p.Subject + ")"
	}
	return s + ": " + p.What
}

// Report is the outcome of Verify.
type Report struct {
	Messages    uint64    `json:"messages"`
	LastSeq     uint64    `json:"last_seq"`
	Aggregates  int       `json:"aggregates"`
	Checkpoints int       `json:"checkpoints"`
	Verified    uint64    `json:"verified_up_to"` // the largest checkpoint size whose root matched
	Problems    []Problem `json:"problems"`
	Truncated   bool      `json:"problems_truncated,omitempty"`
	Duration    float64   `json:"seconds"`

	// AdminRequests counts the events whose kept admin request verified:
	// signed by a key of the admin the event names, active there, for
	// the route that causes the event.
	AdminRequests uint64 `json:"admin_requests_verified"`
}

// OK reports whether the log verified clean.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// MaxProblems bounds the problems a report lists.
const MaxProblems = 1000

// Expectation is a checkpoint the auditor kept from an earlier run: the
// log must still have this root at this size, so that neither rewriting
// nor cutting off its tail goes unnoticed.
type Expectation struct {
	Size uint64
	Root domain.Hash
}

type chainState struct {
	version uint64
	hash    domain.Hash
}

// Verify walks the whole log as it is when called and checks every
// message: its sequence follows the previous one (nothing deleted), it is
// signed by a ledger key (nothing forged or altered), its hash header
// matches, it continues its aggregate's chain (version + 1, prev = the
// previous event's hash: nothing reordered or dropped), and every signed
// checkpoint's root equals the Merkle root of the log up to its size and
// names exactly the messages the ledger did not write. It also checks who
// asked for each event (see authority): an event recorded as an admin's
// act keeps a request signed by a key of that admin, active at that
// position, for the route that causes the event. progress, if not
// nil, is called now and then with the sequence reached.
func Verify(ctx context.Context, store *eventstore.Store, expect *Expectation, progress func(seq, last uint64)) (Report, error) {
	start := time.Now()
	info, err := store.Info(ctx)
	if err != nil {
		return Report{}, err
	}
	cps, err := store.Checkpoints(ctx)
	if err != nil {
		return Report{}, err
	}
	r := &Report{LastSeq: info.LastSeq, Checkpoints: len(cps)}
	add := func(p Problem) {
		if len(r.Problems) < MaxProblems {
			r.Problems = append(r.Problems, p)
		} else {
			r.Truncated = true
		}
	}
	if !info.DenyDelete || !info.DenyPurge {
		add(Problem{What: "the stream allows deleting or purging messages (deny_delete/deny_purge are off)"})
	}
	// Roots to check, by size.
	want := map[uint64][]domain.Event{}
	for _, c := range cps {
		size := c.Data.(domain.LogCheckpoint).Size
		want[size] = append(want[size], c)
	}
	if expect != nil && expect.Size > info.LastSeq {
		add(Problem{Seq: expect.Size, What: fmt.Sprintf("the log ends at %d, before the expected checkpoint size %d: it was truncated", info.LastSeq, expect.Size)})
	}

	tree := checkpoint.NewTree()
	chains := map[string]chainState{}
	auth := newAuthority()
	var forged []uint64
	prevSize := uint64(0)
	next := uint64(1)
	if info.LastSeq == 0 {
		r.Duration = time.Since(start).Seconds()
		return *r, nil
	}

	// Signatures are checked on every core: the subscription hands each
	// message to a worker and queues its result in log order, and the loop
	// below consumes results in that order.
	type decoded struct {
		m   eventstore.RawMessage
		e   domain.Event
		err error
	}
	workers := max(runtime.GOMAXPROCS(0), 1)
	jobs := make(chan func(), workers*64)
	results := make(chan chan decoded, 4096)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for job := range jobs {
				job()
			}
		})
	}
	sub, err := store.SubscribeRaw(ctx, 1, func(m eventstore.RawMessage) {
		ch := make(chan decoded, 1)
		select {
		case results <- ch:
		case <-done:
			return
		}
		select {
		case jobs <- func() {
			e, err := store.Decode(ctx, m)
			ch <- decoded{m, e, err}
		}:
		case <-done:
		}
	}, nil)
	if err != nil {
		close(jobs)
		wg.Wait()
		return Report{}, err
	}
	defer func() {
		close(done)
		sub.Stop()
		close(jobs)
		wg.Wait()
	}()

	for next <= info.LastSeq {
		if r.Messages == info.Messages {
			// Every stored message has arrived, yet the stream's last
			// sequence is further on: its end was deleted.
			add(Problem{Seq: next, What: fmt.Sprintf("sequences %d to %d are missing: the end of the log was deleted", next, info.LastSeq)})
			break
		}
		var d decoded
		select {
		case <-ctx.Done():
			return *r, ctx.Err()
		case ch := <-results:
			select {
			case d = <-ch:
			case <-ctx.Done():
				return *r, ctx.Err()
			}
		}
		m := d.m
		if m.Seq < next {
			continue // redelivered after a consumer reset
		}
		if m.Seq > next {
			add(Problem{Seq: next, What: fmt.Sprintf("sequences %d to %d are missing: deleted from the log", next, m.Seq-1)})
		}
		next = m.Seq + 1
		r.Messages++
		if progress != nil && r.Messages%10000 == 0 {
			progress(m.Seq, info.LastSeq)
		}
		if tree.Size() == m.Seq-1 { // after a gap the tree stops: no root can match
			tree.Append(m.Leaf())
		}

		e, err := d.e, d.err
		switch {
		case errors.Is(err, eventstore.ErrForged):
			forged = append(forged, m.Seq)
			add(Problem{Seq: m.Seq, Subject: m.Subject, What: "not written by the ledger: " + err.Error()})
		case err != nil && !errors.Is(err, domain.ErrUnknownEventType):
			add(Problem{Seq: m.Seq, Subject: m.Subject, What: "undecodable: " + err.Error()})
		default:
			if herr := m.CheckHashHeader(); herr != nil {
				add(Problem{Seq: m.Seq, Aggregate: e.Aggregate, What: herr.Error()})
			}
			key := e.Category() + "." + e.Aggregate
			prev := chains[key]
			if e.Version != prev.version+1 {
				add(Problem{Seq: m.Seq, Aggregate: e.Aggregate, What: fmt.Sprintf("%s has version %d after version %d: an event is missing or out of order", e.Type, e.Version, prev.version)})
			} else if e.Prev != prev.hash && !(prev.version == 0 && e.Prev == (domain.Hash{})) {
				add(Problem{Seq: m.Seq, Aggregate: e.Aggregate, What: fmt.Sprintf("%s does not chain to the aggregate's previous event (prev hash mismatch)", e.Type)})
			}
			chains[key] = chainState{version: e.Version, hash: e.Hash}
			if err == nil {
				for _, what := range auth.check(e) {
					add(Problem{Seq: m.Seq, Aggregate: e.Aggregate, What: what})
				}
			}
		}

		for _, c := range want[m.Seq] {
			cp := c.Data.(domain.LogCheckpoint)
			if tree.Size() != cp.Size {
				add(Problem{Seq: c.Sequence, Aggregate: "checkpoint", What: fmt.Sprintf("cannot check the root at size %d: the log has gaps before it", cp.Size)})
				continue
			}
			if tree.Root() != cp.Root {
				add(Problem{Seq: c.Sequence, Aggregate: "checkpoint", What: fmt.Sprintf("the log up to sequence %d does not match the signed root: events were altered, added or removed", cp.Size)})
				continue
			}
			var inRange []uint64
			for _, f := range forged {
				if f > prevSize && f <= cp.Size {
					inRange = append(inRange, f)
				}
			}
			if !slices.Equal(inRange, cp.Foreign) && !(len(inRange) == 0 && len(cp.Foreign) == 0) {
				add(Problem{Seq: c.Sequence, Aggregate: "checkpoint", What: fmt.Sprintf("names foreign messages %v, the log has %v in (%d, %d]", cp.Foreign, inRange, prevSize, cp.Size)})
			}
			prevSize = cp.Size
			r.Verified = cp.Size
		}
		if expect != nil && m.Seq == expect.Size {
			if tree.Size() != expect.Size || tree.Root() != expect.Root {
				add(Problem{Seq: expect.Size, What: "the log up to the expected checkpoint does not have the expected root: it was rewritten"})
			}
		}
	}
	// A checkpoint that commits to more of the log than there is: the
	// messages it covered at the end are gone.
	for size, list := range want {
		if size >= next {
			for _, c := range list {
				add(Problem{Seq: c.Sequence, Aggregate: "checkpoint", What: fmt.Sprintf("commits to the log up to sequence %d, but the log ends at %d: events were removed", size, next-1)})
			}
		}
	}
	slices.SortStableFunc(r.Problems, func(a, b Problem) int { return cmp.Compare(a.Seq, b.Seq) })
	r.Aggregates = len(chains)
	r.AdminRequests = auth.verified
	r.Duration = time.Since(start).Seconds()
	if progress != nil {
		progress(info.LastSeq, info.LastSeq)
	}
	return *r, nil
}
