package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/adminnonce"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/embedded"
	"github.com/keyledger/keyledger/internal/fleet"
	"github.com/keyledger/keyledger/internal/idempotency"
	"github.com/keyledger/keyledger/internal/integrity"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/limits"
	"github.com/keyledger/keyledger/internal/mail"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/snapshot"
	"github.com/keyledger/keyledger/internal/tlsconfig"
	"github.com/keyledger/keyledger/internal/usage"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/validator"
)

// ServeConfig is the configuration of `keyledger serve`.
type ServeConfig struct {
	DataDir        string
	HTTPAddr       string
	NATSListen     string
	NATSURL        string
	Replicas       int
	Stream         string
	SessionKeyFile string
	SigningKeyFile string
	SessionTTL     time.Duration
	StartTimeout   time.Duration
	// MaxKeysPerUser bounds a user's unrevoked keys (0: the default, 100;
	// negative: no limit).
	MaxKeysPerUser int
	// CheckpointInterval is how often the log is checkpointed; negative
	// disables checkpoints.
	CheckpointInterval time.Duration
	// VerifyInterval is how often serve verifies the whole log for GET
	// /admin/integrity (0: integrity.DefaultInterval; negative: only when
	// an admin asks).
	VerifyInterval time.Duration
	// SnapshotInterval is how often a signed snapshot of the validation
	// lookup is written to the snapshot bucket for nodes to start from
	// (0: snapshot.DefaultInterval; negative: none; none either without
	// checkpoints, which snapshots are bound to). SnapshotKeep is how many
	// are kept (0: snapshot.DefaultKeep).
	SnapshotInterval time.Duration
	SnapshotKeep     int
	// NoSnapshot folds the whole log into the read models at start
	// instead of starting from the newest snapshot of them that verifies
	// against the log.
	NoSnapshot bool
	HTTPS      HTTPSConfig
	NATSClient NATSClientConfig
	NATSTLS    EmbeddedTLSConfig
	Signed     SignedRequestsConfig
	// Argon2 overrides the password hashing cost (zero: the default); tests
	// lower it.
	Argon2 auth.Argon2Params
	// MetricsAddr is where /metrics is served: a listener of its own
	// (plain HTTP; the command line's default is DefaultServeMetricsAddr,
	// loopback), MetricsOnAPI for the API's listener, or MetricsOff (or
	// "") for nowhere.
	MetricsAddr string
	// IdempotencyTTL is how long the response to a request with an
	// Idempotency-Key is kept for its retries (0: the default, 24h).
	IdempotencyTTL time.Duration
	// Limits are the limits against floods, and /readyz's staleness bound.
	Limits LimitsConfig
	// StreamMaxBytes, IdempotencyMaxBytes and NoncesMaxBytes cap the log's
	// stream and the two buckets beside it (0: DefaultStreamMaxBytes and
	// the like; negative: no cap). A full one refuses new writes.
	StreamMaxBytes      int64
	IdempotencyMaxBytes int64
	NoncesMaxBytes      int64
	// BootstrapAdmin, if set, is the file of an admin public key
	// (`keyledger admin keygen` writes it) that serve enrolls as admin
	// BootstrapAdminName once ready, if no admin key is enrolled yet;
	// afterwards it is ignored, with a log line.
	BootstrapAdmin     string
	BootstrapAdminName string
	// SignUp is who may register and how sign-up mail goes out.
	SignUp SignUpConfig
	// UsageInterval is how often serve's /validate publishes what it
	// counted (0: usage.DefaultInterval); UsageRetention and
	// UsageMaxBytes bound the usage stream (0: 90 days, 1 GiB).
	UsageInterval  time.Duration
	UsageRetention time.Duration
	UsageMaxBytes  int64
	// Fleet is how serve announces its own projector and follows the
	// validation nodes' heartbeats.
	Fleet FleetConfig
	// KeyLimits is how serve's /validate counts keys' rate limits and
	// credits with the validation nodes.
	KeyLimits KeyLimitsConfig
	// OIDC is the OpenID Connect login (zero: none).
	OIDC OIDCConfig
}

// DefaultStartTimeout is how long Server and Node wait for NATS and the
// event stream at start when their StartTimeout is zero.
const DefaultStartTimeout = 30 * time.Second

// ConfigError is a configuration that cannot work: the caller's fault
// (the command line reports it as a usage error).
type ConfigError struct{ Err error }

func (e ConfigError) Error() string { return e.Err.Error() }

// Unwrap returns the error that made the configuration wrong.
func (e ConfigError) Unwrap() error { return e.Err }

// Server is a running `keyledger serve`: the wiring of NATS, the event
// store, the projections and the HTTP API. Tests drive it directly.
type Server struct {
	Config ServeConfig
	Logger *slog.Logger

	lock *os.File // the data directory's lock, held until Close
	// bootstrapKey is the admin key of BootstrapAdmin (zero: none).
	bootstrapKey domain.PublicKey
	ns           *server.Server
	auth         *natsauth.Auth // nil with an external NATS
	nc           *nats.Conn
	projector    *projections.Projector
	service      *ledger.Service
	idempotency  *idempotency.Store
	adminNonces  *adminnonce.Store
	passwords    *auth.Passwords
	validator    *validator.Validator
	certs        []*tlsconfig.Certificate
	checkpoints  *checkpoint.Writer
	integrity    *integrity.Monitor
	snapshots    *snapshot.Writer // nil: none written
	http         *http.Server
	listener     net.Listener
	metricsHTTP  *http.Server // nil unless MetricsAddr is a listener's
	metricsLn    net.Listener
	stop         context.CancelFunc
	wg           sync.WaitGroup
	outbox       *mail.Outbox // sign-up mail; nil without --smtp-url
	usage        *usage.Flusher
	usageFold    *usage.Fold
	usageStop    func() // stops following the usage stream; nil when not
	fleet        *fleet.View
	limiter      *limits.Limiter
}

// Open starts everything and returns once the HTTP API is listening; the
// API answers 503 until the projections have caught up with the log.
func (s *Server) Open(ctx context.Context) error {
	cfg := &s.Config
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Stream == "" {
		cfg.Stream = eventstore.DefaultStream
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.SessionKeyFile == "" {
		cfg.SessionKeyFile = filepath.Join(cfg.DataDir, "session-ed25519.pem")
	}
	if cfg.SigningKeyFile == "" {
		cfg.SigningKeyFile = filepath.Join(cfg.DataDir, "ledger-ed25519.pem")
	}
	if cfg.DataDir != "" {
		lock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		s.lock = lock
	}
	if cfg.BootstrapAdmin != "" {
		var err error
		if s.bootstrapKey, err = ReadAdminPublicKey(cfg.BootstrapAdmin); err != nil {
			return ConfigError{fmt.Errorf("--bootstrap-admin: %w", err)}
		}
		if cfg.BootstrapAdminName == "" {
			cfg.BootstrapAdminName = "admin"
		}
		if !domain.ValidAdminName(cfg.BootstrapAdminName) {
			return ConfigError{fmt.Errorf("--bootstrap-admin-name %q: 1 to %d lower-case letters, digits, - or _, starting with a letter", cfg.BootstrapAdminName, domain.MaxAdminNameLength)}
		}
	}
	registration, outbox, notifier, err := cfg.signUp(s.Logger)
	if err != nil {
		return err
	}
	s.outbox = outbox
	ledgerKey, err := auth.LoadOrCreateSigningKey(cfg.SigningKeyFile)
	if err != nil {
		return fmt.Errorf("ledger signing key: %w", err)
	}
	oidcFlow, err := cfg.oidcFlow(ledgerKey, registration, s.Logger)
	if err != nil {
		return err
	}
	url := cfg.NATSURL
	if url == "" {
		if err := checkLoopback(cfg.NATSListen); err != nil {
			return ConfigError{err}
		}
		tlsOpts, natsCert, err := cfg.NATSTLS.apply(s.Logger.With("component", "nats"))
		if err != nil {
			return err
		}
		if natsCert != nil {
			s.certs = append(s.certs, natsCert)
		}
		// The embedded server requires credentials: one user per role,
		// written once into the data dir (see internal/natsauth).
		if s.auth, err = natsauth.Open(filepath.Join(cfg.DataDir, "creds"), cfg.Stream); err != nil {
			return fmt.Errorf("NATS credentials: %w", err)
		}
		storeDir := filepath.Join(cfg.DataDir, "nats")
		if moved, err := s.auth.AdoptGlobalStore(storeDir); err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		} else if moved {
			s.Logger.Warn("moved the log of the unauthenticated embedded NATS server under the keyledger account",
				"account", s.auth.AccountPublicKey())
		}
		ns, err := embedded.Start(embedded.Config{Listen: cfg.NATSListen, StoreDir: storeDir,
			ServerName: "keyledger-embedded", Logger: s.Logger.With("component", "nats"), Auth: s.auth.Configure, Options: tlsOpts})
		if err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		s.ns = ns
		url = ns.ClientURL()
		s.Logger.Info("embedded NATS JetStream started", "url", url, "store", storeDir,
			"tls", natsCert != nil, "client_certs", cfg.NATSTLS.ClientCA != "", "credentials", s.auth.Dir())
	}
	natsOpts, err := cfg.NATSClient.Options()
	if err != nil {
		return err
	}
	if s.ns != nil {
		// serve talks to its own embedded server in-process, past its
		// listener and whatever TLS the listener demands (the server does
		// not require TLS on in-process connections; a tls:// URL would).
		natsOpts = append(natsOpts, nats.InProcessServer(s.ns), nats.UserCredentials(s.auth.CredsFile(natsauth.Operator)))
		url = "nats://" + strings.TrimPrefix(strings.TrimPrefix(url, "tls://"), "nats://")
	}
	natsOpts = append(failoverOptions(), natsOpts...) // the configured options may override them
	natsOpts = append(natsOpts, nats.Name("keyledger-serve"), nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.Logger.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { s.Logger.Info("NATS reconnected", "url", c.ConnectedUrlRedacted()) }))
	nc, err := ConnectNATS(ctx, url, cfg.StartTimeout, s.Logger, natsOpts...)
	if err != nil {
		return err
	}
	s.nc = nc

	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	// The API's metrics exist before the ledger: its use cases report
	// each command's outcome to them.
	metrics := handlers.NewMetrics()
	l, err := OpenLedger(sctx, nc, LedgerConfig{Stream: cfg.Stream, Replicas: cfg.Replicas,
		SigningKey: ledgerKey, Argon2: cfg.Argon2, PasswordOptions: cfg.Limits.passwordOptions(), MaxKeysPerUser: cfg.MaxKeysPerUser,
		Logger: s.Logger, Observe: metrics.ObserveCommand,
		Registration: registration, Mailer: mailerOf(notifier), FromSnapshot: !cfg.NoSnapshot,
		StoreOptions: []eventstore.Option{eventstore.WithMaxBytes(maxBytes(cfg.StreamMaxBytes, DefaultStreamMaxBytes))}})
	if err != nil {
		return err
	}
	s.projector, s.service, s.passwords = l.Projector, l.Service, l.Passwords
	s.Logger.Info("registration", "mode", registration, "mail", outbox != nil)
	store, lookup, svc := l.Store, l.Lookup, l.Service
	root, genesisSeq := store.TrustRoot()
	s.Logger.Info("the log's trust root: pin it on validators and auditors with --trust-root", "trust_root", root,
		"genesis_seq", genesisSeq, "stream", cfg.Stream)
	if s.idempotency, err = openIdempotency(sctx, nc, ledgerKey, cfg.Stream, cfg.Replicas, cfg.IdempotencyTTL,
		maxBytes(cfg.IdempotencyMaxBytes, DefaultIdempotencyMaxBytes)); err != nil {
		return err
	}
	if s.adminNonces, err = openAdminNonces(sctx, nc, cfg.Stream); err != nil {
		return err
	}
	// Validation nodes may write the nonce bucket but not create it.
	if err := ensureNonceBucket(sctx, nc, cfg.Stream, cfg.nonceTTL(), maxBytes(cfg.NoncesMaxBytes, DefaultNoncesMaxBytes)); err != nil {
		return err
	}

	signingKey, err := auth.LoadOrCreateSigningKey(cfg.SessionKeyFile)
	if err != nil {
		return err
	}
	sessions, err := auth.NewSessions(signingKey, "", "", cfg.SessionTTL)
	if err != nil {
		return err
	}
	if cfg.CheckpointInterval >= 0 {
		s.checkpoints, err = checkpoint.Start(sctx, store, s.Logger.With("component", "checkpoint"), cfg.CheckpointInterval)
		if err != nil {
			return fmt.Errorf("checkpoints: %w", err)
		}
	}
	if s.integrity, err = integrity.Start(integrity.Config{Store: store, Interval: cfg.VerifyInterval,
		Logger: s.Logger.With("component", "integrity")}); err != nil {
		return err
	}
	proxies, err := handlers.ParseTrustedProxies(cfg.Limits.TrustedProxies...)
	if err != nil {
		return ConfigError{fmt.Errorf("--trusted-proxy: %w", err)}
	}
	if err := cfg.Fleet.check(); err != nil {
		return err
	}
	nodeName, err := cfg.Fleet.nodeName("serve:")
	if err != nil {
		return err
	}
	counters := usage.NewCounters(0, time.Now())
	if s.limiter, err = cfg.KeyLimits.openLimiter(nc, cfg.Stream, nodeName, s.Logger.With("component", "limits")); err != nil {
		return err
	}
	if err := metrics.Register(s.limiter.Collectors()...); err != nil {
		return err
	}
	vopts := append(cfg.Signed.options(), validator.WithStream(cfg.Stream), validator.WithUsage(counters),
		validator.WithLimiter(keyLimiter{s.limiter, cfg.KeyLimits.now}),
		validatorOption(cfg.Limits.ValidateFailures, cfg.Limits.ValidateFailureWindow),
		validator.WithTrustedProxy(proxies.Trusts))
	if cfg.DataDir != "" {
		// serve remembers the log it read too: restarted on a re-created
		// or rolled-back stream it refuses to start.
		vopts = append(vopts, validator.WithStateDir(filepath.Join(cfg.DataDir, "state")))
	}
	s.validator, err = validator.New(validator.Config{Log: store, Projector: s.projector, Lookup: lookup, Conn: nc,
		Logger: s.Logger.With("component", "validator"), Options: vopts,
		Snapshot: validator.StartedFrom(l.Snapshot, l.SnapshotOutcome)})
	if err != nil {
		return err
	}
	if s.snapshots, err = s.startSnapshots(sctx, store, lookup, &l.Models, ledgerKey); err != nil {
		return err
	}
	if err := s.openUsage(sctx, nodeName, counters, lookup, metrics); err != nil {
		return err
	}
	if err := serveMetrics(metrics, s.projector, nc, s.passwords); err != nil {
		return err
	}
	if err := metrics.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "keyledger_personal_data_unreadable_total",
		Help: "Times the sealed email and password hash of a user who is not erased could not be opened (data key missing or wrong); must stay 0.",
	}, func() float64 { return float64(svc.MissingDataKeys()) })); err != nil {
		return err
	}
	sizes, err := newStreamSizes(nc, cfg.Stream, "KV_"+cfg.Stream+"_IDEMPOTENCY", "KV_"+cfg.Stream+"_NONCES",
		"KV_"+cfg.Stream+"_ADMIN_NONCES")
	if err != nil {
		return err
	}
	if err := metrics.Register(sizes); err != nil {
		return err
	}
	// One /metrics for the API's registry and the validator's.
	metricsHandler := metrics.Handler(s.validator.Registry())
	s.fleet = fleet.NewView(fleet.WithLiveness(cfg.Fleet.Liveness), fleet.WithClock(cfg.Fleet.Clock))
	var fleetView handlers.Fleet = s.fleet
	if _, err := s.fleet.Subscribe(nc, s.Logger.With("component", "fleet")); errors.Is(err, fleet.ErrNotPermitted) {
		// Credentials from before heartbeats: serve runs, but a view that
		// hears no one would let every ?wait=nodes pass as 0/0, so
		// /admin/nodes and ?wait=nodes answer 503 instead.
		s.Logger.Error("cannot hear the nodes' heartbeats: GET /admin/nodes and ?wait=nodes answer 503 until serve's NATS credentials are issued again (keyledger init --force)",
			"err", err)
		fleetView = nil
	} else if err != nil {
		return fmt.Errorf("node heartbeats: %w", err)
	}
	if err := registerFleetMetrics(metrics, s.fleet, s.projector); err != nil {
		return err
	}
	apiConfig := handlers.Config{Ledger: svc, Sessions: sessions, Readiness: readiness{s.projector, s.validator},
		Credits:  &creditsReader{nc: nc, stream: cfg.Stream, now: cfg.KeyLimits.now, limiter: s.limiter},
		Validate: s.validator.ValidateHandler(), Idempotency: s.idempotency, AdminNonces: s.adminNonces,
		Logger: s.Logger.With("component", "http"), Metrics: metrics, Usage: s.usageFold, Fleet: fleetView, WaitTimeout: cfg.Fleet.WaitTimeout,
		Integrity: s.integrity}
	if oidcFlow != nil {
		apiConfig.OIDC = &handlers.OIDCConfig{Flow: oidcFlow, Ledger: svc}
	}
	if err := cfg.Limits.apply(&apiConfig); err != nil {
		return err
	}
	if cfg.MetricsAddr == MetricsOnAPI {
		apiConfig.MetricsHandler = metricsHandler
	}
	api, err := handlers.New(apiConfig)
	if err != nil {
		return err
	}
	if s.metricsHTTP, s.metricsLn, err = openMetrics(cfg.MetricsAddr, metricsHandler, s.Logger); err != nil {
		return err
	}

	tlsConfig, httpsCert, err := cfg.HTTPS.load(s.Logger.With("component", "tls"))
	if err != nil {
		return err
	}
	if httpsCert != nil {
		s.certs = append(s.certs, httpsCert)
	}
	web, err := withConsole(api, store, tlsConfig != nil, s.Logger)
	if err != nil {
		return err
	}
	var scheme string
	if s.http, s.listener, scheme, err = listenHTTP(cfg.HTTPAddr, web, tlsConfig, 15*time.Second, 30*time.Second, s.Logger); err != nil {
		return fmt.Errorf("HTTP: %w", err)
	}
	ln := s.listener
	started := time.Now()
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	for _, c := range s.certs {
		s.wg.Go(func() { reloadOnHUP(bg, c, s.Logger.With("component", "tls")) })
	}
	serveHTTP(&s.wg, s.http, ln, s.Logger)
	if s.metricsHTTP != nil {
		s.Logger.Info("serving metrics", "http", "http://"+s.metricsLn.Addr().String()+"/metrics")
		serveHTTP(&s.wg, s.metricsHTTP, s.metricsLn, s.Logger)
	}
	announce(bg, &s.wg, nc, nodeName, cfg.Fleet.HeartbeatInterval, serveSource{s.projector, s.validator}, s.Logger.With("component", "fleet"))
	s.wg.Go(func() {
		select {
		case <-bg.Done():
		case <-s.validator.Refusing():
			// Nothing more is written to a log serve refuses: no command
			// (the API answers 503), and no checkpoint that would vouch
			// for a rebuilt log.
			s.Logger.Error("refusing the event log: serve stores no command and signs no checkpoint until an operator has checked the stream and restarted it",
				"err", domain.MessageOf(s.validator.Refused()))
			if s.snapshots != nil {
				s.snapshots.Close()
			}
			if s.checkpoints != nil {
				s.checkpoints.Close()
			}
		}
	})
	s.wg.Go(func() {
		if err := s.projector.WaitReady(bg); err == nil {
			st := s.projector.Status()
			s.Logger.Info("ready", "http", scheme+"://"+ln.Addr().String(), "events", st.Applied,
				"catch_up", time.Since(started).Round(time.Millisecond))
			s.bootstrap(bg)
		}
	})
	return nil
}

// Conn returns the server's NATS connection (nil before Open).
func (s *Server) Conn() *nats.Conn { return s.nc }

// Fleet returns serve's view of the nodes heard from.
func (s *Server) Fleet() *fleet.View { return s.fleet }

// Projector returns the projector of the server's read models.
func (s *Server) Projector() *projections.Projector { return s.projector }

// Service returns the ledger's use cases as the API runs them.
func (s *Server) Service() *ledger.Service { return s.service }

// Passwords returns the password hasher of the API.
func (s *Server) Passwords() *auth.Passwords { return s.passwords }

// Idempotency returns the store of idempotency records.
func (s *Server) Idempotency() *idempotency.Store { return s.idempotency }

// HTTPAddr returns the address the API listens on.
func (s *Server) HTTPAddr() string { return s.listener.Addr().String() }

// MetricsAddr returns the address of the metrics listener ("" when
// /metrics is served on the API's, or not at all).
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

// CredsFile returns the file of a role's credentials to the embedded NATS
// server ("" with an external one).
func (s *Server) CredsFile(r natsauth.Role) string {
	if s.auth == nil {
		return ""
	}
	return s.auth.CredsFile(r)
}

// NATSURL returns the client URL of the embedded NATS server ("" when an
// external one is used).
func (s *Server) NATSURL() string {
	if s.ns == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// Ready reports whether the projections have caught up and validation
// answers.
func (s *Server) Ready() bool {
	return s.projector != nil && s.projector.Ready() && s.validator.Status().Ready
}

// Close shuts down gracefully: it stops accepting requests and lets those
// in flight finish (until ctx ends), stops the projections, drains NATS and
// stops the embedded server. It is safe to call on a partly opened Server.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if s.stop != nil {
		s.stop()
	}
	if s.http != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("HTTP shutdown: %w", err))
			s.http.Close()
		}
	} else if s.listener != nil {
		s.listener.Close()
	}
	if s.metricsHTTP != nil {
		if err := s.metricsHTTP.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("metrics HTTP shutdown: %w", err))
			s.metricsHTTP.Close()
		}
	}
	if s.metricsLn != nil {
		s.metricsLn.Close() // not yet served if Open failed before
	}
	s.wg.Wait()
	if s.outbox != nil {
		s.outbox.Close(ctx)
	}
	s.closeUsage()
	if s.limiter != nil {
		// Gives back what serve holds of keys' limits, if NATS is there
		// to take it (see Node.Close).
		if err := s.limiter.Close(ctx); err != nil {
			s.Logger.Warn("limits: could not give back what serve holds", "err", err)
		}
	}
	if s.validator != nil {
		s.validator.Close()
	}
	if s.snapshots != nil {
		s.snapshots.Close()
	}
	if s.checkpoints != nil {
		s.checkpoints.Close()
	}
	if s.integrity != nil {
		s.integrity.Close()
	}
	if s.projector != nil {
		s.projector.Stop()
	}
	if s.nc != nil {
		if err := s.nc.Drain(); err != nil {
			s.nc.Close()
		}
		for !s.nc.IsClosed() {
			select {
			case <-ctx.Done():
				s.nc.Close()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
	for _, c := range s.certs {
		c.Stop()
	}
	if s.lock != nil {
		s.lock.Close() // releases the lock, last: the embedded server is down
		s.lock = nil
	}
	return errors.Join(errs...)
}

// serveMetrics adds to the API's metrics m the gauges of the
// projections' progress, the NATS connection and password hashing.
func serveMetrics(m *handlers.Metrics, p *projections.Projector, nc *nats.Conn, pw *auth.Passwords) error {
	err := m.Register(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_projection_applied_sequence",
			Help: "Stream sequence of the last event applied to the read models.",
		}, func() float64 { return float64(p.Position()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_projection_lag_events",
			Help: "Events the read models are behind the head of the log as it was at start: the catch-up left; 0 once caught up.",
		}, func() float64 {
			st := p.Status()
			if st.Target <= st.Applied {
				return 0
			}
			return float64(st.Target - st.Applied)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_projection_last_applied_age_seconds",
			Help: "Seconds since the read models last applied an event (0 before the first); grows while the log is quiet too.",
		}, func() float64 {
			at := p.LastAppliedAt()
			if at.IsZero() {
				return 0
			}
			return time.Since(at).Seconds()
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_password_hashing_in_flight",
			Help: "Password hashes (argon2id) being computed now; never more than keyledger_password_hashing_max.",
		}, func() float64 { return float64(pw.InFlight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_password_hashing_max",
			Help: "Password hashes computed at once at most (--max-password-hashing).",
		}, func() float64 { return float64(pw.MaxHashing()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyledger_nats_connected",
			Help: "1 when serve's NATS connection is up, else 0.",
		}, func() float64 {
			if nc.IsConnected() {
				return 1
			}
			return 0
		}),
	)
	return err
}

// checkLoopback refuses to expose the embedded NATS server beyond this
// machine: it is a single node without TLS by default.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--nats-listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--nats-listen %q: the embedded NATS server listens on loopback only; use --nats-url for a networked cluster", addr)
}

var _ handlers.Ledger = (*ledger.Service)(nil)

var _ handlers.IdempotencyStore = (*idempotency.Store)(nil)

var _ handlers.Sessions = (*auth.Sessions)(nil)

var _ handlers.AdminNonces = (*adminnonce.Store)(nil)
