package main

import (
	"context"
	"flag"
	"io"
	"log/slog"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/fleet"
	"github.com/keyledger/keyledger/internal/idempotency"
	"github.com/keyledger/keyledger/internal/integrity"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/snapshot"
	"github.com/keyledger/keyledger/internal/usage"
)

// serveFlags registers the flags of serve, which set c.
func serveFlags(fs *flag.FlagSet, c *app.ServeConfig) {
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory for the embedded NATS store, its credentials (creds/) and the signing keys")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", app.DefaultServeMetricsAddr, "`address` of a listener of its own for Prometheus /metrics (plain HTTP); \"api\" to serve it on the HTTP API's listener instead, \"off\" for none")
	fs.StringVar(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "client address of the embedded NATS server (loopback only)")
	fs.StringVar(&c.NATSURL, "nats-url", "", "use this NATS server or cluster instead of the embedded one (comma-separated URLs)")
	fs.IntVar(&c.Replicas, "replicas", 0, "replicas of the event stream, 3 for a replicated log on a cluster (default: 1 for a new stream; an existing stream keeps its count)")
	fs.StringVar(&c.Stream, "stream", eventstore.DefaultStream, "JetStream stream name")
	fs.StringVar(&c.SessionKeyFile, "session-key", "", "Ed25519 PKCS#8 PEM key that signs session tokens, created if missing (default <data-dir>/session-ed25519.pem)")
	fs.StringVar(&c.SigningKeyFile, "signing-key", "", "Ed25519 PKCS#8 PEM key that signs every event the ledger writes, created if missing (default <data-dir>/ledger-ed25519.pem)")
	fs.DurationVar(&c.SessionTTL, "session-ttl", auth.DefaultTTL, "lifetime of session tokens")
	fs.DurationVar(&c.StartTimeout, "start-timeout", app.DefaultStartTimeout, "how long to wait for NATS and the event stream at start")
	fs.IntVar(&c.MaxKeysPerUser, "max-keys-per-user", ledger.DefaultMaxKeysPerUser, "most unrevoked API keys a user may hold (negative: no limit)")
	fs.DurationVar(&c.CheckpointInterval, "checkpoint-interval", checkpoint.DefaultInterval, "how often to append a signed Merkle checkpoint of the log when it has grown (negative: never)")
	fs.DurationVar(&c.VerifyInterval, "verify-interval", integrity.DefaultInterval, "how often to verify the whole log as `keyledger audit verify` does, for GET /admin/integrity and the console (negative: only when an admin asks)")
	fs.DurationVar(&c.SnapshotInterval, "snapshot-interval", snapshot.DefaultInterval, "how often to write signed snapshots, when the log has grown: of the validation lookup, which validation nodes start from, and of serve's read models, which serve starts from (negative: never)")
	fs.IntVar(&c.SnapshotKeep, "snapshot-keep", snapshot.DefaultKeep, "how many snapshots of each kind to keep; older ones are deleted")
	fs.BoolVar(&c.NoSnapshot, "no-snapshot", false, "fold the whole log into the read models at start instead of starting from the newest snapshot that verifies against it")
	fs.Int64Var(&c.StreamMaxBytes, "stream-max-bytes", app.DefaultStreamMaxBytes, "size limit of the event stream in bytes; once full, commands fail (keyledger_stream_bytes warns before; negative: no limit)")
	fs.Int64Var(&c.IdempotencyMaxBytes, "idempotency-max-bytes", app.DefaultIdempotencyMaxBytes, "size limit of the idempotency records' bucket in bytes (negative: no limit)")
	fs.Int64Var(&c.NoncesMaxBytes, "nonces-max-bytes", app.DefaultNoncesMaxBytes, "size limit of the shared replay cache's bucket in bytes (negative: no limit)")
	fs.StringVar(&c.BootstrapAdmin, "bootstrap-admin", "", "admin public key file (from `keyledger admin keygen`) to enroll as the first admin while no admin key is enrolled; ignored afterwards")
	fs.StringVar(&c.BootstrapAdminName, "bootstrap-admin-name", "admin", "the name of the --bootstrap-admin admin: recorded as actor admin:<name>")
	fs.StringVar(&c.Fleet.NodeName, "node-name", "", "this serve's name in the fleet (GET /admin/nodes; default serve:<host name>)")
	fs.DurationVar(&c.Fleet.Liveness, "node-liveness", fleet.DefaultLiveness, "how long a node counts as live after its last heartbeat (?wait=nodes waits for live nodes)")
	fs.DurationVar(&c.Fleet.WaitTimeout, "wait-timeout", handlers.DefaultWaitTimeout, "how long ?wait=nodes waits for every live node before answering 202")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-ttl", idempotency.DefaultTTL, "how long the response to a request with an Idempotency-Key is kept for its retries (at least 1m)")
	fs.DurationVar(&c.UsageInterval, "usage-interval", usage.DefaultInterval, "how often /validate's per-key usage counts are published to the usage stream")
	keyLimitsFlags(fs, &c.KeyLimits)
	usageStreamFlags(fs, c)
	limitsFlags(fs, &c.Limits)
	httpsFlags(fs, &c.HTTPS, false)
	natsClientFlags(fs, &c.NATSClient)
	embeddedTLSFlags(fs, &c.NATSTLS)
	signedFlags(fs, &c.Signed)
	signUpFlags(fs, &c.SignUp)
	oidcFlags(fs, &c.OIDC)
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg app.ServeConfig
	return runDaemon(ctx, "serve", args, stderr, func(fs *flag.FlagSet) { serveFlags(fs, &cfg) }, func(logger *slog.Logger) daemon {
		return configErrorsAreUsage{&app.Server{Config: cfg, Logger: logger}}
	})
}

// usageStreamFlags are the usage stream's limits, for serve and setup.
func usageStreamFlags(fs *flag.FlagSet, c *app.ServeConfig) {
	fs.DurationVar(&c.UsageRetention, "usage-retention", usage.DefaultRetention, "how long the usage stream (<stream>_USAGE) keeps the nodes' usage reports")
	fs.Int64Var(&c.UsageMaxBytes, "usage-max-bytes", usage.DefaultMaxBytes, "size limit of the usage stream in bytes; past it the oldest reports go")
}
