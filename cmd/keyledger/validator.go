package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/limits"
	"github.com/keyledger/keyledger/internal/usage"
	"github.com/keyledger/keyledger/validator"
)

// nodeFlags registers the flags of validator, which set c.
func nodeFlags(fs *flag.FlagSet, c *app.NodeConfig) {
	fs.StringVar(&c.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server or cluster holding the event log (comma-separated URLs)")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8081", "HTTP listen address of /validate, /healthz and /readyz")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", app.DefaultNodeMetricsAddr, "`address` of a listener of its own for Prometheus /metrics (plain HTTP); \"api\" to serve it on --http-addr's listener instead, \"off\" for none")
	fs.StringVar(&c.Stream, "stream", eventstore.DefaultStream, "JetStream stream name")
	fs.StringVar(&c.Fleet.NodeName, "node-name", "", "this node's `name` in its heartbeats and usage reports (keyledger admin nodes): letters, digits, -, _ and : (default: the host name)")
	fs.DurationVar(&c.MaxStaleness, "max-staleness", validator.DefaultMaxStaleness, "answer 503 once the event log has been out of reach this long")
	fs.BoolVar(&c.FailOpen, "fail-open", false, "keep validating from a stale view instead of answering 503 (not recommended)")
	fs.StringVar(&c.LedgerKeys, "ledger-key", "", "pin the trust root: accept only a log whose genesis one of these ledger public `keys` (comma-separated, as printed by keyledger audit pubkey) signed")
	fs.StringVar(&c.TrustRoot, "trust-root", "", "pin the log's genesis: its `fingerprint` (sha256:...), or a file holding it, as keyledger audit trust-root prints it")
	fs.StringVar(&c.StateDir, "state-dir", filepath.Join("data", "validator"), "`directory` remembering the log this node read (its trust root, how far it applied it, the newest checkpoint verified): a log that does not extend it is refused; \"\" to remember nothing across restarts")
	fs.DurationVar(&c.StartTimeout, "start-timeout", app.DefaultStartTimeout, "how long to wait for NATS and the event stream at start")
	fs.BoolVar(&c.NoSnapshot, "no-snapshot", false, "build the lookup from the whole log instead of starting from the newest snapshot that verifies against it")
	validateFailureFlags(fs, &c.ValidateFailures, &c.ValidateFailureWindow)
	fs.DurationVar(&c.UsageInterval, "usage-interval", usage.DefaultInterval, "how often this node publishes its per-key usage counts to the usage stream")
	keyLimitsFlags(fs, &c.KeyLimits)
	fs.Var(&proxyList{list: &c.TrustedProxies}, "trusted-proxy", "`address` or CIDR prefix of a forward-auth proxy (nginx, Traefik) whose X-Forwarded-Method/-Proto/-Host/-Uri /validate believes for signed requests; repeatable or comma-separated (default: none, a signed request must be the /validate request itself)")
	httpsFlags(fs, &c.HTTPS, true)
	natsClientFlags(fs, &c.NATSClient)
	signedFlags(fs, &c.Signed)
}

func runValidator(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg app.NodeConfig
	return runDaemon(ctx, "validator", args, stderr, func(fs *flag.FlagSet) { nodeFlags(fs, &cfg) }, func(logger *slog.Logger) daemon {
		return configErrorsAreUsage{&app.Node{Config: cfg, Logger: logger}}
	})
}

// keyLimitsFlags registers the flags of how keys' rate limits and
// credits are counted, shared by serve and validator.
func keyLimitsFlags(fs *flag.FlagSet, c *app.KeyLimitsConfig) {
	fs.StringVar(&c.Unreachable, "limits-unreachable", "deny", "when a key's limits need the shared counters and NATS is out of reach: `deny` (429/503, never more than the limit) or local (each node enforces limit/--limits-expected-nodes alone)")
	fs.IntVar(&c.ExpectedNodes, "limits-expected-nodes", limits.DefaultExpectedNodes, "how many nodes share keys' rate limits, which each enforces alone at limit/`n` with --limits-unreachable local")
}
