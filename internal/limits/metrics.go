package limits

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyledger/keyledger/domain"
)

// metrics are the Limiter's counters. They name no key.
type metrics struct {
	roundTrips  prometheus.Counter
	leases      *prometheus.CounterVec
	decisions   *prometheus.CounterVec
	byReason    map[domain.Reason]prometheus.Counter // resolved once: the hot path looks up no labels
	waited      prometheus.Counter
	unreachable prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		roundTrips: prometheus.NewCounter(prometheus.CounterOpts{Name: "keyledger_limits_round_trips_total",
			Help: "Requests to the limits bucket (reads and compare-and-set writes)."}),
		leases: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyledger_limits_lease_units_total",
			Help: "Rate limit tokens and credits this node leased (granted), gave back (returned), and credits of leases it removed from a record as expired (written off) or voided by a refill or a new epoch."},
			[]string{"kind", "event"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyledger_limits_decisions_total",
			Help: "Decisions on keys with limits, by reason (ok or the refusal)."}, []string{"reason"}),
		waited: prometheus.NewCounter(prometheus.CounterOpts{Name: "keyledger_limits_waited_decisions_total",
			Help: "Decisions that waited for a round trip to NATS."}),
		unreachable: prometheus.NewCounter(prometheus.CounterOpts{Name: "keyledger_limits_unreachable_decisions_total",
			Help: "Decisions that needed a lease and could not get one in time (NATS out of reach, failing, or slower than the timeout): refused, or in local mode decided locally."}),
	}
	m.byReason = make(map[domain.Reason]prometheus.Counter)
	for _, r := range []domain.Reason{domain.ReasonOK, domain.ReasonRateLimitExceeded, domain.ReasonUsageExceeded, domain.ReasonLimitsUnavailable} {
		m.byReason[r] = m.decisions.WithLabelValues(string(r))
	}
	return m
}

// decided counts a decision.
func (m *metrics) decided(d Decision) {
	m.byReason[d.Reason].Inc()
	if d.RoundTrip {
		m.waited.Inc()
	}
}

// Collectors returns the Limiter's metrics, to register once.
func (l *Limiter) Collectors() []prometheus.Collector {
	return []prometheus.Collector{l.m.roundTrips, l.m.leases, l.m.decisions, l.m.waited, l.m.unreachable}
}
