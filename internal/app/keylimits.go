package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/limits"
	"github.com/keyledger/keyledger/validator"
)

// KeyLimitsConfig is how serve's /validate and a validation node count
// keys' rate limits and credits together (internal/limits).
type KeyLimitsConfig struct {
	// Unreachable is what a node does when it needs the shared counters
	// and cannot reach them (--limits-unreachable): "deny" (the default)
	// or "local".
	Unreachable string
	// ExpectedNodes is how many nodes share a key's rate limit, which
	// each enforces alone at limit/ExpectedNodes while the counters are
	// out of reach in "local" mode (--limits-expected-nodes; 0:
	// limits.DefaultExpectedNodes).
	ExpectedNodes int
	// Clock is the clock of rate windows and refills (tests; nil:
	// time.Now).
	Clock func() time.Time
	// Timeout bounds a decision that waits for the shared counters (0:
	// limits.DefaultTimeout); past it the key is refused as
	// limits_unavailable. Tests that count exactly on a loaded machine
	// raise it.
	Timeout time.Duration
}

// now is the time of the configured clock.
func (c KeyLimitsConfig) now() time.Time {
	if c.Clock != nil {
		return c.Clock()
	}
	return time.Now()
}

// openLimiter starts the limiter of the node named node on nc.
func (c KeyLimitsConfig) openLimiter(nc *nats.Conn, stream, node string, logger *slog.Logger) (*limits.Limiter, error) {
	mode := limits.Deny
	if c.Unreachable != "" {
		m, err := limits.ParseMode(c.Unreachable)
		if err != nil {
			return nil, ConfigError{fmt.Errorf("--limits-unreachable: %w", err)}
		}
		mode = m
	}
	if c.ExpectedNodes < 0 {
		return nil, ConfigError{fmt.Errorf("--limits-expected-nodes must not be negative")}
	}
	l, err := limits.New(limits.Config{Conn: nc, Stream: stream, Node: node, Unreachable: mode,
		ExpectedNodes: c.ExpectedNodes, Clock: c.Clock, Timeout: c.Timeout, Logger: logger})
	if err != nil {
		return nil, ConfigError{err}
	}
	return l, nil
}

// keyLimiter is internal/limits as validation's validator.Limiter; now is
// the limiter's clock, which the time left in a window is counted by.
type keyLimiter struct {
	l   *limits.Limiter
	now func() time.Time
}

// Take charges one request to the key's limits.
func (a keyLimiter) Take(ctx context.Context, apiKey string, lim *domain.Limits, cost uint64) validator.LimitDecision {
	return ValidatorDecision(a.l.Take(ctx, apiKey, lim, cost), a.now())
}

// ValidatorDecision is a limiter's decision as validation takes it; now
// is the limiter's clock reading, which the time left in the window is
// counted from.
func ValidatorDecision(d limits.Decision, now time.Time) validator.LimitDecision {
	out := validator.LimitDecision{Reason: d.Reason, RetryAfter: d.RetryAfter, Credits: d.Credits}
	if r := d.Rate; r != nil {
		out.Rate = &validator.RateState{Limit: r.Limit, Remaining: r.Remaining, ResetIn: r.Reset.Sub(now), Window: r.Window}
	}
	return out
}

// creditsReader reads keys' live credits from the limits bucket for the
// key views (handlers.CreditsReader), binding the bucket on first use.
type creditsReader struct {
	nc      *nats.Conn
	stream  string
	now     func() time.Time
	limiter *limits.Limiter // serve's own: its unspent lease counts, not the whole lease

	mu sync.Mutex
	kv jetstream.KeyValue
}

// Remaining returns the credits the nodes left to apiKey under p.
func (r *creditsReader) Remaining(ctx context.Context, apiKey string, p domain.CreditPolicy) (uint64, error) {
	kv, err := r.bucket(ctx)
	if err != nil {
		return 0, err
	}
	return r.limiter.Remaining(ctx, kv, apiKey, p, r.now())
}

func (r *creditsReader) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kv != nil {
		return r.kv, nil
	}
	js, err := jetstream.New(r.nc)
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, limits.BucketFor(r.stream))
	if err != nil {
		return nil, err
	}
	r.kv = kv
	return kv, nil
}
