package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/audit"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// startCheckpointedServer is startServer with a checkpoint every 50ms, so
// that audit verify has signed Merkle roots to check.
func startCheckpointedServer(t *testing.T, dir string) *apptest.Server {
	t.Helper()
	logs := &apptest.SyncBuffer{}
	s := &app.Server{
		Config: app.ServeConfig{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: 50 * time.Millisecond},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if err := s.Open(context.Background()); err != nil {
		s.Close(context.Background())
		t.Fatalf("Open: %v", err)
	}
	ts := &apptest.Server{Server: s, Base: "http://" + s.HTTPAddr(), Logs: logs}
	natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
	return ts
}

// readLog opens ts's log read-only, as an auditor would.
func readLog(t *testing.T, ts *apptest.Server) *eventstore.Store {
	t.Helper()
	nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(ts.CredsFile(natsauth.Operator)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	store, err := eventstore.New(context.Background(), nc, eventstore.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// awaitCheckpointed waits until the newest message of the log is a signed
// checkpoint of everything before it: the checkpoint writer then has
// nothing left to write and the log stays as it is.
func awaitCheckpointed(t *testing.T, store *eventstore.Store) domain.LogCheckpoint {
	t.Helper()
	var last domain.LogCheckpoint
	natstest.Eventually(t, 10*time.Second, func() bool {
		head, err := store.Head(context.Background())
		if err != nil {
			return false
		}
		cps, err := store.Checkpoints(context.Background())
		if err != nil || len(cps) == 0 {
			return false
		}
		c := cps[len(cps)-1]
		last = c.Data.(domain.LogCheckpoint)
		return c.Sequence == head && last.Size == head-1
	}, "a checkpoint of the whole log")
	return last
}

// cliRunWithin is cliRun bounded by timeout, for commands that must not
// block.
func cliRunWithin(t *testing.T, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func seqs(recs []audit.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func where(recs []audit.Record, keep func(audit.Record) bool) []uint64 {
	var out []uint64
	for _, r := range recs {
		if keep(r) {
			out = append(out, r.Seq)
		}
	}
	return out
}

// stateJSON runs `audit state args... --json` and decodes it.
func stateJSON(t *testing.T, ts *apptest.Server, args ...string) map[string]any {
	t.Helper()
	out := mustAudit(t, ts, append(append([]string{"state"}, args...), "--json")...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("state %v: not JSON: %s", args, out)
	}
	return m
}

func timeField(t *testing.T, m map[string]any, name string) time.Time {
	t.Helper()
	s, _ := m[name].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("got %s %v, want a time", name, m[name])
	}
	return at
}

var lastCheckpointLine = regexp.MustCompile(`last checkpoint: --expect (\d+:[0-9a-f]{64})\n`)

func TestAudit_CLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startCheckpointedServer(t, dir)
	defer ts.Stop(t)
	store := readLog(t, ts)

	aliceID := ts.Register(t, "alice@example.com", apptest.Password)
	aliceToken := ts.Login(t, "alice@example.com", apptest.Password)
	k1 := ts.CreateKey(t, aliceToken, `{"name":"ci"}`)
	for range 2 {
		apptest.WantStatus(t, ts.Do(t, "POST", "/api-keys/"+k1.Key+"/regenerate", "", apptest.Bearer(aliceToken)...), http.StatusOK)
	}
	k2 := ts.CreateKey(t, aliceToken, `{"name":"deploy"}`)
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+k1.Key, "", apptest.Bearer(aliceToken)...), http.StatusNoContent)
	expiry := time.Now().Add(time.Second).UTC()
	k3 := ts.CreateKey(t, aliceToken, `{"name":"short","expires_at":"`+expiry.Format(time.RFC3339Nano)+`"}`)
	bobID := ts.Register(t, "bob@example.com", apptest.Password)
	kb := ts.CreateKey(t, ts.Login(t, "bob@example.com", apptest.Password), "")
	mustAdmin(t, ts, "users", "disable", bobID, "--reason", "audit test")
	natstest.Eventually(t, 5*time.Second, func() bool { return time.Now().After(expiry) }, "k3 expired")
	awaitCheckpointed(t, store)

	full := replay(t, ts)
	ofAggregate := func(id string) []audit.Record {
		var out []audit.Record
		for _, r := range full {
			if r.Aggregate == id {
				out = append(out, r)
			}
		}
		return out
	}
	k1Events := ofAggregate(k1.Key)
	if len(k1Events) != 4 {
		t.Fatalf("got %d events of k1 in the replay, want 4 (created, 2 regenerations, revoked)", len(k1Events))
	}
	created, regen1, regen2, revoked := k1Events[0], k1Events[1], k1Events[2], k1Events[3]
	aliceKeys := map[string]bool{k1.Key: true, k2.Key: true, k3.Key: true}
	ofAlice := func(r audit.Record) bool { return r.Aggregate == aliceID || aliceKeys[r.Aggregate] }

	t.Run("Replay", func(t *testing.T) {
		head, err := store.Head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(full) != int(head) || full[0].Seq != 1 {
			t.Errorf("got %d records from %d, want all %d messages of an untouched log", len(full), full[0].Seq, head)
		}
		for i := 1; i < len(full); i++ {
			if full[i].Seq <= full[i-1].Seq {
				t.Fatalf("record %d: seq %d after %d, want strictly increasing", i, full[i].Seq, full[i-1].Seq)
			}
		}
		var types []string
		for _, r := range k1Events {
			types = append(types, r.Type)
		}
		if want := []string{"key.created", "key.secret_regenerated", "key.secret_regenerated", "key.revoked"}; !slices.Equal(types, want) {
			t.Errorf("got k1 history %v, want %v", types, want)
		}
		if created.Actor != aliceID || created.Version != 1 || revoked.Version != 4 || created.Time.IsZero() {
			t.Errorf("got created %+v and revoked %+v, want versions 1 and 4 by alice with times", created, revoked)
		}
		if len(where(full, func(r audit.Record) bool { return r.Type == "log.checkpoint" })) == 0 {
			t.Error("got no log.checkpoint records, want the writer's checkpoints")
		}
		out := mustAudit(t, ts, "replay")
		for _, secret := range []string{k1.Secret, k2.Secret, k3.Secret, apptest.Password} {
			if strings.Contains(out, secret) {
				t.Error("a secret or password appears in the replay")
			}
		}
	})

	t.Run("Filters", func(t *testing.T) {
		mid := revoked.Time.Format(time.RFC3339Nano)
		for _, c := range []struct {
			name string
			args []string
			want []uint64
		}{
			{"Key", []string{"--key", k1.Key}, seqs(k1Events)},
			{"User", []string{"--user", aliceID}, where(full, ofAlice)},
			{"OtherUser", []string{"--user", bobID}, where(full, func(r audit.Record) bool { return r.Aggregate == bobID || r.Aggregate == kb.Key })},
			{"Type", []string{"--type", "key.secret_regenerated"}, []uint64{regen1.Seq, regen2.Seq}},
			{"TypeAndUser", []string{"--type", "key.created", "--user", aliceID},
				where(full, func(r audit.Record) bool { return r.Type == "key.created" && ofAlice(r) })},
			{"Since", []string{"--since", mid}, where(full, func(r audit.Record) bool { return !r.Time.Before(revoked.Time) })},
			{"Until", []string{"--until", mid}, where(full, func(r audit.Record) bool { return r.Time.Before(revoked.Time) })},
			{"SinceUntil", []string{"--since", created.Time.Format(time.RFC3339Nano), "--until", mid},
				where(full, func(r audit.Record) bool { return !r.Time.Before(created.Time) && r.Time.Before(revoked.Time) })},
			{"FromSeq", []string{"--from-seq", fmt.Sprint(regen1.Seq)}, where(full, func(r audit.Record) bool { return r.Seq >= regen1.Seq })},
			{"ToSeq", []string{"--to-seq", fmt.Sprint(regen1.Seq)}, where(full, func(r audit.Record) bool { return r.Seq <= regen1.Seq })},
			{"FromToSeq", []string{"--from-seq", fmt.Sprint(created.Seq), "--to-seq", fmt.Sprint(regen2.Seq)},
				where(full, func(r audit.Record) bool { return r.Seq >= created.Seq && r.Seq <= regen2.Seq })},
			{"KeyToSeq", []string{"--key", k1.Key, "--to-seq", fmt.Sprint(regen1.Seq)}, []uint64{created.Seq, regen1.Seq}},
			{"FromSeqPastHead", []string{"--from-seq", fmt.Sprint(full[len(full)-1].Seq + 1)}, nil},
			{"UnknownKey", []string{"--key", "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"}, nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				if got := seqs(replay(t, ts, c.args...)); !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
					t.Errorf("got %v, want %v", got, c.want)
				}
			})
		}
	})

	// A user's keys created before --from-seq are still the user's: their
	// later events belong in the replay.
	t.Run("UserFromSeq", func(t *testing.T) {
		want := where(full, func(r audit.Record) bool { return ofAlice(r) && r.Seq >= regen1.Seq })
		if got := seqs(replay(t, ts, "--user", aliceID, "--from-seq", fmt.Sprint(regen1.Seq))); !slices.Equal(got, want) {
			t.Errorf("got %v, want %v (k1's regenerations and revocation included)", got, want)
		}
	})

	// A key whose events all lie before --from-seq has nothing to replay:
	// the command must say so at once, not wait for an event that may
	// never come.
	t.Run("KeyFromSeqPastItsEvents", func(t *testing.T) {
		args := append([]string{"audit", "replay", "--key", k1.Key, "--from-seq", fmt.Sprint(revoked.Seq + 1)}, logArgs(ts)...)
		code, stdout, stderr := cliRunWithin(t, 2*time.Second, args...)
		wantExit(t, args, code, stdout, stderr, 0)
		if stdout != "" {
			t.Errorf("got %q, want no records", stdout)
		}
	})

	t.Run("Table", func(t *testing.T) {
		out := mustAudit(t, ts, "replay", "--format", "table")
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if f := strings.Fields(lines[0]); !slices.Equal(f, []string{"SEQ", "TIME", "TYPE", "AGGREGATE", "ACTOR", "DATA"}) {
			t.Fatalf("got header %q, want SEQ TIME TYPE AGGREGATE ACTOR DATA", lines[0])
		}
		if len(lines) != len(full)+1 {
			t.Fatalf("got %d rows, want %d (one per event)", len(lines)-1, len(full))
		}
		for i, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) < 4 || f[0] != strconv.FormatUint(full[i].Seq, 10) || f[2] != full[i].Type || f[3] != full[i].Aggregate {
				t.Fatalf("row %d: got %q, want seq %d, %s of %s", i+1, l, full[i].Seq, full[i].Type, full[i].Aggregate)
			}
		}
		keyOut := mustAudit(t, ts, "replay", "--format", "table", "--key", k1.Key)
		if n := strings.Count(keyOut, "\n"); n != 5 || !strings.Contains(keyOut, "key.revoked") {
			t.Errorf("got\n%s\nwant a header and k1's 4 events", keyOut)
		}
	})

	t.Run("ReplayUsage", func(t *testing.T) {
		for _, args := range [][]string{
			{"replay", "--format", "xml"},
			{"replay", "--since", "yesterday"},
			{"replay", "--from-seq", "-1"},
			{"frobnicate"},
			{},
		} {
			code, stdout, stderr := auditCLI(t, ts, args...)
			wantExit(t, args, code, stdout, stderr, 2)
		}
	})

	t.Run("StateKey", func(t *testing.T) {
		args := []string{"state", "--key", k1.Key, "--at-seq", fmt.Sprint(created.Seq - 1)}
		code, stdout, stderr := auditCLI(t, ts, args...)
		wantExit(t, args, code, stdout, stderr, 1)
		wantContains(t, "stderr", stderr, "did not exist")

		m := stateJSON(t, ts, "--key", k1.Key, "--at-seq", fmt.Sprint(created.Seq))
		if m["status"] != "active" || m["version"] != 1.0 || m["secret_regenerated_at"] != nil || m["user_id"] != aliceID || m["name"] != "ci" {
			t.Errorf("at creation: got %v, want active version 1 never regenerated", m)
		}
		m = stateJSON(t, ts, "--key", k1.Key, "--at-seq", fmt.Sprint(regen2.Seq-1))
		if m["status"] != "active" || m["version"] != 2.0 || m["revoked_at"] != nil || m["as_of_seq"] != float64(regen2.Seq-1) {
			t.Errorf("between regenerations: got %v, want active at version 2", m)
		}
		if got := timeField(t, m, "secret_regenerated_at"); !got.Equal(regen1.Time) {
			t.Errorf("between regenerations: got secret_regenerated_at %v, want %v", got, regen1.Time)
		}
		m = stateJSON(t, ts, "--key", k1.Key, "--at-seq", fmt.Sprint(revoked.Seq))
		if m["status"] != "revoked" || m["version"] != 4.0 {
			t.Errorf("after revocation: got %v, want revoked at version 4", m)
		}
		if got := timeField(t, m, "revoked_at"); !got.Equal(revoked.Time) {
			t.Errorf("got revoked_at %v, want %v", got, revoked.Time)
		}
		if got := timeField(t, m, "secret_regenerated_at"); !got.Equal(regen2.Time) {
			t.Errorf("got secret_regenerated_at %v, want %v", got, regen2.Time)
		}
		m = stateJSON(t, ts, "--key", k1.Key, "--at", regen1.Time.Format(time.RFC3339Nano))
		if m["status"] != "active" || m["version"] != 2.0 {
			t.Errorf("--at the first regeneration: got %v, want active at version 2", m)
		}

		out := mustAudit(t, ts, "state", "--key", k1.Key)
		wantContains(t, "state", out, "api_key:", k1.Key, "status:", "revoked", "revoked_at:", "history:")
		if n := strings.Count(out, " by "); n != 4 {
			t.Errorf("got %d history lines, want 4:\n%s", n, out)
		}
		if !regexp.MustCompile(`(?m)^status:\s+revoked$`).MatchString(out) {
			t.Errorf("got\n%s\nwant status: revoked", out)
		}
	})

	// The status as of a stream sequence is the status then: a key that
	// has expired since was active at its creation.
	t.Run("StateKeyStatusAsOfThen", func(t *testing.T) {
		k3Created := ofAggregate(k3.Key)[0]
		if m := stateJSON(t, ts, "--key", k3.Key); m["status"] != "expired" {
			t.Errorf("now: got %v, want expired", m["status"])
		}
		if m := stateJSON(t, ts, "--key", k3.Key, "--at", k3Created.Time.Format(time.RFC3339Nano)); m["status"] != "active" {
			t.Errorf("--at its creation: got %v, want active", m["status"])
		}
		if m := stateJSON(t, ts, "--key", k3.Key, "--at-seq", fmt.Sprint(k3Created.Seq)); m["status"] != "active" {
			t.Errorf("--at-seq %d (its creation): got %v, want active, as it was then", k3Created.Seq, m["status"])
		}
	})

	t.Run("StateUser", func(t *testing.T) {
		// The auditor cannot open the sealed email: state shows none.
		m := stateJSON(t, ts, "--user", aliceID)
		if m["id"] != aliceID || m["email"] != "" || m["erased"] != false || m["version"] != 1.0 || m["created_at"] == nil {
			t.Errorf("got %v, want alice at version 1, no email, not erased", m)
		}
		out := mustAudit(t, ts, "state", "--user", aliceID)
		wantContains(t, "state", out, "id:", aliceID, "erased:", "history:", "user.registered")
		if strings.Contains(out, "alice@example.com") {
			t.Errorf("state: got\n%s\nwant no email", out)
		}
		args := []string{"state", "--user", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C"}
		code, stdout, stderr := auditCLI(t, ts, args...)
		wantExit(t, args, code, stdout, stderr, 1)
		for _, args := range [][]string{
			{"state"},
			{"state", "--key", k1.Key, "--user", aliceID},
			{"state", "--key", k1.Key, "--at", "2026-01-01T00:00:00Z", "--at-seq", "3"},
			{"state", "--key", k1.Key, "--at", "noon"},
		} {
			code, stdout, stderr := auditCLI(t, ts, args...)
			wantExit(t, args, code, stdout, stderr, 2)
		}
	})

	// A disabled user's reconstructed state says so, and says when.
	t.Run("StateUserDisabled", func(t *testing.T) {
		bobEvents := ofAggregate(bobID)
		if len(bobEvents) != 2 || bobEvents[1].Type != "user.disabled" || bobEvents[1].Actor != "admin:root" {
			t.Fatalf("got %+v, want bob registered then disabled by admin:root", bobEvents)
		}
		if m := stateJSON(t, ts, "--user", bobID, "--at-seq", fmt.Sprint(bobEvents[0].Seq)); m["disabled"] != false || m["role"] != "user" {
			t.Errorf("before: got %v, want role user, disabled false", m)
		}
		if m := stateJSON(t, ts, "--user", bobID); m["disabled"] != true || m["version"] != 2.0 {
			t.Errorf("after: got %v, want disabled true at version 2", m)
		}
	})

	t.Run("Pubkey", func(t *testing.T) {
		fromFile := mustAudit(t, ts, "pubkey", "--signing-key", ts.Config.SigningKeyFile)
		fromStream := mustAudit(t, ts, "pubkey", "--from-stream")
		if fromFile != fromStream || len(strings.TrimSpace(fromFile)) != 43 {
			t.Errorf("got %q from the key file and %q from the stream, want the same base64url Ed25519 key", fromFile, fromStream)
		}
		args := []string{"pubkey", "--signing-key", dir + "/no-such.pem"}
		code, stdout, stderr := auditCLI(t, ts, args...)
		wantExit(t, args, code, stdout, stderr, 3)
		if strings.Contains(stdout, "PRIVATE") {
			t.Error("pubkey printed a private key")
		}
	})

	t.Run("TrustRoot", func(t *testing.T) {
		root := strings.TrimSpace(mustAudit(t, ts, "trust-root"))
		if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(root) {
			t.Fatalf("trust-root printed %q, want sha256:<64 hex>", root)
		}
		state := t.TempDir()
		for range 2 { // the first run records the log, the second checks it extends it
			wantContains(t, "verify --state-dir", mustAudit(t, ts, "verify", "--state-dir", state, "--trust-root", root), "OK: the log is intact")
		}
		file := filepath.Join(t.TempDir(), "root.txt")
		if err := os.WriteFile(file, []byte(root+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		mustAudit(t, ts, "verify", "--trust-root", file, "--state-dir", "")
		args := []string{"verify", "--state-dir", "", "--trust-root", "sha256:" + strings.Repeat("0", 64)}
		code, stdout, stderr := auditCLI(t, ts, args...)
		wantExit(t, args, code, stdout, stderr, 1)
		wantContains(t, "verify with another trust root", stderr, "not the pinned trust root")
	})

	var expect string
	t.Run("Verify", func(t *testing.T) {
		out := mustAudit(t, ts, "verify")
		wantContains(t, "verify", out, "OK: the log is intact", "checkpoints: ")
		m := lastCheckpointLine.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("got\n%s\nwant a last checkpoint line", out)
		}
		expect = m[1]
		wantContains(t, "verify --expect", mustAudit(t, ts, "verify", "--expect", expect), "OK: the log is intact")

		var report audit.Report
		if err := json.Unmarshal([]byte(mustAudit(t, ts, "verify", "--json")), &report); err != nil {
			t.Fatal(err)
		}
		size, _, _ := strings.Cut(expect, ":")
		if !report.OK() || report.Checkpoints == 0 || strconv.FormatUint(report.Verified, 10) != size || report.Messages != report.LastSeq {
			t.Errorf("got %+v, want no problems, every message, verified up to %s", report, size)
		}

		i := len(expect) - 1
		flipped := expect[:i] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", expect[i])+1)%16])
		args := []string{"verify", "--expect", flipped}
		code, stdout, stderr := auditCLI(t, ts, args...)
		wantExit(t, args, code, stdout, stderr, 1)
		wantContains(t, "verify output", stdout, "PROBLEM", "expected root")
		wantContains(t, "verify stderr", stderr, "fails verification", "sequence "+size)

		_, root, _ := strings.Cut(expect, ":")
		args = []string{"verify", "--expect", fmt.Sprint(report.LastSeq+100) + ":" + root}
		code, stdout, stderr = auditCLI(t, ts, args...)
		wantExit(t, args, code, stdout, stderr, 1)
		wantContains(t, "verify output", stdout, "truncated")

		args = []string{"verify", "--expect", "1:abc"}
		code, stdout, stderr = auditCLI(t, ts, args...)
		wantExit(t, args, code, stdout, stderr, 2)
	})

	t.Run("Forged", func(t *testing.T) {
		nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(ts.CredsFile(natsauth.Operator)))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		forged := fmt.Sprintf(`{"id":"01JH6Z3Q8X4N6V2R9T5M7K3B8Y","type":"key.revoked","schema":1,"aggregate":%q,"version":2,"time":"2026-11-01T00:00:00Z","actor":"admin:root","data":{"reason":"forged"}}`, k2.Key)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ack, err := js.Publish(ctx, "keyledger.key."+k2.Key, []byte(forged))
		if err != nil {
			t.Fatal(err)
		}
		seq := ack.Sequence
		// The checkpoint writer names it as foreign in the next checkpoint.
		natstest.Eventually(t, 10*time.Second, func() bool {
			cps, err := store.Checkpoints(context.Background())
			return err == nil && len(cps) > 0 && slices.Contains(cps[len(cps)-1].Data.(domain.LogCheckpoint).Foreign, seq)
		}, "a checkpoint naming the forged message")
		if got := ts.Validate(t, k2); got != http.StatusOK {
			t.Errorf("k2 after a forged revocation: got %d, want 200", got)
		}

		args := []string{"verify"}
		code, stdout, stderr := auditCLI(t, ts, args...)
		wantExit(t, args, code, stdout, stderr, 1)
		wantContains(t, "verify output", stdout, fmt.Sprintf("PROBLEM sequence %d (keyledger.key.%s): not written by the ledger", seq, k2.Key))
		wantContains(t, "verify stderr", stderr, fmt.Sprintf("sequence %d", seq))
		if strings.Count(stdout, "PROBLEM") != 1 {
			t.Errorf("got\n%s\nwant exactly one problem: the forged message", stdout)
		}
		args = []string{"verify", "--expect", expect}
		code, stdout, stderr = auditCLI(t, ts, args...)
		wantExit(t, args, code, stdout, stderr, 1)
		if strings.Contains(stdout, "rewritten") {
			t.Errorf("got\n%s\nwant the earlier checkpoint still matched (the log was only appended to)", stdout)
		}

		if slices.Contains(seqs(replay(t, ts)), seq) {
			t.Errorf("plain replay shows the forged message at %d", seq)
		}
		var marked []audit.Record
		for _, r := range replay(t, ts, "--include-forged") {
			if r.Forged != "" {
				marked = append(marked, r)
			}
		}
		if len(marked) != 1 || marked[0].Seq != seq || marked[0].Aggregate != k2.Key || marked[0].Data != nil || marked[0].Actor != "" {
			t.Errorf("got %+v, want only seq %d marked forged, without the forger's claims", marked, seq)
		}
		if got := seqs(replay(t, ts, "--key", k2.Key, "--include-forged")); len(got) != 2 || got[1] != seq {
			t.Errorf("--key k2 --include-forged: got %v, want k2's creation and the forged message", got)
		}
		table := mustAudit(t, ts, "replay", "--include-forged", "--format", "table", "--key", k2.Key)
		wantContains(t, "table", table, "FORGED: ")
		if m := stateJSON(t, ts, "--key", k2.Key); m["status"] != "active" || m["version"] != 1.0 {
			t.Errorf("state of k2: got %v, want active at version 1 (the forged revocation ignored)", m)
		}
	})
}
