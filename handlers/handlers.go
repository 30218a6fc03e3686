// Package handlers is keyledger's HTTP transport: it decodes requests,
// calls the ledger's use cases, and encodes responses and errors. Every
// error is JSON {"error":{"code","message"}} with a status from one table;
// internal details go to the log only.
package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/keyledger/keyledger/api"
	"github.com/keyledger/keyledger/auth"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/ledger"
	"github.com/keyledger/keyledger/projections"
)

// MaxBodyBytes caps request bodies.
const MaxBodyBytes = 64 << 10

// Ledger is what the HTTP API needs of the use cases. See package ledger
// for the error kinds each method returns.
type Ledger interface {
	// NewPreset draws the identifiers a command runs with when its request
	// carries an Idempotency-Key; the commands take them from a Preset
	// (zero fields: drawn afresh).
	NewPreset() (ledger.Preset, error)
	RegisterUserWith(ctx context.Context, email, password string, p ledger.Preset) (domain.User, error)
	Login(ctx context.Context, email, password string) (domain.User, error)
	CreateKeyWith(ctx context.Context, cmd domain.CreateKey, p ledger.Preset) (domain.Key, domain.Secret, error)
	ListKeys(userID string, limit int, cursor string) ([]domain.Key, string, error)
	GetKey(userID, apiKey string) (domain.Key, error)
	RevokeKeyWith(ctx context.Context, userID, apiKey string, p ledger.Preset) error
	RegenerateSecretWith(ctx context.Context, userID, apiKey string, p ledger.Preset) (domain.Secret, error)
	SessionUser(userID string) (domain.User, error)
	AdminRevokeKey(ctx context.Context, actor, apiKey, reason string) error
	DisableUser(ctx context.Context, actor, userID, reason string) error
	RevokeUserKeys(ctx context.Context, actor, userID, reason string) ([]string, error)
	AdminListKeys(userID string, statuses []domain.KeyStatus) ([]domain.Key, error)
	Now() time.Time
}

// Sessions issues and verifies session tokens.
type Sessions interface {
	Issue(userID string, now time.Time) (string, time.Time, error)
	// Verify returns the token's user id. Errors: Unauthorized.
	Verify(token string) (string, error)
	JWKS() auth.JWKS
}

// Readiness reports whether the read models have caught up with the log.
type Readiness interface {
	Status() projections.Status
}

// Config holds the HTTP API's dependencies; Logger may be nil.
type Config struct {
	Ledger    Ledger
	Sessions  Sessions
	Readiness Readiness
	// Validate serves /validate: the validator package's handler, fed by
	// the same projector as Ledger so a command's effect on validation is
	// in force when the command returns.
	Validate http.Handler
	// Idempotency keeps the records of requests with an Idempotency-Key
	// (POST /users, POST /api-keys, POST /api-keys/{key}/regenerate,
	// DELETE /api-keys/{key}).
	Idempotency IdempotencyStore
	Logger      *slog.Logger
	// Metrics, if set, counts and times every request and command.
	Metrics *Metrics
	// MetricsHandler, if set, serves GET /metrics (ungated); nil leaves
	// /metrics to be served elsewhere, or not at all.
	MetricsHandler http.Handler
}

// API is the HTTP API. It implements http.Handler.
type API struct {
	ledger      Ledger
	sessions    Sessions
	ready       Readiness
	validate    http.Handler
	idempotency IdempotencyStore
	logger      *slog.Logger
	metrics     *Metrics
	mux         *http.ServeMux
}

// New returns the HTTP API, or an error if a dependency is missing.
func New(cfg Config) (*API, error) {
	if cfg.Ledger == nil || cfg.Sessions == nil || cfg.Readiness == nil || cfg.Validate == nil || cfg.Idempotency == nil {
		return nil, errors.New("handlers: missing dependency")
	}
	a := &API{ledger: cfg.Ledger, sessions: cfg.Sessions, ready: cfg.Readiness, validate: cfg.Validate,
		idempotency: cfg.Idempotency, logger: cfg.Logger, metrics: cfg.Metrics, mux: http.NewServeMux()}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	a.routes()
	if cfg.MetricsHandler != nil {
		a.mux.Handle("GET /metrics", cfg.MetricsHandler)
	}
	return a, nil
}

func (a *API) routes() {
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.HandleFunc("GET /.well-known/jwks.json", a.jwks)
	a.mux.HandleFunc("GET /openapi.json", a.openapi)
	a.mux.Handle("POST /users", a.gate(a.idempotent(a.registerUser)))
	a.mux.Handle("POST /sessions", a.gate(a.createSession))
	a.mux.Handle("/validate", a.validate)
	a.mux.Handle("POST /api-keys", a.gate(a.authenticated(a.idempotent(a.createKey))))
	a.mux.Handle("GET /api-keys", a.gate(a.authenticated(a.listKeys)))
	a.mux.Handle("GET /api-keys/{key}", a.gate(a.authenticated(a.getKey)))
	a.mux.Handle("DELETE /api-keys/{key}", a.gate(a.authenticated(a.idempotent(a.revokeKey))))
	a.mux.Handle("POST /api-keys/{key}/regenerate", a.gate(a.authenticated(a.idempotent(a.regenerateSecret))))
	a.mux.Handle("GET /admin/keys", a.gate(a.authenticated(a.admin(a.adminListKeys))))
	a.mux.Handle("DELETE /admin/keys/{key}", a.gate(a.authenticated(a.admin(a.adminRevokeKey))))
	a.mux.Handle("POST /admin/users/{id}/disable", a.gate(a.authenticated(a.admin(a.adminDisableUser))))
	a.mux.Handle("POST /admin/users/{id}/revoke-keys", a.gate(a.authenticated(a.admin(a.adminRevokeUserKeys))))
}

// ServeHTTP routes a request. Unmatched paths and methods get JSON 404 and
// 405 answers instead of the mux's plain text.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &responseWriter{ResponseWriter: w}
	id := requestID(r)
	rw.Header().Set("X-Request-Id", id)
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))

	_, pattern := a.mux.Handler(r)
	defer func() {
		if p := recover(); p != nil {
			a.logger.Error("panic serving request", "request_id", id, "route", pattern, "panic", p)
			if !rw.wroteHeader {
				writeError(rw, r, a.logger, domain.Errorf(domain.Internal, "panic"))
			}
		}
		elapsed := time.Since(start)
		a.logger.Info("request", "request_id", id, "method", r.Method, "route", pattern,
			"status", rw.status, "duration_ms", float64(elapsed.Microseconds())/1000)
		if a.metrics != nil {
			a.metrics.observe(pattern, r.Method, rw.status, elapsed)
		}
	}()
	if pattern == "" {
		a.unmatched(rw, r)
		return
	}
	a.mux.ServeHTTP(rw, r)
}

// unmatched answers a request no route takes, with the status the mux
// would have chosen (404, or 405 with Allow).
func (a *API) unmatched(w http.ResponseWriter, r *http.Request) {
	probe := &probeWriter{header: http.Header{}}
	a.mux.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
		return
	}
	writeJSONError(w, http.StatusNotFound, "not_found", "no such route")
}

// gate answers 503 until the read models have caught up with the log, so
// no decision is taken on a view older than the log.
func (a *API) gate(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.ready.Status().Ready {
			w.Header().Set("Retry-After", "1")
			writeError(w, r, a.logger, domain.Errorf(domain.Unavailable, "starting up: catching up with the event log"))
			return
		}
		next(w, r)
	})
}

func (a *API) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, _ *http.Request) {
	st := a.ready.Status()
	status := http.StatusOK
	if !st.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, st)
}

func (a *API) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, a.sessions.JWKS())
}

// openapi serves the OpenAPI document of this API (package api).
func (a *API) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(api.OpenAPI)
}
