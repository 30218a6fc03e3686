package fleet

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults of a View.
const (
	// DefaultLiveness is how long a node counts as live after its last
	// heartbeat.
	DefaultLiveness = 5 * time.Second
	// DefaultMaxNodes caps how many nodes a View keeps.
	DefaultMaxNodes = 1024
)

// Node is what a View knows of one node.
type Node struct {
	Name             string    `json:"name"`
	Version          string    `json:"version"`
	AppliedSeq       uint64    `json:"applied_seq"`
	StalenessSeconds float64   `json:"staleness_seconds"`
	LastHeard        time.Time `json:"last_heard"`
	// Live is true while the node was heard within the liveness window.
	Live bool `json:"live"`
}

// Option configures a View.
type Option func(*View)

// WithLiveness sets the liveness window (<= 0: DefaultLiveness). A node
// is forgotten after ten windows without a heartbeat.
func WithLiveness(d time.Duration) Option {
	return func(v *View) {
		if d > 0 {
			v.liveness = d
		}
	}
}

// WithClock sets the View's clock (nil: time.Now).
func WithClock(now func() time.Time) Option {
	return func(v *View) {
		if now != nil {
			v.now = now
		}
	}
}

// WithMaxNodes caps how many nodes the View keeps (<= 0:
// DefaultMaxNodes): heartbeats of new names past it are ignored until a
// node is forgotten.
func WithMaxNodes(n int) Option {
	return func(v *View) {
		if n > 0 {
			v.max = n
		}
	}
}

// View is the fleet as heard from heartbeats. It is safe for concurrent
// use.
type View struct {
	liveness time.Duration
	max      int
	now      func() time.Time

	mu      sync.Mutex
	nodes   map[string]*Node
	changed chan struct{} // closed and replaced by every Observe
}

// NewView returns an empty View.
func NewView(opts ...Option) *View {
	v := &View{liveness: DefaultLiveness, max: DefaultMaxNodes, now: time.Now,
		nodes: map[string]*Node{}, changed: make(chan struct{})}
	for _, o := range opts {
		o(v)
	}
	return v
}

// Liveness returns the liveness window.
func (v *View) Liveness() time.Duration { return v.liveness }

// forgetAfter is how long a silent node stays listed (as not live).
func (v *View) forgetAfter() time.Duration { return 10 * v.liveness }

// Observe records a heartbeat. A node's applied sequence never goes back
// in the View while it stays listed: a heartbeat claiming less than
// before (a node restarted from scratch) is taken as it is, since a
// node that lost its state has really not applied what it had.
func (v *View) Observe(hb Heartbeat) {
	if !ValidName(hb.Name) {
		return
	}
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	n, ok := v.nodes[hb.Name]
	if !ok {
		if len(v.nodes) >= v.max {
			v.forget(now)
			if len(v.nodes) >= v.max {
				return
			}
		}
		n = &Node{Name: hb.Name}
		v.nodes[hb.Name] = n
	}
	n.Version, n.AppliedSeq, n.StalenessSeconds, n.LastHeard = hb.Version, hb.AppliedSeq, hb.StalenessSeconds, now
	close(v.changed)
	v.changed = make(chan struct{})
}

// forget drops the nodes silent for longer than forgetAfter; v.mu held.
func (v *View) forget(now time.Time) {
	for name, n := range v.nodes {
		if now.Sub(n.LastHeard) > v.forgetAfter() {
			delete(v.nodes, name)
		}
	}
}

// Nodes lists the nodes heard from and not yet forgotten, by name.
func (v *View) Nodes() []Node {
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.forget(now)
	out := make([]Node, 0, len(v.nodes))
	for _, n := range v.nodes {
		c := *n
		c.Live = now.Sub(n.LastHeard) <= v.liveness
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Node) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Confirmation is how many of the nodes live when a wait began have
// applied the sequence waited for.
type Confirmation struct {
	// Applied of Total live nodes confirmed.
	Applied, Total int
	// Pending names the nodes that have not confirmed, by name.
	Pending []string
}

// Complete reports whether every node confirmed.
func (c Confirmation) Complete() bool { return c.Applied == c.Total }

// Wait blocks until every node live when it is called has announced
// applying seq, or until ctx ends, and says how far it got. A node that
// falls silent during the wait stays unconfirmed: its silence proves
// nothing about the key.
func (v *View) Wait(ctx context.Context, seq uint64) Confirmation {
	now := v.now()
	v.mu.Lock()
	var names []string
	for name, n := range v.nodes {
		if now.Sub(n.LastHeard) <= v.liveness {
			names = append(names, name)
		}
	}
	v.mu.Unlock()
	slices.Sort(names)
	for {
		v.mu.Lock()
		c := Confirmation{Total: len(names)}
		for _, name := range names {
			if n, ok := v.nodes[name]; ok && n.AppliedSeq >= seq {
				c.Applied++
			} else {
				c.Pending = append(c.Pending, name)
			}
		}
		changed := v.changed
		v.mu.Unlock()
		if c.Complete() {
			return c
		}
		select {
		case <-ctx.Done():
			return c
		case <-changed:
		}
	}
}

// ErrNotPermitted is the error of Subscribe when the connection's
// credentials may not hear heartbeats (credentials issued before this
// version, say).
var ErrNotPermitted = errors.New("fleet: these NATS credentials may not subscribe to " + SubjectAll)

// Subscribe feeds the View with the heartbeats published on nc until the
// subscription is unsubscribed or drained. Malformed heartbeats are
// dropped and logged (their subject only). It round-trips to the server
// first, so that a subscription the server refuses is ErrNotPermitted
// here instead of a View that silently hears no one.
func (v *View) Subscribe(nc *nats.Conn, logger *slog.Logger) (*nats.Subscription, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sub, err := nc.Subscribe(SubjectAll, func(m *nats.Msg) {
		hb, err := Parse(m.Subject, m.Data)
		if err != nil {
			logger.Warn("dropped a malformed node heartbeat", "subject", m.Subject, "bytes", len(m.Data))
			return
		}
		v.Observe(hb)
	})
	if err != nil {
		return nil, err
	}
	// The server answers a refused SUB with -ERR before the PONG of the
	// flush, so the refusal is known once Flush returns.
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	if err := nc.LastError(); err != nil && errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), SubjectAll) {
		_ = sub.Unsubscribe()
		return nil, ErrNotPermitted
	}
	return sub, nil
}
