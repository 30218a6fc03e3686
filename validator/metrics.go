package validator

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyledger/keyledger/domain"
)

// metrics are a Validator's own Prometheus collectors, in a registry of
// their own so that several validators can live in one process.
type metrics struct {
	registry    *prometheus.Registry
	validations *prometheus.CounterVec
	byReason    map[domain.Reason]prometheus.Counter
	// The counters of the commonest outcomes, to count them without a
	// map lookup.
	ok, unknownKey, wrongSecret prometheus.Counter
}

func newMetrics(v *Validator) *metrics {
	m := &metrics{registry: prometheus.NewRegistry(), byReason: make(map[domain.Reason]prometheus.Counter)}
	m.validations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyledger_validations_total",
		Help: "API-key validations by outcome (ok, or the reason for refusing; rate_limited: the key was refused after too many failures, with 429).",
	}, []string{"outcome"})
	// A counter for every outcome the domain names, created up front so
	// that every series exists from the start and the hot path does no
	// label lookup.
	for _, r := range domain.Reasons() {
		m.byReason[r] = m.validations.WithLabelValues(string(r))
	}
	m.ok, m.unknownKey, m.wrongSecret = m.byReason[domain.ReasonOK], m.byReason[domain.ReasonUnknownKey],
		m.byReason[domain.ReasonWrongSecret]
	m.registry.MustRegister(m.validations,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_validator_applied_sequence",
			Help: "Stream sequence applied to the validation lookup: a revocation at sequence N is in force once this is >= N.",
		}, func() float64 { return float64(v.projector.Position()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_validator_keys",
			Help: "Keys in the validation lookup.",
		}, func() float64 { return float64(v.lookup.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_validator_staleness_seconds",
			Help: "Seconds since the node last confirmed it had applied everything in the log.",
		}, func() float64 { return v.Status().StalenessSeconds }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_validator_ready",
			Help: "1 when the node answers validations from its view, 0 when it fails closed.",
		}, func() float64 { return boolFloat(v.check() == nil) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_validator_log_refused",
			Help: "1 when the node refuses the event log for good: it does not extend the log the node already read (re-created, rolled back, another genesis).",
		}, func() float64 { return boolFloat(v.refused.Load() != nil) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_validator_checkpoint_size",
			Help: "Size (messages covered) of the newest signed checkpoint the node verified against the events it applied, or checked at start; a restarted node with a state directory refuses a log that does not extend it.",
		}, func() float64 { return float64(v.checkpointSize.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_validator_checkpoint_mismatch",
			Help: "1 when the events the node applied do not match a checkpoint the ledger signed: the node refuses the log for good.",
		}, func() float64 { return boolFloat(v.projector.CheckpointMismatch() != nil) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_validator_snapshot_sequence",
			Help: "Stream sequence of the snapshot the node started from (0: it read the whole log; see keyledger_validator_snapshot_start).",
		}, func() float64 { return float64(v.snapshot.Seq) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "keyledger_validator_snapshot_start",
			Help:        "1 for how the node started: from a snapshot (outcome loaded) or, with the reason, from the whole log (none, no_bucket, refused: every snapshot tried failed its checks, unavailable).",
			ConstLabels: prometheus.Labels{"outcome": orNotTried(v.snapshot.Outcome)},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_log_sealed",
			Help: "1 when the event log's stream is sealed: no event, not even a revocation, can be stored.",
		}, func() float64 { return boolFloat(v.sealed.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_validator_nats_connected",
			Help: "1 when the node's NATS connection is up.",
		}, func() float64 { return boolFloat(v.connected.Load()) }),
	)
	return m
}

func (m *metrics) outcome(reason domain.Reason) {
	switch reason {
	case domain.ReasonOK:
		m.ok.Inc()
		return
	case domain.ReasonUnknownKey:
		m.unknownKey.Inc()
		return
	case domain.ReasonWrongSecret:
		m.wrongSecret.Inc()
		return
	}
	if c, ok := m.byReason[reason]; ok {
		c.Inc()
	}
}

// orNotTried is a snapshot outcome, "not_tried" for none.
func orNotTried(outcome string) string {
	if outcome == "" {
		return "not_tried"
	}
	return outcome
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// MetricsHandler serves the node's metrics in the Prometheus text format.
func (v *Validator) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(v.metrics.registry, promhttp.HandlerOpts{})
}

// Registry returns the registry of the node's metrics, for a process that
// serves them together with its own.
func (v *Validator) Registry() *prometheus.Registry { return v.metrics.registry }
