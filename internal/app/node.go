package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/limits"
	"github.com/keyledger/keyledger/internal/tlsconfig"
	"github.com/keyledger/keyledger/internal/usage"
	"github.com/keyledger/keyledger/validator"
)

// NodeConfig is the configuration of `keyledger validator`.
type NodeConfig struct {
	NATSURL      string
	HTTPAddr     string
	Stream       string
	MaxStaleness time.Duration
	FailOpen     bool
	LedgerKeys   string
	// TrustRoot pins the log's genesis: its fingerprint, or a file
	// holding it (as `keyledger audit trust-root` prints it).
	TrustRoot string
	// StateDir keeps what the node read of the log (its trust root, how
	// far it applied it, the newest checkpoint it verified) across
	// restarts; "": the node remembers only while it runs.
	StateDir string
	// NoSnapshot builds the lookup from the whole log instead of starting
	// from the newest snapshot that verifies (see internal/snapshot).
	NoSnapshot   bool
	StartTimeout time.Duration
	// ValidateFailures failed validations of one API key within
	// ValidateFailureWindow block it for that long (0: the default, 20
	// per 1m; negative: no limit).
	ValidateFailures      int
	ValidateFailureWindow time.Duration
	HTTPS                 HTTPSConfig
	NATSClient            NATSClientConfig
	Signed                SignedRequestsConfig
	// MetricsAddr is where /metrics is served: a listener of its own
	// (plain HTTP; the command line's default is DefaultNodeMetricsAddr,
	// loopback), MetricsOnAPI for HTTPAddr's listener, or MetricsOff (or
	// "") for nowhere.
	MetricsAddr string
	// TrustedProxies are addresses and CIDR prefixes of the forward-auth
	// proxies whose X-Forwarded-Method, -Proto, -Host and -Uri /validate
	// believes for signed requests (none: no peer's).
	TrustedProxies []string
	// Fleet names the node in its heartbeats and usage reports.
	Fleet FleetConfig
	// UsageInterval is how often it publishes its usage reports (0:
	// usage.DefaultInterval).
	UsageInterval time.Duration
	// KeyLimits is how the node counts keys' rate limits and credits
	// with the others.
	KeyLimits KeyLimitsConfig
}

// Node is a running `keyledger validator`: a validation node with its HTTP
// endpoints. Tests drive it directly.
type Node struct {
	Config NodeConfig
	Logger *slog.Logger

	nc        *nats.Conn
	validator *validator.Validator
	usage     *usage.Flusher
	limiter   *limits.Limiter
	cert      *tlsconfig.Certificate
	http      *http.Server
	listener  net.Listener
	stop      context.CancelFunc
	wg        sync.WaitGroup

	// metricsHTTP is nil unless MetricsAddr is a listener's.
	metricsHTTP *http.Server
	metricsLn   net.Listener
}

// Open connects to NATS, starts following the log and serves HTTP. It
// returns once listening; /readyz is 503 until the node has caught up.
func (n *Node) Open(ctx context.Context) error {
	cfg := &n.Config
	if n.Logger == nil {
		n.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.Stream == "" {
		cfg.Stream = eventstore.DefaultStream
	}
	if cfg.MaxStaleness <= 0 {
		cfg.MaxStaleness = validator.DefaultMaxStaleness
	}
	natsOpts, err := cfg.NATSClient.Options()
	if err != nil {
		return err
	}
	natsOpts = append(failoverOptions(), natsOpts...) // the configured options may override them
	natsOpts = append(natsOpts, nats.Name("keyledger-validator"), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond))
	nc, err := ConnectNATS(ctx, cfg.NATSURL, cfg.StartTimeout, n.Logger, natsOpts...)
	if err != nil {
		return err
	}
	n.nc = nc
	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	opts := []validator.Option{validator.WithStream(cfg.Stream), validator.WithMaxStaleness(cfg.MaxStaleness),
		validatorOption(cfg.ValidateFailures, cfg.ValidateFailureWindow)}
	opts = append(opts, cfg.Signed.options()...)
	proxies, err := handlers.ParseTrustedProxies(cfg.TrustedProxies...)
	if err != nil {
		return ConfigError{fmt.Errorf("--trusted-proxy: %w", err)}
	}
	opts = append(opts, validator.WithTrustedProxy(proxies.Trusts))
	if cfg.FailOpen {
		opts = append(opts, validator.WithFailOpen())
	}
	if cfg.LedgerKeys != "" {
		var keys []ed25519.PublicKey
		for _, part := range strings.Split(cfg.LedgerKeys, ",") {
			k, err := eventstore.DecodePublicKey(part)
			if err != nil {
				return ConfigError{fmt.Errorf("--ledger-key: %w", err)}
			}
			keys = append(keys, k)
		}
		opts = append(opts, validator.WithTrustedKeys(keys...))
	}
	if cfg.TrustRoot != "" {
		fp, err := ReadTrustRoot(cfg.TrustRoot)
		if err != nil {
			return ConfigError{fmt.Errorf("--trust-root: %w", err)}
		}
		opts = append(opts, validator.WithTrustRoot(fp))
	}
	if cfg.NoSnapshot {
		opts = append(opts, validator.WithoutSnapshot())
	}
	if cfg.StateDir != "" {
		opts = append(opts, validator.WithStateDir(cfg.StateDir))
	}
	if err := cfg.Fleet.check(); err != nil {
		return err
	}
	nodeName, err := cfg.Fleet.nodeName("")
	if err != nil {
		return err
	}
	counters := usage.NewCounters(0, time.Now())
	opts = append(opts, validator.WithUsage(counters))
	if n.limiter, err = cfg.KeyLimits.openLimiter(nc, cfg.Stream, nodeName, n.Logger.With("component", "limits")); err != nil {
		return err
	}
	opts = append(opts, validator.WithLimiter(keyLimiter{n.limiter, cfg.KeyLimits.now}))
	n.validator, err = validator.Open(sctx, nc, n.Logger.With("component", "validator"), opts...)
	if err != nil {
		return fmt.Errorf("validation node: %w", err)
	}
	if n.usage, err = usage.NewFlusher(usage.FlusherConfig{Counters: counters, Conn: nc, Node: nodeName,
		Interval: cfg.UsageInterval, Logger: n.Logger.With("component", "usage")}); err != nil {
		return ConfigError{err}
	}
	for _, c := range append(n.usage.Collectors(), n.limiter.Collectors()...) {
		if err := n.validator.Registry().Register(c); err != nil {
			return err
		}
	}
	n.usage.Start()
	tlsConfig, cert, err := cfg.HTTPS.load(n.Logger.With("component", "tls"))
	if err != nil {
		return err
	}
	n.cert = cert
	handler := n.validator.Handler()
	if cfg.MetricsAddr == MetricsOnAPI {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", n.validator.MetricsHandler())
		mux.Handle("/", handler)
		handler = mux
	}
	if n.metricsHTTP, n.metricsLn, err = openMetrics(cfg.MetricsAddr, n.validator.MetricsHandler(), n.Logger); err != nil {
		return err
	}
	var scheme string
	if n.http, n.listener, scheme, err = listenHTTP(cfg.HTTPAddr, handler, tlsConfig, 10*time.Second, 10*time.Second, n.Logger); err != nil {
		return fmt.Errorf("HTTP: %w", err)
	}
	ln := n.listener
	bg, stop := context.WithCancel(context.Background())
	n.stop = stop
	if cert != nil {
		n.wg.Go(func() { reloadOnHUP(bg, cert, n.Logger.With("component", "tls")) })
	}
	serveHTTP(&n.wg, n.http, ln, n.Logger)
	announce(bg, &n.wg, nc, nodeName, cfg.Fleet.HeartbeatInterval, validatorSource{n.validator}, n.Logger.With("component", "fleet"))
	if n.metricsHTTP != nil {
		n.Logger.Info("serving metrics", "http", "http://"+n.metricsLn.Addr().String()+"/metrics")
		serveHTTP(&n.wg, n.metricsHTTP, n.metricsLn, n.Logger)
	}
	n.Logger.Info("validation node started", "node", nodeName, "http", scheme+"://"+ln.Addr().String(), "nats", nc.ConnectedUrlRedacted(),
		"stream", cfg.Stream, "max_staleness", cfg.MaxStaleness)
	return nil
}

// HTTPAddr returns the address the node listens on.
func (n *Node) HTTPAddr() string { return n.listener.Addr().String() }

// MetricsAddr returns the address of the metrics listener ("" when
// /metrics is served on the node's HTTP listener, or not at all).
func (n *Node) MetricsAddr() string {
	if n.metricsLn == nil {
		return ""
	}
	return n.metricsLn.Addr().String()
}

// Validator returns the node's validator.
func (n *Node) Validator() *validator.Validator { return n.validator }

// Close stops serving (letting requests in flight finish until ctx ends),
// stops following the log and closes the NATS connection.
func (n *Node) Close(ctx context.Context) error {
	var err error
	if n.stop != nil {
		n.stop()
	}
	if n.http != nil {
		if err = n.http.Shutdown(ctx); err != nil {
			n.http.Close()
		}
	} else if n.listener != nil {
		n.listener.Close()
	}
	if n.metricsHTTP != nil {
		if merr := n.metricsHTTP.Shutdown(ctx); merr != nil {
			n.metricsHTTP.Close()
			err = errors.Join(err, merr)
		}
	}
	if n.metricsLn != nil {
		n.metricsLn.Close() // not yet served if Open failed before
	}
	n.wg.Wait()
	if n.usage != nil {
		n.usage.Close() // publishes the last interval's counts
	}
	if n.limiter != nil {
		// Gives back what the node holds of keys' limits, if NATS is
		// there to take it: what is not given back stays leased until it
		// expires (see internal/limits), so a failure is no error of
		// Close.
		if lerr := n.limiter.Close(ctx); lerr != nil {
			n.Logger.Warn("limits: could not give back what this node holds", "err", lerr)
		}
	}
	if n.validator != nil {
		n.validator.Close()
	}
	if n.nc != nil {
		n.nc.Close()
	}
	if n.cert != nil {
		n.cert.Stop()
	}
	return err
}

// ReadTrustRoot returns the trust-root fingerprint arg gives: the
// fingerprint itself, or the name of a file holding it (the first word of
// its first line, as `keyledger audit trust-root > FILE` writes it).
func ReadTrustRoot(arg string) (string, error) {
	if fp, err := eventstore.ParseTrustRoot(arg); err == nil {
		return fp, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%q is neither a fingerprint (sha256:...) nor a file", arg)
		}
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return "", fmt.Errorf("%s: no fingerprint in it", arg)
	}
	return eventstore.ParseTrustRoot(fields[0])
}
