// Package handlers is keyledger's HTTP transport: it decodes requests,
// calls the ledger's use cases, and encodes responses and errors. Every
// error is JSON {"error":{"code","message"}} with a status from one table;
// internal details go to the log only.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/keyledger/keyledger/api"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ratelimit"
)

// MaxBodyBytes caps request bodies.
const MaxBodyBytes = 64 << 10

// Ledger is what the HTTP API needs of the use cases. Each command type
// of package ledger lists the error kinds its method returns.
type Ledger interface {
	// NewPreset draws the identifiers a command runs with when its request
	// carries an Idempotency-Key; the commands take them from a Preset
	// (zero fields: drawn afresh).
	NewPreset() (ledger.Preset, error)
	RegisterUser(ctx context.Context, cmd ledger.RegisterUser) (domain.User, error)
	Login(ctx context.Context, cmd ledger.Login) (domain.User, error)
	CreateKey(ctx context.Context, cmd ledger.CreateKey) (domain.Key, domain.Secret, error)
	ListKeys(userID string, limit int, cursor string) ([]domain.Key, string, error)
	GetKey(userID, apiKey string) (domain.Key, error)
	RevokeKey(ctx context.Context, cmd ledger.RevokeKey) error
	RegenerateSecret(ctx context.Context, cmd ledger.RegenerateSecret) (domain.Secret, error)
	EditKey(ctx context.Context, cmd ledger.EditKey) (domain.Key, error)
	DisableKey(ctx context.Context, cmd ledger.DisableKey) error
	EnableKey(ctx context.Context, cmd ledger.EnableKey) error
	AdminEditKey(ctx context.Context, cmd ledger.AdminEditKey) (domain.Key, error)
	AdminDisableKey(ctx context.Context, cmd ledger.AdminDisableKey) error
	AdminEnableKey(ctx context.Context, cmd ledger.AdminEnableKey) error
	AddCredits(ctx context.Context, cmd ledger.AddCredits) (domain.Key, error)
	AdminAddCredits(ctx context.Context, cmd ledger.AdminAddCredits) (domain.Key, error)
	SessionUser(sess auth.Session) (domain.User, error)
	ChangePassword(ctx context.Context, cmd ledger.ChangePassword) error
	RevokeSessions(ctx context.Context, cmd ledger.RevokeSessions) error
	EndSession(ctx context.Context, cmd ledger.EndSession) error
	AdminRevokeKey(ctx context.Context, cmd ledger.AdminRevokeKey) error
	DisableUser(ctx context.Context, cmd ledger.DisableUser) error
	RevokeUserKeys(ctx context.Context, cmd ledger.RevokeUserKeys) ([]string, error)
	AdminListKeys(ctx context.Context, userID string, statuses []domain.KeyStatus) ([]domain.Key, error)
	EnableUser(ctx context.Context, cmd ledger.EnableUser) error
	CreateUser(ctx context.Context, cmd ledger.CreateUser) (domain.User, error)
	ListUsers(ctx context.Context) ([]domain.User, error)
	RevealUser(ctx context.Context, u domain.User) (domain.User, error)
	EraseUser(ctx context.Context, cmd ledger.EraseUser) ([]string, error)
	EraseMe(ctx context.Context, cmd ledger.EraseMe) error
	// AdminByKey returns the admin whose active (enrolled, not revoked)
	// key has id keyID.
	AdminByKey(keyID string) (name string, key domain.PublicKey, ok bool)
	EnrollAdminKey(ctx context.Context, cmd ledger.EnrollAdminKey) (string, error)
	RevokeAdminKey(ctx context.Context, cmd ledger.RevokeAdminKey) error
	ListAdmins() []domain.Admin
	Now() time.Time
	SignUps
	TeamLedger
}

// Sessions issues and verifies session tokens.
type Sessions interface {
	// Issue returns a token for the user in their session epoch, and its
	// expiry.
	Issue(userID string, epoch uint64, now time.Time) (string, time.Time, error)
	// Verify returns what the token says; whether the session still
	// holds is the ledger's to say (SessionUser). Errors: Unauthorized.
	Verify(token string) (auth.Session, error)
	JWKS() auth.JWKS
}

// Readiness reports how far the read models have come and how fresh they
// are.
type Readiness interface {
	// Ready reports whether the read models have caught up with the log as
	// it was at start; until then the API answers 503. It is called on
	// every gated request, so it must be cheap.
	Ready() bool
	// Status describes readiness and freshness, for /readyz and reads.
	Status() ReadyStatus
}

// ReadyStatus is the body of /readyz. Its names match a validation node's
// /readyz.
type ReadyStatus struct {
	// Ready is true when /readyz answers 200.
	Ready bool `json:"ready"`
	// AppliedSeq is the last stream sequence applied to the read models.
	AppliedSeq uint64 `json:"applied_seq"`
	// StartSeq is the head of the log at start: ready once applied.
	StartSeq uint64 `json:"start_seq"`
	// StalenessSeconds is how long ago the read models were last confirmed
	// to hold everything the log held (-1: not yet). It stays near zero
	// while NATS is reachable and grows while it is not.
	StalenessSeconds float64 `json:"staleness_seconds"`
	// Connected reports the connection to NATS. Without it reads still
	// serve from the read models and commands answer 503.
	Connected bool `json:"connected"`
	// Reason says why /readyz answers 503 ("" when it does not).
	Reason string `json:"reason,omitempty"`
}

// HeaderStaleness, on a read served from read models that may be behind
// the log, gives their staleness in seconds (see ReadyStatus).
const HeaderStaleness = "X-Keyledger-Staleness"

// StaleAfter is the staleness past which reads carry HeaderStaleness;
// they always do while NATS is unreachable. Read models are confirmed
// complete about every second while NATS is reachable.
const StaleAfter = 5 * time.Second

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
	// AdminNonces refuses replayed admin signatures on every serve.
	AdminNonces AdminNonces
	Logger      *slog.Logger
	// Usage, if set, answers the keys' last use and usage (GET
	// /api-keys/{key}/usage, GET /admin/usage); nil: never used, no usage.
	Usage Usage
	// Metrics, if set, counts and times every request. Commands are
	// counted by the ledger: pass Metrics.ObserveCommand as its Observe.
	Metrics *Metrics
	// MetricsHandler, if set, serves GET /metrics (ungated); nil leaves
	// /metrics to be served elsewhere, or not at all.
	MetricsHandler http.Handler
	// Proxies are the reverse proxies whose X-Forwarded-For tells a
	// client's address; zero: none, the connection's peer is the client.
	Proxies TrustedProxies
	// LoginFailures limits failed logins per client address, on top of
	// the ledger's throttle per email; nil: no such limit.
	LoginFailures *ratelimit.Failures
	// Registrations paces registrations per client address; nil: no limit.
	Registrations *ratelimit.Bucket
	// ReadyMaxStaleness, if positive, makes /readyz answer 503 once the
	// read models have not been confirmed complete for this long; zero
	// keeps it 200 while they serve reads, however stale.
	ReadyMaxStaleness time.Duration
	// Fleet, if set, serves GET /admin/nodes and ?wait=nodes on the
	// commands that take a key out of service; nil: both answer 503.
	Fleet Fleet
	// WaitTimeout bounds ?wait=nodes (0: DefaultWaitTimeout).
	WaitTimeout time.Duration
	// Credits, if set, tells the keys' live remaining credits for their
	// views; nil (or an error from it): views show the credits granted.
	Credits CreditsReader
	// OIDC, if set, serves the OpenID Connect login (/oidc/...); nil:
	// those routes answer 404.
	OIDC *OIDCConfig
	// Integrity, if set, serves GET /admin/integrity and POST
	// /admin/integrity/verify; nil: both answer 503.
	Integrity Integrity
}

// API is the HTTP API. It implements http.Handler.
type API struct {
	ledger        Ledger
	sessions      Sessions
	ready         Readiness
	validate      http.Handler
	idempotency   IdempotencyStore
	logger        *slog.Logger
	metrics       *Metrics
	proxies       TrustedProxies
	loginFailures *ratelimit.Failures
	registrations *ratelimit.Bucket
	maxStaleness  time.Duration
	adminNonces   AdminNonces
	usage         Usage // nil: no usage read model
	fleet         Fleet
	integrity     Integrity
	waitTimeout   time.Duration
	credits       CreditsReader // nil: views show the credits granted
	oidc          *OIDCConfig   // nil: no OpenID Connect login
	teams         TeamLedger
	mux           *http.ServeMux
}

// New returns the HTTP API, or an error if a dependency is missing.
func New(cfg Config) (*API, error) {
	if cfg.Ledger == nil || cfg.Sessions == nil || cfg.Readiness == nil || cfg.Validate == nil || cfg.Idempotency == nil ||
		cfg.AdminNonces == nil {
		return nil, errors.New("handlers: missing dependency")
	}
	if cfg.ReadyMaxStaleness < 0 {
		return nil, errors.New("handlers: negative ReadyMaxStaleness")
	}
	a := &API{ledger: cfg.Ledger, sessions: cfg.Sessions, ready: cfg.Readiness, validate: cfg.Validate,
		idempotency: cfg.Idempotency, adminNonces: cfg.AdminNonces, usage: cfg.Usage, logger: cfg.Logger, metrics: cfg.Metrics, proxies: cfg.Proxies,
		loginFailures: cfg.LoginFailures, registrations: cfg.Registrations, maxStaleness: cfg.ReadyMaxStaleness,
		fleet: cfg.Fleet, integrity: cfg.Integrity, waitTimeout: cfg.WaitTimeout, credits: cfg.Credits, mux: http.NewServeMux()}
	if cfg.WaitTimeout < 0 {
		return nil, errors.New("handlers: negative WaitTimeout")
	}
	if cfg.OIDC != nil && (cfg.OIDC.Flow == nil || cfg.OIDC.Ledger == nil) {
		return nil, errors.New("handlers: OIDC without its flow or ledger")
	}
	a.oidc = cfg.OIDC
	a.teams = cfg.Ledger
	if a.waitTimeout == 0 {
		a.waitTimeout = DefaultWaitTimeout
	}
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
	a.mux.Handle("GET /users/me", a.gate(a.authenticated(a.me)))
	a.mux.Handle("DELETE /users/me", a.gate(a.authenticated(a.eraseMe)))
	a.mux.Handle("POST /users/me/password", a.gate(a.authenticated(a.changePassword)))
	a.mux.Handle("POST /users/me/sessions/revoke", a.gate(a.authenticated(a.revokeMySessions)))
	a.mux.Handle("POST /sessions", a.gate(a.createSession))
	a.mux.Handle("DELETE /sessions/current", a.gate(a.authenticated(a.endSession)))
	a.mux.Handle("GET /oidc/login", a.gate(a.oidcLogin))
	a.mux.Handle("GET /oidc/callback", a.gate(a.oidcCallback))
	a.mux.Handle("POST /oidc/link", a.gate(a.oidcLink))
	a.mux.Handle("/validate", a.validate)
	a.mux.Handle("POST /api-keys", a.gate(a.authenticated(a.idempotent(a.createKey))))
	a.mux.Handle("GET /api-keys", a.gate(a.authenticated(a.listKeys)))
	a.mux.Handle("GET /api-keys/{key}", a.gate(a.authenticated(a.getKey)))
	a.mux.Handle("GET /api-keys/{key}/usage", a.gate(a.authenticated(a.keyUsage)))
	a.mux.Handle("GET /admin/usage", a.gate(a.admin(a.adminUsage)))
	a.mux.Handle("DELETE /api-keys/{key}", a.gate(a.authenticated(a.waitNodes(a.idempotent(a.revokeKey)))))
	a.mux.Handle("POST /api-keys/{key}/regenerate", a.gate(a.authenticated(a.waitNodes(a.idempotent(a.regenerateSecret)))))
	a.mux.Handle("PATCH /api-keys/{key}", a.gate(a.authenticated(a.waitNodes(a.idempotent(a.editKey)))))
	a.mux.Handle("POST /api-keys/{key}/disable", a.gate(a.authenticated(a.waitNodes(a.idempotent(a.disableKey)))))
	a.mux.Handle("POST /api-keys/{key}/enable", a.gate(a.authenticated(a.idempotent(a.enableKey))))
	a.mux.Handle("POST /api-keys/{key}/credits", a.gate(a.authenticated(a.idempotent(a.addCredits))))
	a.mux.Handle("GET /admin/keys", a.gate(a.admin(a.adminListKeys)))
	a.mux.Handle("DELETE /admin/keys/{key}", a.gate(a.admin(a.waitNodes(a.adminRevokeKey))))
	a.mux.Handle("PATCH /admin/keys/{key}", a.gate(a.admin(a.waitNodes(a.adminEditKey))))
	a.mux.Handle("POST /admin/keys/{key}/disable", a.gate(a.admin(a.waitNodes(a.adminDisableKey))))
	a.mux.Handle("POST /admin/keys/{key}/enable", a.gate(a.admin(a.adminEnableKey)))
	a.mux.Handle("POST /admin/keys/{key}/credits", a.gate(a.admin(a.idempotent(a.adminAddCredits))))
	a.mux.Handle("GET /admin/nodes", a.gate(a.admin(a.adminNodes)))
	a.mux.Handle("GET /admin/integrity", a.gate(a.admin(a.adminIntegrity)))
	a.mux.Handle("POST /admin/integrity/verify", a.gate(a.admin(a.adminVerifyLog)))
	a.mux.Handle("GET /admin/users", a.gate(a.admin(a.adminListUsers)))
	a.mux.Handle("POST /admin/users", a.gate(a.admin(a.adminCreateUser)))
	a.mux.Handle("POST /admin/users/{id}/disable", a.gate(a.admin(a.adminDisableUser)))
	a.mux.Handle("POST /admin/users/{id}/enable", a.gate(a.admin(a.adminEnableUser)))
	a.mux.Handle("POST /admin/users/{id}/revoke-keys", a.gate(a.admin(a.adminRevokeUserKeys)))
	a.mux.Handle("POST /admin/users/{id}/erase", a.gate(a.admin(a.adminEraseUser)))
	a.mux.Handle("POST /admin/users/{id}/revoke-sessions", a.gate(a.admin(a.adminRevokeSessions)))
	a.mux.Handle("GET /admin/admin-keys", a.gate(a.admin(a.adminListAdminKeys)))
	a.mux.Handle("POST /admin/admin-keys", a.gate(a.admin(a.adminEnrollKey)))
	a.mux.Handle("DELETE /admin/admin-keys/{id}", a.gate(a.admin(a.adminRevokeAdminKey)))
	a.mux.Handle("POST /users/verify", a.gate(a.verifyEmail))
	a.mux.Handle("POST /users/verify/resend", a.gate(a.resendVerification))
	a.mux.Handle("POST /admin/invitations", a.gate(a.admin(a.adminCreateInvitation)))
	a.mux.Handle("POST /teams", a.gate(a.authenticated(a.createTeam)))
	a.mux.Handle("GET /teams", a.gate(a.authenticated(a.listTeams)))
	a.mux.Handle("POST /teams/join", a.gate(a.authenticated(a.joinTeam)))
	a.mux.Handle("GET /teams/{team}", a.gate(a.authenticated(a.getTeam)))
	a.mux.Handle("GET /teams/{team}/members", a.gate(a.authenticated(a.listMembers)))
	a.mux.Handle("POST /teams/{team}/invitations", a.gate(a.authenticated(a.inviteMember)))
	a.mux.Handle("PATCH /teams/{team}/members/{user}", a.gate(a.authenticated(a.changeMemberRole)))
	a.mux.Handle("DELETE /teams/{team}/members/{user}", a.gate(a.authenticated(a.removeMember)))
	a.mux.Handle("POST /teams/{team}/api-keys", a.gate(a.authenticated(a.idempotent(a.createTeamKey))))
	a.mux.Handle("GET /teams/{team}/api-keys", a.gate(a.authenticated(a.listTeamKeys)))
	a.mux.Handle("POST /teams/{team}/service-accounts", a.gate(a.authenticated(a.createServiceAccount)))
	a.mux.Handle("GET /teams/{team}/service-accounts", a.gate(a.authenticated(a.listServiceAccounts)))
	a.mux.Handle("POST /teams/{team}/service-accounts/{sa}/api-keys", a.gate(a.authenticated(a.idempotent(a.createServiceAccountKey))))
	a.mux.Handle("POST /teams/{team}/service-accounts/{sa}/disable", a.gate(a.authenticated(a.waitNodes(a.disableServiceAccount))))
	a.mux.Handle("POST /teams/{team}/service-accounts/{sa}/enable", a.gate(a.authenticated(a.enableServiceAccount)))
	a.mux.Handle("DELETE /teams/{team}/service-accounts/{sa}", a.gate(a.authenticated(a.waitNodes(a.deleteServiceAccount))))
	a.mux.Handle("GET /admin/teams", a.gate(a.admin(a.adminListTeams)))
	a.mux.Handle("GET /admin/teams/{team}/members", a.gate(a.admin(a.adminListMembers)))
	a.mux.Handle("POST /admin/teams/{team}/transfer", a.gate(a.admin(a.adminTransferTeam)))
	a.mux.Handle("POST /admin/teams/{team}/disable", a.gate(a.admin(a.waitNodes(a.adminDisableTeam))))
	a.mux.Handle("POST /admin/teams/{team}/enable", a.gate(a.admin(a.adminEnableTeam)))
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
// no decision is taken on a view older than the log. Reads it lets through
// carry HeaderStaleness when the view may be behind the log.
func (a *API) gate(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.ready.Ready() {
			writeError(w, r, a.logger, errStartingUp)
			return
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			if st := a.ready.Status(); st.StalenessSeconds >= 0 && (!st.Connected || st.StalenessSeconds > StaleAfter.Seconds()) {
				w.Header().Set(HeaderStaleness, strconv.FormatFloat(st.StalenessSeconds, 'f', 3, 64))
			}
		}
		next(w, r)
	})
}

var errStartingUp = &domain.Error{Kind: domain.Unavailable, Message: "starting up: catching up with the event log",
	RetryAfter: time.Second}

func (a *API) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz: GET /readyz -> 200 while the read models serve, 503 while they
// catch up. It stays 200 with NATS out of reach, since reads still serve
// (the body says how stale they are), unless ReadyMaxStaleness is set and
// exceeded; ?strict=1 also wants NATS connected, for routing commands.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	st := a.ready.Status()
	q := r.URL.Query()
	strict := q.Has("strict") && q.Get("strict") != "0" && q.Get("strict") != "false"
	switch {
	case !st.Ready:
		if st.Reason == "" {
			st.Reason = "catching up with the event log"
		}
	case a.maxStaleness > 0 && (st.StalenessSeconds < 0 || st.StalenessSeconds > a.maxStaleness.Seconds()):
		st.Ready = false
		st.Reason = fmt.Sprintf("read models not confirmed complete for longer than %v", a.maxStaleness)
	case strict && !st.Connected:
		st.Ready = false
		st.Reason = "not connected to NATS: commands cannot be stored"
	}
	status := http.StatusOK
	if !st.Ready {
		status = http.StatusServiceUnavailable
	} else {
		st.Reason = ""
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
