package handlers

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/httperr"
)

// commandOf names the command behind each route that changes the ledger.
// Its keys must match the patterns in routes.
var commandOf = map[string]string{
	"POST /users":                        "register_user",
	"POST /sessions":                     "login",
	"POST /api-keys":                     "create_key",
	"DELETE /api-keys/{key}":             "revoke_key",
	"POST /api-keys/{key}/regenerate":    "regenerate_secret",
	"DELETE /admin/keys/{key}":           "admin_revoke_key",
	"POST /admin/users/{id}/disable":     "disable_user",
	"POST /admin/users/{id}/revoke-keys": "revoke_user_keys",
}

// kindOfStatus inverts httperr's table, so a command's outcome can be
// told from its status alone. Should two kinds share a status, the first
// by name stands for both, the same on every run.
var kindOfStatus = func() map[int]string {
	m := make(map[int]string)
	for _, k := range httperr.Kinds() {
		if _, ok := m[httperr.Status(k)]; !ok {
			m[httperr.Status(k)] = string(k)
		}
	}
	return m
}()

// knownMethods bounds the method label: the method is the client's to
// choose, and /validate and unmatched requests take any.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
	http.MethodConnect: true, http.MethodTrace: true,
}

// The limits that refuse requests, as keyledger_limited_requests_total
// labels them.
const (
	limitLoginEmail          = "login_email"          // 429: failed logins per email (the ledger's throttle)
	limitLoginAddress        = "login_address"        // 429: failed logins per client address
	limitRegistrationAddress = "registration_address" // 429: registrations per client address
	limitPasswordHashing     = "password_hashing"     // 503: every password hashing slot taken
)

var limits = []string{limitLoginEmail, limitLoginAddress, limitRegistrationAddress, limitPasswordHashing}

// Metrics are the HTTP API's Prometheus collectors, in a registry of their
// own rather than the global one. Labels hold route patterns, methods,
// statuses, command names and error kinds: never a path, key id or
// credential. It is safe for concurrent use.
type Metrics struct {
	registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	commands        *prometheus.CounterVec
	commandDuration *prometheus.HistogramVec
	limitedRequests *prometheus.CounterVec
}

// NewMetrics returns the API's collectors, registered in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyledger_http_requests_total",
			Help: "HTTP requests by route pattern (\"unmatched\" for none), method and status.",
		}, []string{"route", "method", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyledger_http_request_duration_seconds",
			Help:    "HTTP request duration by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyledger_commands_total",
			Help: "Commands received over HTTP by outcome: ok, or the kind of error answered.",
		}, []string{"command", "outcome"}),
		commandDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyledger_command_duration_seconds",
			Help:    "Duration of commands received over HTTP, whatever their outcome.",
			Buckets: prometheus.DefBuckets,
		}, []string{"command"}),
		limitedRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyledger_limited_requests_total",
			Help: "Requests refused by a limit: login_email, login_address and registration_address (429), password_hashing (503). Validations refused per API key are keyledger_validations_total{outcome=\"rate_limited\"}.",
		}, []string{"limit"}),
	}
	for _, l := range limits {
		m.limitedRequests.WithLabelValues(l)
	}
	// Series of every command exist from the start, so rates over them
	// need no first request.
	for _, c := range commandOf {
		m.commands.WithLabelValues(c, "ok")
		m.commandDuration.WithLabelValues(c)
	}
	m.registry.MustRegister(m.requests, m.requestDuration, m.commands, m.commandDuration, m.limitedRequests)
	return m
}

// Register adds collectors, such as gauges of the caller's state, to the
// registry. It stops at the first that fails to register.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.registry.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// Handler serves the registry, and the registries of more, in the
// Prometheus text format.
func (m *Metrics) Handler(more ...prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(append(prometheus.Gatherers{m.registry}, more...), promhttp.HandlerOpts{})
}

// observe records a request that pattern served ("" when no route took
// it) with status (0: nothing written, which net/http answers as 200).
func (m *Metrics) observe(pattern, method string, status int, d time.Duration) {
	route := pattern
	if route == "" {
		route = "unmatched"
	}
	if !knownMethods[method] {
		method = "other"
	}
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.requestDuration.WithLabelValues(route, method).Observe(d.Seconds())
	command, ok := commandOf[pattern]
	if !ok {
		return
	}
	outcome := "ok"
	if status >= 400 {
		outcome = commandOutcome(status)
	}
	m.commands.WithLabelValues(command, outcome).Inc()
	m.commandDuration.WithLabelValues(command).Observe(d.Seconds())
}

// limited counts a request a limit refused; safe on a nil *Metrics.
func (m *Metrics) limited(limit string) {
	if m != nil {
		m.limitedRequests.WithLabelValues(limit).Inc()
	}
}

// commandOutcome is the error kind answered with status (4xx or 5xx); a
// status no kind maps to is "internal" for 5xx and "other" for 4xx.
func commandOutcome(status int) string {
	if kind, ok := kindOfStatus[status]; ok {
		return kind
	}
	if status >= 500 {
		return string(domain.Internal)
	}
	return "other"
}
