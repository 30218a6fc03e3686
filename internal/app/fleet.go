package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/fleet"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/validator"
)

// FleetConfig is how a node announces itself and, for serve, how it
// judges the fleet (internal/fleet).
type FleetConfig struct {
	// NodeName names the node in heartbeats (--node-name; "": the host
	// name, "serve:" before it for serve). Letters, digits, '_', '-' and
	// ':' only, at most 64.
	NodeName string
	// HeartbeatInterval is the time between heartbeats when nothing is
	// applied (0: fleet.DefaultInterval).
	HeartbeatInterval time.Duration
	// Liveness is how long serve counts a node as live after its last
	// heartbeat (--node-liveness; 0: fleet.DefaultLiveness).
	Liveness time.Duration
	// WaitTimeout bounds ?wait=nodes (--wait-timeout; 0:
	// handlers.DefaultWaitTimeout).
	WaitTimeout time.Duration
	// Clock is the fleet view's clock (nil: time.Now); tests set it.
	Clock func() time.Time
}

// nodeName returns the configured name, or prefix and the host name.
func (c FleetConfig) nodeName(prefix string) (string, error) {
	if c.NodeName != "" {
		if !fleet.ValidName(c.NodeName) {
			return "", ConfigError{fmt.Errorf("--node-name %q: want 1 to %d letters, digits, '_', '-' or ':'", c.NodeName, fleet.MaxNameLen)}
		}
		return c.NodeName, nil
	}
	host, err := os.Hostname()
	if err != nil {
		host = ""
	}
	return fleet.NameFrom(prefix + host), nil
}

func (c FleetConfig) check() error {
	if c.HeartbeatInterval < 0 || c.Liveness < 0 || c.WaitTimeout < 0 {
		return ConfigError{fmt.Errorf("--node-liveness and --wait-timeout must not be negative")}
	}
	return nil
}

// binaryVersion is the main module's version from the build information.
func binaryVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// announce publishes the node's heartbeats on nc until ctx ends.
func announce(ctx context.Context, wg *sync.WaitGroup, nc *nats.Conn, name string, interval time.Duration, src fleet.Source, logger *slog.Logger) {
	a := &fleet.Announcer{Conn: nc, Name: name, Version: binaryVersion(), Source: src, Interval: interval, Logger: logger}
	wg.Go(func() {
		if err := a.Run(ctx); err != nil {
			logger.Error("node heartbeats stopped", "err", err)
		}
	})
}

// validatorSource is a validation node as a heartbeat's source.
type validatorSource struct{ v *validator.Validator }

var _ fleet.Source = validatorSource{}

// Applied returns the node's applied sequence and staleness.
func (s validatorSource) Applied() (uint64, float64) {
	st := s.v.Status()
	return st.AppliedSeq, st.StalenessSeconds
}

// WaitFor waits until the node applied seq.
func (s validatorSource) WaitFor(ctx context.Context, seq uint64) error { return s.v.WaitFor(ctx, seq) }

// serveSource is serve's projector (its /validate) as a heartbeat's source.
type serveSource struct {
	p *projections.Projector
	v *validator.Validator
}

var _ fleet.Source = serveSource{}

// Applied returns the projector's applied sequence and serve's staleness.
func (s serveSource) Applied() (uint64, float64) {
	return s.p.Status().Applied, s.v.Status().StalenessSeconds
}

// WaitFor waits until the projector applied seq.
func (s serveSource) WaitFor(ctx context.Context, seq uint64) error { return s.p.WaitFor(ctx, seq) }

// registerFleetMetrics exports how many nodes are live and how far the
// furthest behind of them is.
func registerFleetMetrics(m *handlers.Metrics, view *fleet.View, p *projections.Projector) error {
	live := func() (n int, maxLag uint64) {
		head := p.Status().Applied
		for _, node := range view.Nodes() {
			if !node.Live {
				continue
			}
			n++
			if head > node.AppliedSeq {
				maxLag = max(maxLag, head-node.AppliedSeq)
			}
		}
		return n, maxLag
	}
	if err := m.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "keyledger_fleet_live_nodes",
		Help: "Nodes (validation nodes and serves) heard within --node-liveness; ?wait=nodes waits for each.",
	}, func() float64 { n, _ := live(); return float64(n) })); err != nil {
		return err
	}
	return m.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "keyledger_fleet_max_lag",
		Help: "Stream sequences the live node furthest behind this serve has yet to apply.",
	}, func() float64 { _, lag := live(); return float64(lag) }))
}
