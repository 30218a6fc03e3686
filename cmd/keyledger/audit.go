package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/audit"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/knownlog"
	"github.com/keyledger/keyledger/internal/natsauth"
)

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }

func (e exitError) Unwrap() error { return e.err }

// logFlags are how audit and admin commands reach the log.
type logFlags struct {
	natsURL      string
	stream       string
	ledgerKeys   string
	trustRoot    string
	startTimeout time.Duration
	client       app.NATSClientConfig
	// defaultCreds, if set, names the credentials file used when
	// --nats-creds is not given and the file exists: the one a local
	// serve wrote for the command's role.
	defaultCreds func() string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server or cluster holding the log (comma-separated URLs); the default reaches the embedded server of a local serve")
	fs.StringVar(&l.stream, "stream", eventstore.DefaultStream, "JetStream stream name")
	fs.StringVar(&l.ledgerKeys, "ledger-key", "", "pin the trust root: accept only a log whose genesis one of these ledger public `keys` (comma-separated) signed")
	fs.StringVar(&l.trustRoot, "trust-root", "", "pin the log's genesis: its `fingerprint` (sha256:...), or a file holding it, as keyledger audit trust-root prints it")
	fs.DurationVar(&l.startTimeout, "start-timeout", app.DefaultStartTimeout, "how long to retry the first connection to NATS")
	natsClientFlags(fs, &l.client)
	fs.Lookup("nats-creds").Usage += " (default data/creds/auditor.creds, if it exists: what a local serve wrote)"
}

// connect connects to NATS as name, retrying within --start-timeout;
// failing to is exit code 3.
func (l *logFlags) connect(ctx context.Context, name string) (*nats.Conn, error) {
	if l.client.Creds == "" {
		def := filepath.Join("data", "creds", string(natsauth.Auditor)+".creds")
		if l.defaultCreds != nil {
			def = l.defaultCreds()
		}
		if _, err := os.Stat(def); err == nil {
			l.client.Creds = def
		}
	}
	opts, err := l.client.Options()
	if err != nil {
		return nil, asUsageError(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := app.ConnectNATS(ctx, l.natsURL, l.startTimeout, logger, append(opts, nats.Name(name))...)
	if err != nil {
		return nil, exitError{3, err}
	}
	return nc, nil
}

// open connects and opens the log read-only; close releases it.
func (l *logFlags) open(ctx context.Context, name string) (*eventstore.Store, func(), error) {
	nc, err := l.connect(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	storeOpts := []eventstore.Option{eventstore.WithStream(l.stream), eventstore.ReadOnly()}
	if l.ledgerKeys != "" {
		keys, err := parsePublicKeys(l.ledgerKeys)
		if err != nil {
			nc.Close()
			return nil, nil, usageError{fmt.Errorf("--ledger-key: %w", err)}
		}
		storeOpts = append(storeOpts, eventstore.WithTrustedKeys(keys...))
	}
	if l.trustRoot != "" {
		fp, err := app.ReadTrustRoot(l.trustRoot)
		if err != nil {
			nc.Close()
			return nil, nil, usageError{fmt.Errorf("--trust-root: %w", err)}
		}
		storeOpts = append(storeOpts, eventstore.WithTrustRoot(fp))
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	store, err := eventstore.New(sctx, nc, storeOpts...)
	if err != nil {
		nc.Close()
		if errors.Is(err, eventstore.ErrTrustRootMismatch) {
			return nil, nil, exitError{1, fmt.Errorf("open the log: %w", err)}
		}
		return nil, nil, exitError{3, fmt.Errorf("open the log: %w", err)}
	}
	return store, nc.Close, nil
}

func parsePublicKeys(list string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, part := range strings.Split(list, ",") {
		k, err := eventstore.DecodePublicKey(part)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// isTerminal reports whether w is a terminal, for progress lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func progressTo(stderr io.Writer) func(seq, last uint64) {
	if !isTerminal(stderr) {
		return nil
	}
	return func(seq, last uint64) {
		fmt.Fprintf(stderr, "\r%d / %d events", seq, last)
		if seq >= last {
			fmt.Fprintln(stderr)
		}
	}
}

func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit verify")
	var lf logFlags
	lf.register(fs)
	expectFlag := fs.String("expect", "", "a checkpoint kept from an earlier run, as size:root-hex; the log must still match it")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	stateDir := fs.String("state-dir", defaultAuditState(), "`directory` remembering the log verified last time (trust root, stream, newest checkpoint): a log that does not extend it fails; \"\" to remember nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var expect *audit.Expectation
	if *expectFlag != "" {
		size, root, ok := strings.Cut(*expectFlag, ":")
		n, err := strconv.ParseUint(size, 10, 64)
		var h domain.Hash
		if !ok || err != nil || h.UnmarshalText([]byte(root)) != nil {
			return usageError{fmt.Errorf("--expect %q: want size:root-hex", *expectFlag)}
		}
		expect = &audit.Expectation{Size: n, Root: h}
	}
	store, closeFn, err := lf.open(ctx, "keyledger-audit")
	if err != nil {
		return err
	}
	defer closeFn()
	var state *knownlog.File
	var known knownlog.Record
	if *stateDir == "" {
		fmt.Fprintln(stderr, "note: no --state-dir: this run remembers nothing, so a re-created or rolled-back log is caught only by --expect")
	} else {
		var rec knownlog.Record
		if state, rec, err = checkAuditState(ctx, store, *stateDir, stderr); err != nil {
			return err
		}
		known = rec
		if expect == nil && known.Checkpoint != nil {
			expect = &audit.Expectation{Size: known.Checkpoint.Size, Root: known.Checkpoint.Root}
		}
	}
	report, err := audit.Verify(ctx, store, expect, progressTo(stderr))
	if err != nil {
		return exitError{3, err}
	}
	if state != nil && report.OK() {
		known.Applied = max(known.Applied, report.LastSeq)
		if err := state.Save(known); err != nil {
			return exitError{3, err}
		}
	}
	cps, _ := store.Checkpoints(ctx)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(report)
	} else {
		fmt.Fprintf(stdout, "messages: %d (last sequence %d), aggregates: %d, checkpoints: %d, verified by checkpoint up to %d, %.2fs\n",
			report.Messages, report.LastSeq, report.Aggregates, report.Checkpoints, report.Verified, report.Duration)
		fmt.Fprintf(stdout, "admin requests verified: %d\n", report.AdminRequests)
		if n := len(cps); n > 0 {
			c := cps[n-1].Data.(domain.LogCheckpoint)
			fmt.Fprintf(stdout, "last checkpoint: --expect %d:%s\n", c.Size, hex.EncodeToString(c.Root[:]))
		}
		for _, p := range report.Problems {
			fmt.Fprintln(stdout, "PROBLEM", p)
		}
		if report.OK() {
			fmt.Fprintln(stdout, "OK: the log is intact")
		}
	}
	if !report.OK() {
		return exitError{1, fmt.Errorf("the log fails verification: %s", report.Problems[0])}
	}
	return nil
}

func auditReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit replay")
	var lf logFlags
	lf.register(fs)
	var f audit.Filter
	var since, until, format string
	var follow bool
	fs.StringVar(&f.Key, "key", "", "only this API key's events")
	fs.StringVar(&f.User, "user", "", "only this user's events and those of the keys the user owns")
	fs.StringVar(&f.Team, "team", "", "only this team's events and those of the keys the team owns")
	fs.StringVar(&f.Type, "type", "", "only events of this type (e.g. key.revoked)")
	fs.StringVar(&since, "since", "", "only events at or after this RFC 3339 time")
	fs.StringVar(&until, "until", "", "only events before this RFC 3339 time")
	fs.Uint64Var(&f.FromSeq, "from-seq", 0, "start at this stream sequence")
	fs.Uint64Var(&f.ToSeq, "to-seq", 0, "stop after this stream sequence")
	fs.BoolVar(&f.Forged, "include-forged", false, "also show messages the ledger did not write, marked as forged")
	fs.BoolVar(&follow, "follow", false, "keep printing new events as they are stored")
	fs.StringVar(&format, "format", "jsonl", "jsonl or table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var err error
	if f.Since, err = parseTimeFlag("--since", since); err != nil {
		return err
	}
	if f.Until, err = parseTimeFlag("--until", until); err != nil {
		return err
	}
	if format != "jsonl" && format != "table" {
		return usageError{fmt.Errorf("--format %q: want jsonl or table", format)}
	}
	store, closeFn, err := lf.open(ctx, "keyledger-audit")
	if err != nil {
		return err
	}
	defer closeFn()
	var emit func(audit.Record) error
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	if format == "table" {
		fmt.Fprintln(tw, "SEQ\tTIME\tTYPE\tAGGREGATE\tACTOR\tDATA")
		emit = func(r audit.Record) error {
			data := string(r.Data)
			if r.Forged != "" {
				data = "FORGED: " + r.Forged
			}
			_, err := fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Format(time.RFC3339), r.Type, r.Aggregate, r.Actor, data)
			if follow {
				tw.Flush()
			}
			return err
		}
	} else {
		enc := json.NewEncoder(stdout)
		emit = func(r audit.Record) error { return enc.Encode(r) }
	}
	err = audit.Replay(ctx, store, f, follow, emit, progressTo(stderr))
	tw.Flush()
	if err != nil {
		return exitError{3, err}
	}
	return nil
}

func parseTimeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("%s %q: want an RFC 3339 time like 2026-11-01T00:00:00Z", name, v)}
	}
	return t, nil
}

func auditState(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit state")
	var lf logFlags
	lf.register(fs)
	key := fs.String("key", "", "the API key")
	user := fs.String("user", "", "the user id")
	team := fs.String("team", "", "the team id: its members, roles and service accounts")
	atFlag := fs.String("at", "", "RFC 3339 time (default: now)")
	atSeq := fs.Uint64("at-seq", 0, "stream sequence instead of a time")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if n := btoi(*key != "") + btoi(*user != "") + btoi(*team != ""); n != 1 {
		return usageError{errors.New("give exactly one of --key, --user and --team")}
	}
	at, err := parseTimeFlag("--at", *atFlag)
	if err != nil {
		return err
	}
	if !at.IsZero() && *atSeq > 0 {
		return usageError{errors.New("--at and --at-seq exclude each other")}
	}
	store, closeFn, err := lf.open(ctx, "keyledger-audit")
	if err != nil {
		return err
	}
	defer closeFn()
	when := at
	switch {
	case *atSeq > 0:
		// A status as of sequence N is as of the time N was stored.
		if when, err = store.MessageTime(ctx, *atSeq); err != nil {
			return stateError(err)
		}
	case when.IsZero():
		when = time.Now().UTC()
	}
	var out map[string]any
	var events []domain.Event
	if *key != "" {
		k, evs, err := audit.KeyAt(ctx, store, *key, at, *atSeq)
		if err != nil {
			return stateError(err)
		}
		events = evs
		out = map[string]any{"api_key": k.APIKey, "user_id": k.UserID, "name": k.Name,
			"status": k.StatusAt(when), "created_at": k.CreatedAt, "expires_at": optTime(k.ExpiresAt),
			"secret_regenerated_at": optTime(k.SecretRegeneratedAt), "revoked_at": optTime(k.RevokedAt),
			"version": k.Version, "scopes": k.Scopes.List(), "metadata": json.RawMessage("{}"),
			"disabled_at": optTime(k.DisabledAt),
			// Whether the secret replaced by the last regeneration still
			// validated at that instant (the key itself permitting).
			"previous_secret_in_grace": k.PreviousInGrace(when), "previous_secret_expires_at": optTime(k.PreviousExpiresAt)}
		if k.Metadata != "" {
			out["metadata"] = json.RawMessage(k.Metadata)
		}
		out["owner_type"], out["owner_id"] = "user", k.UserID
		if k.TeamID != "" {
			out["owner_type"], out["owner_id"], out["created_by"] = "team", k.TeamID, k.UserID
			if k.ServiceAccount != "" {
				out["service_account"] = k.ServiceAccount
			}
		}
		if out["rate_limit"], out["credits"], err = limitsState(k, when); err != nil {
			return err
		}
	} else if *team != "" {
		t, evs, err := audit.TeamAt(ctx, store, *team, at, *atSeq)
		if err != nil {
			return stateError(err)
		}
		events = evs
		out = teamState(t)
	} else {
		u, evs, err := audit.UserAt(ctx, store, *user, at, *atSeq)
		if err != nil {
			return stateError(err)
		}
		events = evs
		// Email is set only for users registered before personal data was
		// sealed: an auditor holds no data keys.
		out = map[string]any{"id": u.ID, "email": u.Email, "role": u.Role, "disabled": u.Disabled, "erased": u.Erased,
			"created_at": u.CreatedAt, "version": u.Version}
	}
	if *atSeq > 0 {
		out["as_of_seq"] = *atSeq
	} else {
		out["as_of"] = when
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, k := range []string{"api_key", "id", "user_id", "owner_type", "owner_id", "created_by", "service_account", "email", "role", "disabled", "erased", "name", "status", "members", "service_accounts", "scopes", "metadata", "created_at", "secret_regenerated_at", "revoked_at", "disabled_at", "expires_at", "previous_secret_expires_at", "previous_secret_in_grace", "rate_limit", "credits", "version", "as_of", "as_of_seq"} {
		v, ok := out[k]
		switch t := v.(type) {
		case time.Time:
			v = t.Format(time.RFC3339Nano)
		case []string:
			v = strings.Join(t, " ")
		case json.RawMessage:
			v = string(t)
		}
		if ok && v != nil {
			fmt.Fprintf(tw, "%s:\t%v\n", k, v)
		}
	}
	fmt.Fprintln(tw, "history:")
	for _, e := range events {
		fmt.Fprintf(tw, "  %d\t%s\t%s\tby %s\n", e.Sequence, e.Time.Format(time.RFC3339), e.Type, e.Actor)
	}
	return tw.Flush()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// teamState is a team as audit state shows it: members by user id with
// their role (no emails: an auditor holds no data keys), and service
// accounts with their status.
func teamState(t domain.Team) map[string]any {
	members := map[string]string{}
	for id, m := range t.Members {
		members[id] = string(m.Role)
	}
	accounts := map[string]string{}
	for id, sa := range t.ServiceAccounts {
		switch {
		case sa.Deleted:
			accounts[id] = "deleted"
		case sa.Disabled:
			accounts[id] = "disabled"
		default:
			accounts[id] = "active"
		}
	}
	return map[string]any{"id": t.ID, "name": t.Name, "disabled": t.Disabled, "created_at": t.CreatedAt,
		"members": members, "service_accounts": accounts, "version": t.Version}
}

// limitsState is a key's rate limit and credit policy at when, as audit
// state shows them (JSON; nil: none): the credits granted by then (none
// spent: what was spent is not in the log), what set them (the epoch,
// the key's version that set them, since), the top-ups since, the refill
// and when it is next due.
func limitsState(k domain.Key, when time.Time) (rate, credits any, err error) {
	if k.RateLimit != nil {
		b, err := json.Marshal(k.RateLimit)
		if err != nil {
			return nil, nil, err
		}
		rate = json.RawMessage(b)
	}
	if c := k.Credits; c != nil {
		b, err := json.Marshal(struct {
			Granted      uint64         `json:"granted"`
			Initial      uint64         `json:"initial"`
			Added        uint64         `json:"added"`
			Epoch        uint64         `json:"epoch"`
			Since        time.Time      `json:"since"`
			Refill       *domain.Refill `json:"refill"`
			NextRefillAt any            `json:"next_refill_at"`
		}{c.Granted(when), c.Initial, c.Added, c.Epoch, c.Since, c.Refill, optTime(c.NextRefill(when))})
		if err != nil {
			return nil, nil, err
		}
		credits = json.RawMessage(b)
	}
	return rate, credits, nil
}

func stateError(err error) error {
	if domain.KindOf(err) == domain.NotFound {
		return exitError{1, err}
	}
	return exitError{3, err}
}

func optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// defaultAuditState is audit verify's default --state-dir: data/audit
// beside a local serve's data directory, if there is one; else none.
func defaultAuditState() string {
	if fi, err := os.Stat("data"); err == nil && fi.IsDir() {
		return filepath.Join("data", "audit")
	}
	return ""
}

// checkAuditState checks the log against what dir remembers of it (on a
// first run: records its trust root) and returns the state file and the
// record to save once the log verified clean. A log that does not extend
// the remembered one is exit code 1, naming the problem.
func checkAuditState(ctx context.Context, store *eventstore.Store, dir string, stderr io.Writer) (*knownlog.File, knownlog.Record, error) {
	f, err := knownlog.Open(dir, store.StreamName())
	if err != nil {
		return nil, knownlog.Record{}, exitError{3, err}
	}
	known, ok, err := f.Load()
	if err != nil {
		return nil, knownlog.Record{}, exitError{3, err}
	}
	rec, err := knownlog.Check(ctx, store, known, ok)
	if err != nil {
		for _, sentinel := range []error{knownlog.ErrTrustRootChanged, knownlog.ErrRecreated, knownlog.ErrRolledBack, knownlog.ErrInconsistent} {
			if errors.Is(err, sentinel) {
				return nil, knownlog.Record{}, exitError{1, fmt.Errorf("%s (remembered in %s: remove it only once you know why)", domain.MessageOf(err), f.Path())}
			}
		}
		return nil, knownlog.Record{}, exitError{3, err}
	}
	if !ok {
		fmt.Fprintf(stderr, "first run on this log: remembering its trust root %s in %s\n", rec.TrustRoot, f.Path())
	}
	return f, rec, nil
}

// auditTrustRoot prints the fingerprint of the log's genesis.
func auditTrustRoot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit trust-root")
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	store, closeFn, err := lf.open(ctx, "keyledger-audit")
	if err != nil {
		return err
	}
	defer closeFn()
	root, seq := store.TrustRoot()
	if root == "" {
		return exitError{1, errors.New("the log has no genesis")}
	}
	fmt.Fprintln(stdout, root)
	fmt.Fprintf(stderr, "the genesis of stream %s at sequence %d; pin it with --trust-root\n", store.StreamName(), seq)
	return nil
}

func auditPubkey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit pubkey")
	var lf logFlags
	lf.register(fs)
	keyFile := fs.String("signing-key", filepath.Join("data", "ledger-ed25519.pem"), "the ledger's signing key file")
	var fromStream cmdLineBool
	fs.Var(&fromStream, "from-stream", "print the keys the log's trust events trust now instead (trusts the log's genesis, whoever wrote it; command line only, so that a stray KEYLEDGER_FROM_STREAM cannot change the key you pin)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fromStream {
		store, closeFn, err := lf.open(ctx, "keyledger-audit")
		if err != nil {
			return err
		}
		defer closeFn()
		for _, k := range store.TrustedKeys() {
			fmt.Fprintln(stdout, eventstore.EncodePublicKey(k))
		}
		return nil
	}
	if _, err := os.Stat(*keyFile); err != nil {
		return exitError{3, fmt.Errorf("read the signing key: %w (use --signing-key or --from-stream)", err)}
	}
	key, err := auth.LoadOrCreateSigningKey(*keyFile)
	if err != nil {
		return exitError{3, err}
	}
	fmt.Fprintln(stdout, eventstore.EncodePublicKey(key.Public().(ed25519.PublicKey)))
	return nil
}
