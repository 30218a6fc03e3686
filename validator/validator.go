// Package validator validates API keys locally, with no call home: it keeps
// the validation lookup in memory, built from the event log and fed by it
// in order, so a revocation or a regenerated secret takes effect the moment
// its event arrives. Any Go service can embed it; `keyledger validator` and
// `keyledger serve` serve it over HTTP.
//
// A Validator fails closed: it answers Unavailable until it has caught up
// with the log as it was at start, after a reconnect until it has caught up
// again, and whenever it cannot confirm for longer than its staleness bound
// that it has seen everything the log holds.
//
// Options keep their default when given the zero value of their argument
// (the Default constants), so a caller may pass configuration fields
// through unchecked; any other value outside an option's range makes New or
// Open fail with Invalid. WithTrustedKeys has no default to fall back to
// and refuses an empty list.
package validator

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/knownlog"
	"github.com/keyledger/keyledger/internal/ratelimit"
	"github.com/keyledger/keyledger/internal/snapshot"
	"github.com/keyledger/keyledger/internal/usage"
	"github.com/keyledger/keyledger/projections"
)

// DefaultMaxStaleness is how long a node keeps answering from its view
// after it last confirmed that view complete.
const DefaultMaxStaleness = 30 * time.Second

// Default limit on failed validations per API key: after this many
// failures within the window, the key's failing validations are answered
// 429 for a window; its right credentials still pass (see
// WithFailureLimit). A 256-bit secret cannot be guessed online anyway: the
// limit tells a client hammering a key with a wrong or revoked secret to
// back off. It is lenient so that no client that is merely
// misconfigured for a moment gets blocked.
const (
	DefaultFailureLimit  = 20
	DefaultFailureWindow = time.Minute
)

// NoLimit, as WithFailureLimit's limit, turns the limit on failed
// validations off.
const NoLimit = -1

// maxCheckInterval caps the default check interval (a quarter of the
// staleness bound).
const maxCheckInterval = time.Second

// Identity is who a validated API key belongs to and what it may do:
// its name, the scopes it is granted (see domain.ScopeSet for how a
// granted scope matches a required one) and its metadata, a JSON object
// ({} when it has none).
//
// Scopes and Metadata are shared, read-only: validations of keys with the
// same scopes, and every key without metadata, hand out the same slices,
// so that a validation allocates nothing. Read them; never modify their
// elements (copy them first, e.g. with slices.Clone). The other fields are
// the Identity's own.
type Identity struct {
	APIKey string `json:"api_key"`
	// UserID is the user who owns the key, or for a team's key the
	// member who created it.
	UserID string `json:"user_id"`
	// OwnerType is "user" or "team"; OwnerID is the user or the team.
	OwnerType string `json:"owner_type"`
	OwnerID   string `json:"owner_id"`
	// CreatedBy is who the key acts for: the user who created it, or for
	// a service account's key the service account (also in
	// ServiceAccount, "" for other keys).
	CreatedBy      string          `json:"created_by"`
	ServiceAccount string          `json:"service_account,omitempty"`
	Name           string          `json:"name"`
	Scopes         []string        `json:"scopes"`
	Metadata       json.RawMessage `json:"metadata"`
	// RateLimit and Credits are where the key stands in its limits after
	// this request; nil when it has none.
	RateLimit *RateLimitInfo `json:"rate_limit,omitempty"`
	Credits   *CreditsInfo   `json:"credits,omitempty"`

	limits *domain.Limits // the key's limits, charged by admit
}

// identityOf is the identity of a key the lookup validated.
func identityOf(apiKey string, res projections.Result) Identity {
	meta := noMetadata
	if res.Metadata != "" {
		meta = json.RawMessage(res.Metadata)
	}
	id := Identity{APIKey: apiKey, UserID: res.UserID, OwnerType: OwnerUser, OwnerID: res.UserID, CreatedBy: res.UserID,
		Name: res.Name, Scopes: res.ScopeList, Metadata: meta, limits: res.Limits}
	if res.TeamID != "" {
		id.OwnerType, id.OwnerID, id.ServiceAccount = OwnerTeam, res.TeamID, res.ServiceAccount
		if res.ServiceAccount != "" {
			id.CreatedBy = res.ServiceAccount
		}
	}
	return id
}

// noMetadata is the Metadata of every Identity of a key without any,
// shared (see Identity).
var noMetadata = json.RawMessage("{}")

// Owner types of an Identity.
const (
	OwnerUser = "user"
	OwnerTeam = "team"
)

// MissingScope returns the first of required that the identity's key is
// not granted (a required scope that is not a valid scope never is), and
// whether there is one.
func (id Identity) MissingScope(required ...string) (string, bool) {
	for _, r := range required {
		if !domain.ValidScope(r) || !slices.ContainsFunc(id.Scopes, func(g string) bool { return domain.ScopeGrants(g, r) }) {
			return r, true
		}
	}
	return "", false
}

// Errors returned by Validate; match them with errors.Is. ErrUnauthorized
// is the one answer to every bad credential; the reason goes to logs and
// metrics only.
var (
	ErrUnauthorized = domain.ErrBadCredentials
	ErrNotReady     = &domain.Error{Kind: domain.Unavailable, Message: "validation node is catching up with the event log",
		RetryAfter: time.Second}
	ErrStale = &domain.Error{Kind: domain.Unavailable,
		Message: "validation node has lost the event log for longer than its staleness bound", RetryAfter: time.Second}
	// ErrRateLimited matches the error for a key refused after too many
	// failed validations (see WithFailureLimit), a domain.RateLimitedFor
	// error whose domain.RetryAfterOf says when the block ends.
	ErrRateLimited = domain.Errorf(domain.RateLimited, "too many failed validations of this API key, try again later")
	// ErrRollback is matched (errors.Is) by the error of a node that
	// refuses the log for good: it does not extend the log the node
	// already read - the stream was re-created, rolled back, rewritten or
	// starts from another genesis. The node stays closed until an
	// operator has looked and restarted it.
	ErrRollback = &domain.Error{Kind: domain.Unavailable,
		Message: "validation node refuses the event log: it does not extend the log this node already read"}
)

// Log is what a Validator reads of the event store.
type Log interface {
	projections.Log
}

// Config assembles a Validator from parts the caller owns and runs (the
// ledger shares its projector, so that its own writes are visible to
// validation the moment a command returns). Open builds them for a
// stand-alone node.
type Config struct {
	Log       Log                    // for the head of the log
	Projector *projections.Projector // feeds Lookup
	Lookup    *projections.Lookup
	Conn      *nats.Conn // its status changes reveal reconnects; may be nil
	Logger    *slog.Logger
	Options   []Option

	// Snapshot says how Lookup was built: from a snapshot or from the
	// start of the log (the zero value: not tried). A state directory
	// (WithStateDir) takes what the snapshot vouches for instead of
	// reading the log again.
	Snapshot SnapshotStart

	known *knownState // Open's check of the state directory
}

// SnapshotStart is how a node's lookup was built: the outcome of loading
// a snapshot ("loaded", or why none was used: "none", "no_bucket",
// "refused", "unavailable"; "" when none was tried) and, when loaded,
// where the snapshot stands: the position it holds the log up to and the
// log's signed checkpoint it is bound to.
type SnapshotStart struct {
	Outcome        string
	Seq            uint64
	CheckpointSeq  uint64
	CheckpointSize uint64
	CheckpointRoot domain.Hash
}

// vouched is what a loaded snapshot vouches for (nil: none loaded).
func (s SnapshotStart) vouched() *knownlog.Vouched {
	if s.Outcome != snapshot.OutcomeLoaded {
		return nil
	}
	return &knownlog.Vouched{Checkpoint: knownlog.Checkpoint{Seq: s.CheckpointSeq, Size: s.CheckpointSize,
		Root: s.CheckpointRoot}, Through: s.Seq}
}

// StartedFrom is the SnapshotStart of a loaded snapshot (nil: none was
// loaded, for the reason given by outcome).
func StartedFrom(loaded *snapshot.Loaded, outcome string) SnapshotStart {
	if loaded == nil {
		return SnapshotStart{Outcome: outcome}
	}
	c := loaded.Checkpoint
	return SnapshotStart{Outcome: snapshot.OutcomeLoaded, Seq: loaded.Seq, CheckpointSeq: c.Seq, CheckpointSize: c.Size,
		CheckpointRoot: c.Root}
}

// knownState is what a node checked of the log against its state
// directory (see WithStateDir) before it started.
type knownState struct {
	file   *knownlog.File // nil: no state directory
	record knownlog.Record
}

// Option tunes a Validator.
type Option func(*options) error

type options struct {
	trusted       []ed25519.PublicKey
	maxStaleness  time.Duration
	failOpen      bool
	interval      time.Duration
	now           func() time.Time
	clockSet      bool // WithClock: every reading comes from now, no coarse clock
	stream        string
	failureLimit  int
	failureWindow time.Duration
	window        time.Duration
	replaySize    int
	origin        *url.URL
	sharedReplays bool
	stateDir      string
	trustRoot     string
	proxy         trustedProxy    // nil: no peer's X-Forwarded-* is believed
	usage         *usage.Counters // nil: usage is not counted
	limiter       Limiter         // nil: keys with limits are refused
	noSnapshot    bool            // WithoutSnapshot
}

// WithoutSnapshot has Open build the lookup from the whole log instead of
// starting from the newest snapshot it can verify.
func WithoutSnapshot() Option {
	return func(o *options) error {
		o.noSnapshot = true
		return nil
	}
}

// WithTrustRoot pins the log's genesis by its fingerprint, as `keyledger
// audit trust-root` prints it (used by Open): a log whose genesis differs
// - rebuilt or forged, even from the ledger's own signed messages - is
// refused (see eventstore.WithTrustRoot).
func WithTrustRoot(fingerprint string) Option {
	return func(o *options) error {
		fp, err := eventstore.ParseTrustRoot(fingerprint)
		if err != nil {
			return err
		}
		o.trustRoot = fp
		return nil
	}
}

// WithStateDir keeps what the node has read of the log in dir (one file
// per stream, see internal/knownlog): on its first start the fingerprint of
// the log's genesis (logged loudly), when the stream was created, the
// newest checkpoint it verified and how far it applied the log. Afterwards
// the node refuses to start on a log that does not extend that one (another
// genesis, a re-created stream, a checkpoint that does not match, a log
// ending before what was applied), and a running node fails closed
// (ErrRollback) when it sees the same. Each checkpoint the running node
// verifies against the events it applied is saved at once, so a restart
// also refuses a log rolled back to before it. Without it a node
// remembers only while it runs.
func WithStateDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("state directory: none given")
		}
		o.stateDir = dir
		return nil
	}
}

// WithFailureLimit sets the limit on failed validations per API key:
// after limit failures of one key id within window (whether the key is
// unknown, revoked, expired, the secret or the signature wrong), every
// failing validation of that key id is answered ErrRateLimited, with the
// time left, for window. Valid credentials still pass: a 256-bit secret
// cannot be guessed, so refusing them would protect nothing and would let
// anyone who knows a key id (it is not secret) shut its owner out. The
// limit tells a hammering client to back off and marks it in metrics.
// A limit of 0 keeps DefaultFailureLimit, a window of 0
// DefaultFailureWindow; NoLimit turns the limit off. The state is per
// node, in memory, and bounded.
func WithFailureLimit(limit int, window time.Duration) Option {
	return func(o *options) error {
		if limit < NoLimit || window < 0 {
			return errors.New("failure limit: want a positive limit (0: the default, NoLimit: none) and a positive window (0: the default)")
		}
		if limit != 0 {
			o.failureLimit = limit
		}
		if window != 0 {
			o.failureWindow = window
		}
		return nil
	}
}

// WithUsage counts every validation of a key the node knows in c (valid,
// refused by reason, last use; see internal/usage): an increment in
// memory, nothing that waits. Key ids the log does not hold are not
// counted, so that no client can grow the counters by making them up.
func WithUsage(c *usage.Counters) Option {
	return func(o *options) error {
		o.usage = c
		return nil
	}
}

// WithMaxStaleness sets how long the node keeps answering after it last
// confirmed its view complete (0: DefaultMaxStaleness). Past it, Validate
// returns ErrStale unless WithFailOpen is set.
func WithMaxStaleness(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("max staleness must be positive, or 0 for the default")
		}
		if d != 0 {
			o.maxStaleness = d
		}
		return nil
	}
}

// WithFailOpen keeps answering from a stale view instead of failing closed.
// It is an explicit opt-out; the node logs that it runs this way.
func WithFailOpen() Option {
	return func(o *options) error {
		o.failOpen = true
		return nil
	}
}

// WithCheckInterval sets how often the node confirms that it has seen the
// whole log (0: a quarter of the staleness bound, at most 1s). It must be
// shorter than the staleness bound.
func WithCheckInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("check interval must be positive, or 0 for the default")
		}
		o.interval = d
		return nil
	}
}

// WithStream sets the stream to read ("": eventstore.DefaultStream), and
// names the shared replay cache's bucket after it. Open has the event
// store check the name.
func WithStream(name string) Option {
	return func(o *options) error {
		if name != "" {
			o.stream = name
		}
		return nil
	}
}

// WithTrustedKeys pins the trust root (used by Open): the node accepts
// only a log whose genesis one of keys signed, and from there the keys the
// log's own trust events add and retire (see eventstore.WithTrustedKeys).
// Without it the node trusts the log's genesis, whoever wrote it. An empty
// list is an error, not a return to that default.
func WithTrustedKeys(keys ...ed25519.PublicKey) Option {
	return func(o *options) error {
		if len(keys) == 0 {
			return errors.New("trusted keys: none given")
		}
		for _, k := range keys {
			if len(k) != ed25519.PublicKeySize {
				return errors.New("trusted keys: not an Ed25519 public key")
			}
		}
		o.trusted = keys
		return nil
	}
}

// WithClock sets the clock used for expiry and staleness (nil: time.Now).
// Without it, validations read a coarse clock the node sets every 10 ms
// (an expiry takes effect up to that late, never early), and the precise
// one past half the staleness bound.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now != nil {
			o.now, o.clockSet = now, true
		}
		return nil
	}
}

// newOptions applies opts over the defaults: the one place they are set.
func newOptions(opts []Option) (options, error) {
	o := options{maxStaleness: DefaultMaxStaleness, now: time.Now, stream: eventstore.DefaultStream,
		window: DefaultSignatureWindow, replaySize: DefaultReplayCacheSize,
		failureLimit: DefaultFailureLimit, failureWindow: DefaultFailureWindow}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return options{}, domain.Wrap(domain.Invalid, err, "validator: "+err.Error())
		}
	}
	if o.interval == 0 {
		o.interval = min(o.maxStaleness/4, maxCheckInterval)
	}
	if o.interval >= o.maxStaleness {
		return options{}, domain.Errorf(domain.Invalid, "validator: check interval %v must be shorter than the staleness bound %v", o.interval, o.maxStaleness)
	}
	return o, nil
}

// Validator validates API keys against its in-memory lookup. It is safe for
// concurrent use.
type Validator struct {
	log       Log
	projector *projections.Projector
	lookup    *projections.Lookup
	conn      *nats.Conn
	logger    *slog.Logger
	opts      options
	metrics   *metrics
	replays   *replayCache
	shared    *sharedReplays      // nil: replays are refused per node only
	failures  *ratelimit.Failures // nil: no limit on failed validations

	// forwardWarned is set once X-Forwarded-* from an untrusted peer was
	// logged.
	forwardWarned atomic.Bool

	// What the node knows of the log it read; touched only by the
	// freshness loop once New returned.
	known    knownlog.Record
	state    *knownlog.File // nil: no state directory
	savedAt  time.Time
	refused  atomic.Pointer[domain.Error] // set once: the node refuses the log
	refusing chan struct{}                // closed when refused is set
	sealed   atomic.Bool
	// checkpointSize is the size of the newest checkpoint remembered.
	checkpointSize atomic.Uint64
	snapshot       SnapshotStart // how the lookup was built

	// coarse is the node's coarse clock in Unix ns, set by tickClock every
	// coarseTick, read by validations; 0: read opts.now instead (the
	// clock was set with WithClock, or the node is closed).
	coarse atomic.Int64

	confirmedAt  atomic.Int64 // Unix ns when the view was last known complete
	reconnects   atomic.Uint64
	confirmedGen atomic.Uint64 // reconnects count as of the last confirmation
	connected    atomic.Bool

	status  chan nats.Status // the connection's status changes; nil without one
	confirm chan struct{}    // asks the freshness loop to confirm now
	owned   func()           // stops what Open started; nil for New
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New returns a Validator over parts the caller runs and starts its
// freshness check. Close stops it.
func New(cfg Config) (*Validator, error) {
	if cfg.Log == nil || cfg.Projector == nil || cfg.Lookup == nil {
		return nil, errors.New("validator: need a log, a projector and a lookup")
	}
	o, err := newOptions(cfg.Options)
	if err != nil {
		return nil, err
	}
	// A signature is acceptable from window before its created time to
	// window after it: remember each for at least that long.
	v := &Validator{log: cfg.Log, projector: cfg.Projector, lookup: cfg.Lookup, conn: cfg.Conn,
		logger: cfg.Logger, opts: o, replays: newReplayCache(2*o.window, o.replaySize)}
	if o.failureLimit != NoLimit {
		f, err := ratelimit.NewFailures(ratelimit.FailuresConfig{Limit: o.failureLimit, Window: o.failureWindow})
		if err != nil {
			return nil, domain.Wrap(domain.Invalid, err, "validator: "+err.Error())
		}
		v.failures = f
	}
	if v.logger == nil {
		v.logger = slog.New(slog.DiscardHandler)
	}
	if o.sharedReplays {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		shared, err := openSharedReplays(ctx, cfg.Conn, o.stream, 2*o.window)
		cancel()
		if err != nil {
			return nil, domain.Wrap(domain.Unavailable, err, "validator: "+err.Error())
		}
		v.shared = shared
	}
	if o.stateDir != "" && cfg.known == nil {
		log, ok := cfg.Log.(knownlog.Log)
		if !ok {
			return nil, errors.New("validator: a state directory needs an event store as the log")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		known, err := checkKnown(ctx, log, o.stateDir, v.logger, cfg.Snapshot.vouched())
		cancel()
		if err != nil {
			return nil, err
		}
		cfg.known = known
	}
	v.snapshot = cfg.Snapshot
	if cfg.known != nil {
		v.known, v.state = cfg.known.record, cfg.known.file
		if c := v.known.Checkpoint; c != nil {
			v.checkpointSize.Store(c.Size)
		}
	}
	v.refusing = make(chan struct{})
	if v.known.Stream == "" {
		v.known.Stream = o.stream
	}
	v.metrics = newMetrics(v)
	v.connected.Store(cfg.Conn == nil || cfg.Conn.IsConnected())
	if o.failOpen {
		v.logger.Warn("validation fails OPEN: a node cut off from the event log keeps accepting keys it may have missed revocations of",
			"max_staleness", o.maxStaleness)
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	v.confirm = make(chan struct{}, 1)
	if cfg.Conn != nil {
		v.status = cfg.Conn.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
		v.wg.Go(func() { v.watchConnection(ctx) })
	}
	v.wg.Go(func() { v.watchFreshness(ctx) })
	if !o.clockSet {
		v.coarse.Store(time.Now().UnixNano())
		v.wg.Go(func() { v.tickClock(ctx) })
	}
	return v, nil
}

// Open connects a stand-alone validation node to the log over nc: it reads
// the existing stream (never creates or changes it), builds the lookup
// from the newest snapshot it can verify against the log (see
// internal/snapshot; unless WithoutSnapshot) or else from the start of the
// log, and follows it from there, verifying every event after the
// snapshot. It returns at once; Validate answers ErrNotReady until the
// node has caught up. While it reads a snapshot it raises the process's
// garbage collection target (debug.SetGCPercent) to 400, unless it is
// higher or collection is off, and puts back the one it found after.
func Open(ctx context.Context, nc *nats.Conn, logger *slog.Logger, opts ...Option) (*Validator, error) {
	// Checked in full here, before anything is started; New applies them
	// again.
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	storeOpts := []eventstore.Option{eventstore.WithStream(o.stream), eventstore.ReadOnly()}
	if len(o.trusted) > 0 {
		storeOpts = append(storeOpts, eventstore.WithTrustedKeys(o.trusted...))
	}
	if o.trustRoot != "" {
		storeOpts = append(storeOpts, eventstore.WithTrustRoot(o.trustRoot))
	}
	store, err := eventstore.New(ctx, nc, storeOpts...)
	if err != nil {
		return nil, err
	}
	lookup := projections.NewLookup(0)
	var start SnapshotStart
	var loaded *snapshot.Loaded
	if !o.noSnapshot {
		loaded, start = loadSnapshot(ctx, nc, store, logger)
	}
	if loaded != nil {
		lookup = loaded.Lookup
	}
	var known *knownState
	if o.stateDir != "" {
		if known, err = checkKnown(ctx, store, o.stateDir, logger, start.vouched()); err != nil {
			return nil, err
		}
	}
	projector, err := projections.New(store, logger, lookup)
	if err != nil {
		return nil, err
	}
	if loaded != nil {
		err = projector.StartFrom(ctx, loaded.Tree, loaded.Leaves)
	} else {
		err = projector.Start(ctx)
	}
	if err != nil {
		return nil, err
	}
	v, err := New(Config{Log: store, Projector: projector, Lookup: lookup, Conn: nc, Logger: logger, Options: opts, known: known,
		Snapshot: start})
	if err != nil {
		projector.Stop()
		return nil, err
	}
	v.owned = projector.Stop
	return v, nil
}

// Close stops the freshness check, and the subscription if Open started it.
func (v *Validator) Close() {
	v.cancel()
	v.wg.Wait()
	v.checkCheckpoints()
	v.save(true)
	if v.status != nil {
		v.conn.RemoveStatusListener(v.status)
	}
	if v.owned != nil {
		v.owned()
	}
}

// coarseTick is how often the coarse clock is set: a key's expiry takes
// effect up to this much late (never early).
const coarseTick = 10 * time.Millisecond

// tickClock sets the coarse clock until ctx ends, then turns it off, so
// that a closed node reads the precise clock again (a clock frozen at
// Close would keep a view that is no longer fed looking fresh).
func (v *Validator) tickClock(ctx context.Context) {
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	defer v.coarse.Store(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			v.coarse.Store(time.Now().UnixNano())
		}
	}
}

// validationNow is the time a validation decides at: the coarse clock, an
// atomic load instead of a reading of the system clock. Past half the
// staleness bound the precise clock decides instead, so a coarse clock
// that lags (its ticker held up) cannot keep a stale view answering.
func (v *Validator) validationNow() time.Time {
	ns := v.coarse.Load()
	if ns == 0 {
		return v.opts.now()
	}
	if at := v.confirmedAt.Load(); at == 0 || time.Duration(ns-at) > v.opts.maxStaleness/2 {
		return v.opts.now()
	}
	return time.Unix(0, ns)
}

// watchConnection notes connection changes the moment they happen: after
// a reconnect the view must be confirmed again before the node answers, so
// a revocation made while the node was away is never missed after it is
// back.
func (v *Validator) watchConnection(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case st, ok := <-v.status:
			if !ok {
				return
			}
			if st == nats.CONNECTED {
				v.reconnects.Add(1) // first, so no answer slips through before it
				v.connected.Store(true)
				v.logger.Info("reconnected to NATS: catching up before answering again")
				select {
				case v.confirm <- struct{}{}:
				default:
				}
				continue
			}
			v.connected.Store(false)
			v.logger.Warn("lost NATS connection: answering from the last view until the staleness bound",
				"status", st.String(), "max_staleness", v.opts.maxStaleness, "fail_open", v.opts.failOpen)
		}
	}
}

// watchFreshness confirms, again and again, that the view holds everything
// the log held a moment ago.
func (v *Validator) watchFreshness(ctx context.Context) {
	ticker := time.NewTicker(v.opts.interval)
	defer ticker.Stop()
	mismatched := v.projector.CheckpointMismatched()
	for {
		v.confirmNow(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-v.confirm:
		case <-mismatched:
			v.checkCheckpoints()
			mismatched = nil // refused for good: nothing more to hear
		}
	}
}

// checkCheckpoints takes in what the projector found checking signed
// checkpoints against the events it applied: a mismatch makes the node
// refuse the log for good; the newest match is remembered (saved to the
// state directory at once), so that a restarted node refuses a log that
// does not extend it. It reports whether the node may go on.
func (v *Validator) checkCheckpoints() bool {
	if v.refuseMismatch() {
		return false
	}
	c, ok := v.projector.Checkpoint()
	if !ok || (v.known.Checkpoint != nil && c.Checkpoint.Size <= v.known.Checkpoint.Size) {
		return true
	}
	v.known.Checkpoint = &knownlog.Checkpoint{Size: c.Checkpoint.Size, Root: c.Checkpoint.Root, Seq: c.Seq}
	v.logger.Debug("remembering a checkpoint verified against the events applied", "seq", c.Seq, "size", c.Checkpoint.Size)
	v.save(true)
	v.checkpointSize.Store(c.Checkpoint.Size) // once saved: what the metric shows survives a restart
	return true
}

// refuseMismatch makes the node refuse the log if the projector found
// a checkpoint that does not match the events it applied, and reports
// whether it did. It is safe for concurrent use and cheap when there is
// none: check calls it on every validation, so that no answer comes from
// such a view even before the freshness loop has heard of it.
func (v *Validator) refuseMismatch() bool {
	select {
	case <-v.projector.CheckpointMismatched():
	default:
		return false
	}
	err := v.projector.CheckpointMismatch()
	v.refuseLog(domain.Wrap(domain.Unavailable, err,
		"the events this node applied do not match a checkpoint the ledger signed: "+err.Error()))
	return true
}

// confirmNow reads the head of the log and waits until the lookup has
// applied it; then everything the log held when the head was read is in
// force.
func (v *Validator) confirmNow(ctx context.Context) {
	gen := v.reconnects.Load()
	asOf := v.opts.now()
	ctx, cancel := context.WithTimeout(ctx, max(v.opts.interval, time.Second))
	defer cancel()
	if v.refused.Load() != nil {
		return // for good
	}
	head, err := v.head(ctx)
	if err != nil {
		return
	}
	if err := v.projector.WaitFor(ctx, head); err != nil {
		return
	}
	if !v.checkCheckpoints() {
		return
	}
	v.confirmedAt.Store(asOf.UnixNano())
	v.confirmedGen.Store(gen)
	if v.known.Applied < head {
		v.known.Applied = head
		v.save(false)
	}
}

// infoLog is a log that describes its stream (an *eventstore.Store).
type infoLog interface {
	Info(ctx context.Context) (eventstore.Info, error)
}

// head reads the head of the log and, from the stream's description,
// whether it still extends the log the node has read: the same stream
// (not deleted and created again) ending no earlier than what the node
// applied. A log that does not makes the node refuse it for good.
func (v *Validator) head(ctx context.Context) (uint64, error) {
	il, ok := v.log.(infoLog)
	if !ok {
		return v.log.Head(ctx)
	}
	// What was applied before the stream was described: the stream can
	// only have grown since.
	applied := v.projector.Position()
	info, err := il.Info(ctx)
	if err != nil {
		return 0, err
	}
	if v.known.Created.IsZero() {
		v.known.Created = info.Created.UTC()
	}
	if err := knownlog.Running(v.known, info, applied); err != nil {
		v.refuseLog(err)
		return 0, err
	}
	if was := v.sealed.Swap(info.Sealed); info.Sealed && !was {
		v.logger.Error("the event log's stream is sealed: it takes no more events, so no command (a revocation included) can be stored; only the NATS operator role can seal a stream",
			"stream", v.opts.stream)
	}
	return info.LastSeq, nil
}

// refuseLog makes the node refuse the log for good, loudly.
func (v *Validator) refuseLog(err error) {
	e := domain.Wrap(domain.Unavailable, fmt.Errorf("%w: %v", ErrRollback, err), ErrRollback.Message+": "+domain.MessageOf(err))
	if v.refused.CompareAndSwap(nil, e) {
		v.logger.Error("refusing the event log, failing closed until an operator has checked it and restarted the node",
			"err", domain.MessageOf(err), "applied_seq", v.projector.Position())
		close(v.refusing) // after the log line: whoever waits on Refusing finds it written
	}
}

// Refused returns why the node refuses the log (an error matching
// ErrRollback), or nil.
func (v *Validator) Refused() error {
	if e := v.refused.Load(); e != nil {
		return e
	}
	return nil
}

// Refusing returns a channel closed once the node refuses the log (see
// Refused).
func (v *Validator) Refusing() <-chan struct{} { return v.refusing }

// Sealed reports whether the node last saw the log's stream sealed: no
// event can be appended any more.
func (v *Validator) Sealed() bool { return v.sealed.Load() }

// save writes what the node knows to its state directory, at most every
// few seconds unless now is set; never once it refuses the log.
func (v *Validator) save(now bool) {
	if v.state == nil || v.refused.Load() != nil || (!now && time.Since(v.savedAt) < stateSaveInterval) {
		return
	}
	v.savedAt = time.Now()
	if err := v.state.Save(v.known); err != nil {
		v.logger.Warn("cannot save the node's state", "err", err)
	}
}

// stateSaveInterval is how often a node records how far it applied the log.
const stateSaveInterval = 5 * time.Second

// checkKnown checks the log against what the state directory dir
// remembers of it and records the log's trust root on a first start.
// A node started from a snapshot passes what it vouches for (nil: none).
func checkKnown(ctx context.Context, log knownlog.Log, dir string, logger *slog.Logger, vouched *knownlog.Vouched) (*knownState, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f, err := knownlog.Open(dir, log.StreamName())
	if err != nil {
		return nil, domain.Wrap(domain.Invalid, err, "validator: "+err.Error())
	}
	known, ok, err := f.Load()
	if err != nil {
		return nil, domain.Wrap(domain.Invalid, err, "validator: "+err.Error())
	}
	rec, err := knownlog.CheckVouched(ctx, log, known, ok, vouched)
	if err != nil {
		return nil, fmt.Errorf("validator: %w (state %s: remove it only once you know why)", err, f.Path())
	}
	if !ok {
		logger.Warn("first start on this log: recorded its trust root; from now on a log with another genesis is refused",
			"trust_root", rec.TrustRoot, "stream", rec.Stream, "state", f.Path())
	}
	if err := f.Save(rec); err != nil {
		return nil, domain.Wrap(domain.Unavailable, err, "validator: "+err.Error())
	}
	return &knownState{file: f, record: rec}, nil
}

// check returns nil when the node may answer from its view.
func (v *Validator) check() error { return v.checkAt(v.opts.now()) }

// checkAt is check at now, as the node's clock reads it.
func (v *Validator) checkAt(now time.Time) error {
	if e := v.refused.Load(); e != nil {
		return e // even failing open: this is not a stale view but a false one
	}
	if v.refuseMismatch() {
		return v.refused.Load()
	}
	if !v.projector.Ready() || v.confirmedAt.Load() == 0 {
		return ErrNotReady
	}
	if v.opts.failOpen {
		return nil
	}
	if v.confirmedGen.Load() != v.reconnects.Load() {
		return ErrNotReady
	}
	if v.stalenessAt(now) > v.opts.maxStaleness {
		return ErrStale
	}
	return nil
}

// staleness is how long ago the view was last known complete.
func (v *Validator) staleness() time.Duration { return v.stalenessAt(v.opts.now()) }

// stalenessAt is staleness at now.
func (v *Validator) stalenessAt(now time.Time) time.Duration {
	at := v.confirmedAt.Load()
	if at == 0 {
		return time.Duration(1<<63 - 1)
	}
	return now.Sub(time.Unix(0, at))
}

// Validate checks an API key and its secret, both as the formatted strings
// ("ak_...", "sk_..."). It returns the key's identity, ErrUnauthorized for
// any bad credential, an error matching ErrRateLimited (kind RateLimited,
// with a RetryAfter) for a key refused after too many failures, or
// ErrNotReady / ErrStale (kind Unavailable) when the node cannot vouch for
// its view.
func (v *Validator) Validate(ctx context.Context, apiKey, secret string) (Identity, error) {
	// Each is parsed once, here: the lookup takes the key's id and the
	// secret's hash. The secret's alphabet and checksum are checked only
	// if it matches no key (see domain.HashSecretForm): a match proves it
	// is the very secret the ledger generated. A malformed secret is then
	// refused as malformed, before any failure is counted, as before the
	// lookup; unknown keys and wrong secrets both pay for that check.
	h, hashed := domain.HashSecretForm(secret)
	keyID, ok := domain.ParseAPIKeyID(apiKey)
	if !hashed || !ok {
		v.metrics.outcome(domain.ReasonMalformed)
		return Identity{}, ErrUnauthorized
	}
	id, _, err := v.validate(apiKey, keyID, h, secret)
	if err != nil {
		return Identity{}, err
	}
	if _, err := v.admit(ctx, &id, 1); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// validateSecret is validate on credentials parsed by
// domain.ParseCredentials.
func (v *Validator) validateSecret(apiKey string, secret domain.Secret) (Identity, domain.Reason, error) {
	keyID, _ := domain.ParseAPIKeyID(apiKey) // checked: a malformed key finds nothing
	h := secret.Hash()
	if secret.IsZero() {
		h = domain.Hash{} // matches nothing
	}
	return v.validate(apiKey, keyID, h, "")
}

// validate is Validate on parsed credentials (the key's id, the secret's
// hash), with the reason, before the key's limits: a valid key's request
// is counted (metrics, usage) by admit, which charges it. The clock is
// read once (see validationNow), for the freshness check and the key's
// expiry alike. unchecked is the secret when only its form was checked
// (domain.HashSecretForm), "" when it was parsed in full: a refused one is
// then checked, and refused as malformed if it is.
func (v *Validator) validate(apiKey string, keyID [16]byte, secretHash domain.Hash, unchecked string) (Identity, domain.Reason, error) {
	now := v.validationNow()
	if err := v.checkAt(now); err != nil {
		if unchecked != "" && !domain.ValidSecret(unchecked) {
			v.metrics.outcome(domain.ReasonMalformed)
			return Identity{}, domain.ReasonMalformed, ErrUnauthorized
		}
		reason := unavailableReason(err)
		v.metrics.outcome(reason)
		return Identity{}, reason, err
	}
	res := v.lookup.CheckParsed(keyID, secretHash, now)
	if !res.OK {
		if unchecked != "" && !domain.ValidSecret(unchecked) {
			v.metrics.outcome(domain.ReasonMalformed)
			return Identity{}, domain.ReasonMalformed, ErrUnauthorized
		}
		reason, err := v.failed(apiKey, res.Reason, now)
		v.metrics.outcome(reason)
		if res.Reason != domain.ReasonUnknownKey {
			v.opts.usage.Record(apiKey, reason, now)
		}
		return Identity{}, reason, err
	}
	return identityOf(apiKey, res), res.Reason, nil
}

// failed counts a failed validation of apiKey and returns the reason and
// error to answer: ErrUnauthorized, or, once the key's failures are over
// the limit, ReasonRateLimited and an error matching ErrRateLimited with
// the time left. Unknown key ids count as much as known ones, so a 429
// says nothing about whether a key exists.
func (v *Validator) failed(apiKey string, reason domain.Reason, now time.Time) (domain.Reason, error) {
	if wait := v.failures.Blocked(apiKey, now); wait > 0 {
		return domain.ReasonRateLimited, domain.RateLimitedFor(wait, ErrRateLimited.Message)
	}
	v.failures.Fail(apiKey, now)
	return reason, ErrUnauthorized
}

// unavailableReason is the reason for an error of check.
func unavailableReason(err error) domain.Reason {
	if errors.Is(err, ErrStale) {
		return domain.ReasonStale
	}
	if errors.Is(err, ErrRollback) {
		return domain.ReasonRollback
	}
	return domain.ReasonNotReady
}

// Status describes a node for /readyz and operators.
type Status struct {
	// Ready is true when Validate answers from the view.
	Ready bool `json:"ready"`
	// AppliedSeq is the stream sequence applied: a revocation at sequence N
	// is in force on this node once AppliedSeq >= N.
	AppliedSeq uint64 `json:"applied_seq"`
	// StartSeq is the head of the log when the node started.
	StartSeq uint64 `json:"start_seq"`
	// Keys is the number of keys in the lookup.
	Keys int `json:"keys"`
	// StalenessSeconds is how long ago the view was last confirmed complete.
	StalenessSeconds float64 `json:"staleness_seconds"`
	// Connected reports the NATS connection.
	Connected bool `json:"connected"`
	// Reason says why the node is not ready ("" when it is).
	Reason string `json:"reason,omitempty"`
	// Sealed reports a sealed stream: no event can be stored any more.
	Sealed bool `json:"sealed,omitempty"`
}

// Status returns the node's status.
func (v *Validator) Status() Status {
	ps := v.projector.Status()
	st := Status{AppliedSeq: ps.Applied, StartSeq: ps.Target, Keys: v.lookup.Len(),
		Connected: v.connected.Load(), StalenessSeconds: v.staleness().Seconds(), Sealed: v.sealed.Load()}
	if v.confirmedAt.Load() == 0 {
		st.StalenessSeconds = -1
	}
	if err := v.check(); err != nil {
		st.Reason = domain.MessageOf(err)
	} else {
		st.Ready = true
	}
	return st
}

// WaitFor blocks until the node has applied stream sequence seq.
// Errors: Unavailable when ctx ends first.
func (v *Validator) WaitFor(ctx context.Context, seq uint64) error {
	return v.projector.WaitFor(ctx, seq)
}
