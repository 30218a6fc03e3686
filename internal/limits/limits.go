package limits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
)

// Defaults of Config.
const (
	// DefaultLeaseTTL is how long a credits lease lives.
	DefaultLeaseTTL = 10 * time.Second
	// DefaultTimeout bounds a decision that waits for NATS.
	DefaultTimeout = 250 * time.Millisecond
	// DefaultExpectedNodes is the nodes Local divides a rate limit by.
	DefaultExpectedNodes = 3
)

// Tuning of the leases; see the package documentation.
const (
	// leaseHorizon is the demand a lease covers: what the node would use
	// in leaseHorizon at its rate; quietHorizon when nobody competes (a
	// window less than half taken, a pool far larger than the lease), so
	// that keys used now and then renew their leases ten times less
	// often.
	leaseHorizon = 100 * time.Millisecond
	quietHorizon = time.Second
	// maxShare: a lease takes at most 1/maxShare of what is left
	// (rounded up), so that busy nodes share the rest.
	maxShare = 4
	// recheckEvery is how long a node remembers that a window or a pool
	// is exhausted (or a record unreadable) before it asks again.
	recheckEvery = 100 * time.Millisecond
	// defaultIdle is how long a key goes unused before the node gives
	// back what it holds of it.
	defaultIdle = time.Second
	// evictAfter is how long a key goes unused before the node forgets
	// it (holding nothing of it).
	evictAfter = time.Minute
	// minBackoff and maxBackoff bound how long the node leaves NATS
	// alone after a failed round trip.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// casTries bounds the compare-and-set attempts of one round trip.
	casTries = 16
	// windowGrace is how long a rate window's record outlives the window
	// (on top of one more window): nodes whose clocks lag still find it.
	windowGrace = time.Minute
)

// Mode is what a node does when a decision needs a lease and NATS is out
// of reach (--limits-unreachable).
type Mode int

const (
	// Deny refuses with limits_unavailable: limits are a promise of
	// exactness, often billing, and keys without limits are unaffected.
	Deny Mode = iota
	// Local enforces a rate limit locally at ceil(limit/ExpectedNodes)
	// per window; credits are still never spent beyond what the node
	// holds.
	Local
)

// ParseMode parses "deny" or "local".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "deny":
		return Deny, nil
	case "local":
		return Local, nil
	}
	return 0, fmt.Errorf("limits: unreachable mode %q: want deny or local", truncate(s))
}

// String returns "deny" or "local".
func (m Mode) String() string {
	if m == Local {
		return "local"
	}
	return "deny"
}

// Config configures a Limiter; zero fields take the defaults.
type Config struct {
	// Conn is the node's NATS connection (validator or ledger
	// credentials). Required.
	Conn *nats.Conn
	// Stream is the log's stream; the bucket is <Stream>_LIMITS.
	// Required.
	Stream string
	// Node is the node's fleet name, in its lease ids. Required.
	Node string
	// Unreachable is what to do when a lease is needed and NATS is out
	// of reach.
	Unreachable Mode
	// ExpectedNodes divides a rate limit in Local mode (default
	// DefaultExpectedNodes).
	ExpectedNodes int
	// LeaseTTL is how long a credits lease lives (default
	// DefaultLeaseTTL). Nodes' wall clocks must agree within it.
	LeaseTTL time.Duration
	// Timeout bounds a decision that waits for NATS (default
	// DefaultTimeout).
	Timeout time.Duration
	// Clock gives the time of rate windows and refills (default
	// time.Now).
	Clock func() time.Time
	// Logger logs failures (never a key's secret; API key ids only).
	Logger *slog.Logger
}

// RateState is a key's rate limit as a decision leaves it.
type RateState struct {
	Limit uint64
	// Remaining is the best estimate of the requests left in the window
	// after this one: what this node holds and what the others had not
	// taken when it last asked.
	Remaining uint64
	// Reset is when the window ends.
	Reset  time.Time
	Window time.Duration
}

// Decision is the outcome of Take.
type Decision struct {
	// Reason is ReasonOK, ReasonRateLimitExceeded, ReasonUsageExceeded
	// or ReasonLimitsUnavailable.
	Reason domain.Reason
	// RetryAfter is, when refused, how long until the window ends or the
	// next refill (0: unknown).
	RetryAfter time.Duration
	// Rate is nil without a rate limit.
	Rate *RateState
	// Credits is nil without credits: the credits left after this
	// request, an estimate (what the node holds and the pool as it last
	// saw it).
	Credits *uint64
	// RoundTrip reports that the decision waited for NATS.
	RoundTrip bool
}

// Limiter enforces keys' rate limits and credits across every node that
// shares the limits bucket. It is safe for concurrent use; its goroutines
// (one janitor, and one per round trip in flight) stop on Close.
type Limiter struct {
	cfg     Config
	st      *store
	leaseID string
	// wallClock: Config.Clock is time.Now (the decision's one reading
	// serves both).
	wallClock bool
	idle      atomic.Int64 // time.Duration; settable by tests
	log       *slog.Logger
	m         *metrics

	// keys maps API key ids to *keyState: a sync.Map, read-mostly, so
	// that decisions on different cores share no lock to find a key.
	keys sync.Map

	life   sync.Mutex // orders wg.Add against Close
	closed atomic.Bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	downMu    sync.Mutex
	downUntil time.Time // monotonic: no round trips before it
	backoff   time.Duration
}

// New returns a Limiter and starts its janitor. It does no I/O: the
// bucket is bound on the first round trip. Errors: a missing field or a
// negative duration.
func New(cfg Config) (*Limiter, error) {
	if cfg.Conn == nil {
		return nil, errors.New("limits: nil NATS connection")
	}
	if cfg.Stream == "" {
		return nil, errors.New("limits: empty stream name")
	}
	if !validLeaseID(cfg.Node) || len(cfg.Node) > 64 {
		return nil, errors.New("limits: node name: want 1 to 64 printable characters without spaces or quotes")
	}
	if cfg.Unreachable != Deny && cfg.Unreachable != Local {
		return nil, errors.New("limits: unknown unreachable mode")
	}
	if cfg.ExpectedNodes < 0 || cfg.LeaseTTL < 0 || cfg.Timeout < 0 {
		return nil, errors.New("limits: negative expected nodes, lease TTL or timeout")
	}
	if cfg.ExpectedNodes == 0 {
		cfg.ExpectedNodes = DefaultExpectedNodes
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < 2*time.Millisecond {
		return nil, errors.New("limits: lease TTL too short")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	wallClock := cfg.Clock == nil
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, err
	}
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	ctx, cancel := context.WithCancel(context.Background())
	l := &Limiter{cfg: cfg, st: &store{js: js, bucket: BucketFor(cfg.Stream)},
		leaseID: cfg.Node + "/" + hex.EncodeToString(suffix[:]), wallClock: wallClock,
		log: cfg.Logger, m: newMetrics(), ctx: ctx, cancel: cancel}
	l.idle.Store(int64(defaultIdle))
	l.wg.Add(1)
	go l.janitor()
	return l, nil
}

// Take decides one request of a valid key with limits lim: nil or none
// is allowed at once, with no work. cost (at least 1; 0 counts as 1)
// applies to credits; the rate limit counts requests. It waits for NATS
// at most Config.Timeout, and only when the node holds no lease that
// covers the request; it never returns an error: what cannot be decided
// is refused with ReasonLimitsUnavailable (or, in Local mode, decided
// locally). A refused request spends nothing.
func (l *Limiter) Take(ctx context.Context, apiKey string, lim *domain.Limits, cost uint64) Decision {
	if lim.None() {
		return Decision{Reason: domain.ReasonOK}
	}
	d := l.take(ctx, apiKey, lim, max(cost, 1))
	l.m.decided(d)
	return d
}

func (l *Limiter) take(ctx context.Context, apiKey string, lim *domain.Limits, cost uint64) Decision {
	if !domain.ValidAPIKey(apiKey) || cost > domain.MaxCost || l.isClosed() || !validLimits(lim) {
		return Decision{Reason: domain.ReasonLimitsUnavailable}
	}
	// time.Now is most of a decision's cost: read once (twice with a
	// clock of its own), and again only after waiting.
	start := time.Now()
	now := start
	if !l.wallClock {
		now = l.cfg.Clock()
	}
	deadline := start.Add(l.cfg.Timeout)
	ks := l.state(apiKey)
	ks.mu.Lock()
	for ks.dead {
		ks.mu.Unlock()
		ks = l.state(apiKey)
		ks.mu.Lock()
	}
	defer ks.mu.Unlock()
	ks.lastUse = start
	var d Decision
	mono := start
	for {
		var rs *rateLocal
		var cs *creditLocal
		rateNeed, creditNeed, local := false, false, false
		if rl := lim.RateLimit; rl != nil {
			rs = ks.syncRate(l, *rl, now)
			switch rs.check(mono) {
			case refused:
				return rs.refuse(d, now)
			case need:
				rateNeed = true
			}
		}
		if cp := lim.Credits; cp != nil {
			cs = ks.syncCredits(*cp, now, mono)
			switch cs.check(cost, mono) {
			case refused:
				return cs.refuse(d, rs, now, domain.ReasonUsageExceeded)
			case need:
				creditNeed = true
			}
		}
		if rateNeed || creditNeed {
			failing := (rateNeed && rs.failedUntil.After(mono)) || (creditNeed && cs.failedUntil.After(mono)) || l.isClosed()
			if failing || !mono.Before(deadline) || !l.reachable(mono) || ctx.Err() != nil {
				// No lease to be had in time: decided locally.
				l.m.unreachable.Inc()
				if creditNeed {
					return cs.refuse(d, rs, now, domain.ReasonLimitsUnavailable)
				}
				if l.cfg.Unreachable != Local {
					return rs.refuse(Decision{Reason: domain.ReasonLimitsUnavailable, RoundTrip: d.RoundTrip}, now)
				}
				if rs.accepted >= ceilDiv(rs.limit, uint64(l.cfg.ExpectedNodes)) {
					return rs.refuse(d, now)
				}
				local = true
				rateNeed = false
			}
		}
		if !rateNeed && !creditNeed {
			return l.commit(d, ks, rs, cs, cost, local, now, mono)
		}
		var waits []chan struct{}
		if rateNeed {
			waits = append(waits, l.rateFlight(ks, now))
		}
		if creditNeed {
			waits = append(waits, l.creditFlight(ks, *lim.Credits, now, cost))
		}
		d.RoundTrip = true
		ks.mu.Unlock()
		timer := time.NewTimer(time.Until(deadline))
	wait:
		for _, w := range waits {
			select {
			case <-w:
			case <-timer.C:
				break wait
			case <-ctx.Done():
				break wait
			}
		}
		timer.Stop()
		ks.mu.Lock()
		mono = time.Now()
	}
}

// commit spends what the decision takes and prefetches the next leases.
func (l *Limiter) commit(d Decision, ks *keyState, rs *rateLocal, cs *creditLocal, cost uint64, local bool, now, mono time.Time) Decision {
	d.Reason = domain.ReasonOK
	if rs != nil {
		if !local {
			rs.avail--
		}
		rs.accepted++
		rs.served++
		d.Rate = rs.state(now)
		if !local && rs.flight == nil && rs.avail <= rs.lastLease/2 && rs.accepted+rs.avail < rs.limit &&
			rs.exhaustedUntil.IsZero() && l.reachable(mono) {
			l.rateFlight(ks, now)
		}
	}
	if cs != nil {
		cs.avail -= cost
		cs.served += cost
		left := satAdd(cs.avail, cs.poolSeen)
		d.Credits = &left
		if cs.flight == nil && cs.avail <= cs.lastLease/2 && cs.poolSeen > 0 && l.reachable(mono) {
			l.creditFlight(ks, cs.policy, now, 0)
		}
	}
	return d
}

// Close stops the janitor, waits for the round trips in flight, and gives
// back what the node holds: unused rate tokens of current windows and
// credits leases (within ctx; what cannot be given back is lost as if the
// node had died: see the package documentation). Take refuses afterwards
// with limits_unavailable.
func (l *Limiter) Close(ctx context.Context) error {
	l.life.Lock()
	if l.closed.Load() {
		l.life.Unlock()
		return nil
	}
	l.closed.Store(true)
	l.life.Unlock()
	l.cancel()
	l.wg.Wait()
	if !l.cfg.Conn.IsConnected() {
		// Nobody to give back to: what the node holds stays leased
		// until it expires or its window ends.
		return errors.New("limits: NATS is not connected: nothing given back")
	}
	var errs []error
	for _, ks := range l.snapshot() {
		if err := l.giveBack(ctx, ks, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (l *Limiter) isClosed() bool { return l.closed.Load() }

// spawn runs f on a goroutine the Limiter owns, unless it is closed.
func (l *Limiter) spawn(f func(ctx context.Context)) bool {
	l.life.Lock()
	defer l.life.Unlock()
	if l.closed.Load() {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f(l.ctx)
	}()
	return true
}

// state returns the key's local state, made on first use.
func (l *Limiter) state(apiKey string) *keyState {
	if v, ok := l.keys.Load(apiKey); ok {
		return v.(*keyState)
	}
	v, _ := l.keys.LoadOrStore(apiKey, &keyState{apiKey: apiKey})
	return v.(*keyState)
}

// snapshot lists the keys' states.
func (l *Limiter) snapshot() []*keyState {
	var out []*keyState
	l.keys.Range(func(_, v any) bool {
		out = append(out, v.(*keyState))
		return true
	})
	return out
}

// reachable reports whether a round trip may be tried now: connected, and
// not backing off after a failure.
func (l *Limiter) reachable(mono time.Time) bool {
	if !l.cfg.Conn.IsConnected() {
		return false
	}
	l.downMu.Lock()
	defer l.downMu.Unlock()
	return !mono.Before(l.downUntil)
}

// roundTripDone records a round trip's outcome for the back-off: a
// failure other than a malformed record leaves NATS alone for a while,
// longer after each failure in a row.
func (l *Limiter) roundTripDone(err error) {
	l.downMu.Lock()
	defer l.downMu.Unlock()
	if err == nil || errors.Is(err, errBadRecord) {
		l.backoff = 0
		return
	}
	l.backoff = min(max(2*l.backoff, minBackoff), maxBackoff)
	l.downUntil = time.Now().Add(l.backoff)
}

// validLimits reports whether lim is within the domain's bounds: a
// read model hands out only those, and a zero window or interval would
// divide by zero.
func validLimits(lim *domain.Limits) bool {
	if rl := lim.RateLimit; rl != nil && rl.Validate() != nil {
		return false
	}
	return lim.Credits == nil || validPolicy(*lim.Credits)
}

// validPolicy reports whether a credit policy's refill has an interval.
func validPolicy(p domain.CreditPolicy) bool {
	return p.Refill == nil || p.Refill.Interval.Duration() >= domain.MinRefillInterval
}

// ceilDiv divides rounding up.
func ceilDiv(a, b uint64) uint64 {
	if b == 0 {
		return a
	}
	return (a + b - 1) / b
}

// demand is what a node expects to need over horizon at rate per second,
// at least 1.
func demand(rate float64, horizon time.Duration) uint64 {
	n := math.Ceil(rate * horizon.Seconds())
	if n < 1 || math.IsNaN(n) {
		return 1
	}
	if n > maxCount {
		return maxCount
	}
	return uint64(n)
}

// estimate updates a rate estimate (per second) with served units since
// the last estimate at last.
func estimate(rate float64, served uint64, last, now time.Time) float64 {
	if last.IsZero() {
		return 0
	}
	el := now.Sub(last).Seconds()
	if el < 1e-4 {
		el = 1e-4
	}
	inst := float64(served) / el
	if rate == 0 {
		return inst
	}
	return (rate + inst) / 2
}
