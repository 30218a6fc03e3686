package usage

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
)

// Bucket sizes a Fold keeps.
const (
	Hour = time.Hour
	Day  = 24 * time.Hour
)

// Default retention of a Fold's buckets: hourly buckets for a week, daily
// ones for the usage stream's retention.
const (
	DefaultHourlyRetention = 7 * Day
	DefaultDailyRetention  = DefaultRetention
)

// Counts are the validations of one key in one bucket (or window).
type Counts struct {
	Valid   uint64
	Refused map[domain.Reason]uint64
}

// Total is every validation counted.
func (c Counts) Total() uint64 {
	n := c.Valid
	for _, v := range c.Refused {
		n = addSat(n, v)
	}
	return n
}

// add adds k's counts, saturating: reports are written by every
// validation node, and no run of them may wrap a count to a small one.
func (c *Counts) add(k KeyUsage) {
	c.Valid = addSat(c.Valid, k.Valid)
	for r, v := range k.Refused {
		if c.Refused == nil {
			c.Refused = make(map[domain.Reason]uint64)
		}
		c.Refused[r] = addSat(c.Refused[r], v)
	}
}

// addSat is a+b, or the largest uint64 when that overflows.
func addSat(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

func (c *Counts) addCounts(o Counts) {
	c.add(KeyUsage{Valid: o.Valid, Refused: o.Refused})
}

// Bucket is a key's counts in [Start, Start+size).
type Bucket struct {
	Start time.Time
	Counts
}

// keyUsage is what a Fold keeps of one key.
type keyUsage struct {
	lastUsed time.Time
	hourly   map[int64]*Counts // bucket start, Unix seconds
	daily    map[int64]*Counts
}

// FoldConfig configures a Fold.
type FoldConfig struct {
	// Known says whether a key exists: reports name any key id a node
	// with the validator's credentials cares to write, and the fold keeps
	// only keys that exist, so its memory is bounded by the number of
	// keys. nil: every key.
	Known  func(apiKey string) bool
	Hourly time.Duration // retention of hourly buckets; 0: DefaultHourlyRetention
	Daily  time.Duration // retention of daily buckets; 0: DefaultDailyRetention
	Logger *slog.Logger
}

// Fold is the usage read model: per key, hourly buckets for the last
// Hourly, daily buckets for the last Daily, and the last valid use. Its
// memory is bounded: keys that exist (FoldConfig.Known) times buckets
// within retention (168 hourly and 90 daily at the defaults), and only
// buckets with counts take room. A report's counts go to the bucket its
// interval starts in. It is safe for concurrent use.
type Fold struct {
	cfg      FoldConfig
	mu       sync.RWMutex
	keys     map[string]*keyUsage
	newest   time.Time // the newest report's end: the fold's clock for pruning
	applied  atomic.Uint64
	rejected atomic.Uint64
	// nodes is each node's newest interval end: a report that starts
	// after it shows a gap, counts lost by a node that died (or reports
	// dropped while NATS was unreachable). At most maxNodes are kept.
	nodes   map[string]time.Time
	gaps    uint64
	gapTime time.Duration
}

// maxNodes bounds the nodes a Fold remembers for its gap count.
const maxNodes = 10_000

// gapSlack is how much later than the previous report's end a node's next
// report may start without counting as a gap: the flush itself takes time.
const gapSlack = time.Second

// NewFold returns an empty Fold.
func NewFold(cfg FoldConfig) *Fold {
	cfg.Hourly = cmp.Or(cfg.Hourly, DefaultHourlyRetention)
	cfg.Daily = cmp.Or(cfg.Daily, DefaultDailyRetention)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Fold{cfg: cfg, keys: make(map[string]*keyUsage), nodes: make(map[string]time.Time)}
}

// Apply adds a report's counts.
func (f *Fold) Apply(r Report) {
	hour, day := r.Start.Truncate(Hour).Unix(), r.Start.UTC().Truncate(Day).Unix()
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.End.After(f.newest) {
		f.newest = r.End
	}
	if prev, ok := f.nodes[r.Node]; ok && r.Start.Sub(prev) > gapSlack {
		f.gaps++
		f.gapTime += r.Start.Sub(prev)
	}
	if _, ok := f.nodes[r.Node]; ok || len(f.nodes) < maxNodes {
		if r.End.After(f.nodes[r.Node]) {
			f.nodes[r.Node] = r.End
		}
	}
	for _, k := range r.Keys {
		if f.cfg.Known != nil && !f.cfg.Known(k.APIKey) {
			continue
		}
		u := f.keys[k.APIKey]
		if u == nil {
			u = &keyUsage{hourly: make(map[int64]*Counts), daily: make(map[int64]*Counts)}
			f.keys[k.APIKey] = u
		}
		if k.LastUsed != nil && k.LastUsed.After(u.lastUsed) {
			u.lastUsed = *k.LastUsed
		}
		if f.newest.Sub(r.Start) < f.cfg.Hourly {
			bucket(u.hourly, hour).add(k)
		}
		if f.newest.Sub(r.Start) < f.cfg.Daily {
			bucket(u.daily, day).add(k)
		}
		prune(u.hourly, f.newest.Add(-f.cfg.Hourly).Unix())
		prune(u.daily, f.newest.Add(-f.cfg.Daily).Unix())
	}
	f.applied.Add(1)
}

func bucket(m map[int64]*Counts, start int64) *Counts {
	c := m[start]
	if c == nil {
		c = &Counts{}
		m[start] = c
	}
	return c
}

// prune drops the buckets that started before oldest (Unix seconds); the
// maps hold few buckets, so a scan is cheap.
func prune(m map[int64]*Counts, oldest int64) {
	for s := range m {
		if s < oldest-int64(Day/time.Second) {
			delete(m, s)
		}
	}
}

// LastUsed returns when apiKey was last validated, as precise as the
// nodes' flush interval, and whether it ever was.
func (f *Fold) LastUsed(apiKey string) (time.Time, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	u := f.keys[apiKey]
	if u == nil || u.lastUsed.IsZero() {
		return time.Time{}, false
	}
	return u.lastUsed, true
}

// Buckets returns apiKey's buckets of size (Hour or Day) that start in
// [from, to), oldest first, with counts only.
func (f *Fold) Buckets(apiKey string, from, to time.Time, size time.Duration) []Bucket {
	f.mu.RLock()
	defer f.mu.RUnlock()
	u := f.keys[apiKey]
	if u == nil {
		return nil
	}
	m := u.hourly
	if size == Day {
		m = u.daily
	}
	var out []Bucket
	for s, c := range m {
		t := time.Unix(s, 0).UTC()
		if t.Before(from) || !t.Before(to) {
			continue
		}
		out = append(out, Bucket{Start: t, Counts: Counts{Valid: c.Valid, Refused: maps.Clone(c.Refused)}})
	}
	slices.SortFunc(out, func(a, b Bucket) int { return a.Start.Compare(b.Start) })
	return out
}

// KeyTotal is one key's counts over a window.
type KeyTotal struct {
	APIKey   string
	LastUsed time.Time
	Counts
}

// Top returns the n keys with the most validations in the hourly buckets
// that start at or after since, busiest first (ties by key id).
func (f *Fold) Top(since time.Time, n int) []KeyTotal {
	f.mu.RLock()
	var all []KeyTotal
	for k, u := range f.keys {
		t := KeyTotal{APIKey: k, LastUsed: u.lastUsed}
		for s, c := range u.hourly {
			if s >= since.Truncate(Hour).Unix() {
				t.addCounts(*c)
			}
		}
		if t.Total() > 0 {
			all = append(all, t)
		}
	}
	f.mu.RUnlock()
	slices.SortFunc(all, func(a, b KeyTotal) int {
		return cmp.Or(cmp.Compare(b.Total(), a.Total()), cmp.Compare(a.APIKey, b.APIKey))
	})
	return all[:min(n, len(all))]
}

// Applied returns how many reports the fold applied, and how many it
// refused as malformed.
func (f *Fold) Applied() (applied, rejected uint64) { return f.applied.Load(), f.rejected.Load() }

// Follow reads the usage stream of the event stream named stream from its
// start and keeps applying its reports until ctx ends. A report that does
// not parse is skipped, logged and counted (see Applied). It returns once
// the consumer runs.
func (f *Fold) Follow(ctx context.Context, nc *nats.Conn, stream string) (stop func(), err error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	cons, err := js.OrderedConsumer(ctx, StreamName(stream), jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		r, err := ParseReport(m.Data())
		if err == nil && m.Subject() != Subject(r.Node) {
			err = errors.New("usage report: published on another node's subject")
		}
		if err != nil {
			f.rejected.Add(1)
			f.cfg.Logger.Warn("usage report refused", "subject", m.Subject(), "error", err)
			return
		}
		f.Apply(r)
	})
	if err != nil {
		return nil, err
	}
	return cc.Stop, nil
}

// ErrBadBucket is the error of a bucket size other than 1h or 1d.
var ErrBadBucket = errors.New("bucket: want 1h or 1d")

// ParseBucket parses "1h" or "1d".
func ParseBucket(s string) (time.Duration, error) {
	switch s {
	case "1h", "":
		return Hour, nil
	case "1d":
		return Day, nil
	}
	return 0, ErrBadBucket
}

// Gaps returns how many times a node's report started later than its
// previous one ended, and the time those gaps cover: the intervals whose
// counts never arrived (a node killed loses at most the interval it was
// in; its next start shows the gap).
func (f *Fold) Gaps() (n uint64, covered time.Duration) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.gaps, f.gapTime
}
