package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/usage"
	"github.com/keyledger/keyledger/projections"
)

// openUsage sets up the usage stream (with the embedded server, whose
// operator credentials serve holds; with an outside NATS `keyledger
// setup` creates it), starts publishing what serve's /validate counts, and
// folds the usage stream into the read model of last use and buckets.
// serve reports under its fleet name (node).
// Usage is advisory: a usage stream serve cannot read is logged loudly and
// leaves the read model empty; it stops nothing else.
func (s *Server) openUsage(ctx context.Context, node string, counters *usage.Counters, lookup *projections.Lookup, m *handlers.Metrics) error {
	cfg := &s.Config
	if s.ns != nil {
		if err := usage.SetUp(ctx, s.nc, cfg.usageStream()); err != nil {
			return err
		}
		if err := setUpLimits(ctx, s.nc, cfg.Stream); err != nil {
			return err
		}
	}
	f, err := usage.NewFlusher(usage.FlusherConfig{Counters: counters, Conn: s.nc, Node: node,
		Interval: cfg.UsageInterval, Logger: s.Logger.With("component", "usage")})
	if err != nil {
		return ConfigError{err}
	}
	if err := m.Register(f.Collectors()...); err != nil {
		return err
	}
	s.usage = f
	// Only keys the log holds are kept: the usage stream is written by
	// every validation node.
	s.usageFold = usage.NewFold(usage.FoldConfig{Logger: s.Logger.With("component", "usage"),
		Known: func(apiKey string) bool {
			_, res := lookup.Signer(apiKey, time.Now())
			return res.Reason != domain.ReasonUnknownKey
		}})
	fold := s.usageFold
	if err := m.Register(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyledger_usage_gaps_total",
			Help: "Times a node's usage report started later than its previous one ended: the counts of a node that died, or reports it dropped."},
			func() float64 { n, _ := fold.Gaps(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyledger_usage_refused_reports_total",
			Help: "Usage reports refused as malformed or published on another node's subject."},
			func() float64 { _, r := fold.Applied(); return float64(r) })); err != nil {
		return err
	}
	if s.usageStop, err = s.usageFold.Follow(ctx, s.nc, cfg.Stream); err != nil {
		s.Logger.Error("cannot read the usage stream: last use and usage stay empty (run keyledger setup with the operator's credentials)",
			"stream", usage.StreamName(cfg.Stream), "err", err)
		s.usageStop = nil
	}
	f.Start()
	return nil
}

// closeUsage publishes what was counted since the last flush and stops
// following the usage stream.
func (s *Server) closeUsage() {
	if s.usage != nil {
		s.usage.Close()
	}
	if s.usageStop != nil {
		s.usageStop()
	}
}

// Usage returns serve's usage read model (nil before Open).
func (s *Server) Usage() *usage.Fold { return s.usageFold }
