package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/snapshot"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// TestSnapshots_Permissions: serve writes snapshots to its bucket with the
// ledger's rights; with real credentials, validators and auditors read
// them but cannot put, replace or delete one (a stolen validator
// credential cannot plant a snapshot, nor take them away), and the
// ledger's right to prune its snapshots purges nothing else. A snapshot
// holds no personal data: no email address.
func TestSnapshots_Permissions(t *testing.T) {
	t.Parallel()
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) { c.CheckpointInterval = time.Hour })
	defer ts.Stop(t)
	const email = "snapshot-person@example.com"
	ts.Register(t, email, "correct horse battery staple")
	token := ts.Login(t, email, "correct horse battery staple")
	ts.CreateKey(t, token, `{"name":"snapshot test"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if ts.Snapshots() == nil {
		t.Fatal("serve writes no snapshots")
	}
	info, err := ts.Snapshots().WriteNow(ctx)
	if err != nil {
		t.Fatalf("WriteNow: %v", err)
	}
	bucket := snapshot.Bucket("KEYLEDGER")

	_, ljs := connectAs(t, ts, natsauth.Ledger)
	lobs, err := ljs.ObjectStore(ctx, bucket)
	if err != nil {
		t.Fatalf("ledger binds the bucket: %v", err)
	}
	data, err := lobs.GetBytes(ctx, info.Name)
	if err != nil {
		t.Fatalf("ledger reads the snapshot: %v", err)
	}
	if bytes.Contains(data, []byte(email)) {
		t.Error("the snapshot holds a user's email address")
	}
	// serve's own snapshot holds the users, their personal data sealed.
	ledgerSnap, err := lobs.GetBytes(ctx, strings.Replace(info.Name, "snapshot-", "ledger-", 1))
	if err != nil {
		t.Fatalf("ledger reads serve's snapshot: %v", err)
	}
	if bytes.Contains(ledgerSnap, []byte(email)) || bytes.Contains(ledgerSnap, []byte("snapshot-person")) {
		t.Error("serve's snapshot holds a user's email address in clear")
	}
	if _, err := lobs.PutBytes(ctx, "ledger-scratch", []byte("x")); err != nil {
		t.Errorf("ledger puts an object: %v", err)
	}
	if err := lobs.Delete(ctx, "ledger-scratch"); err != nil {
		t.Errorf("ledger deletes an object: %v", err)
	}
	lstream, err := ljs.Stream(ctx, "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	if err := lstream.Purge(pctx); err == nil {
		t.Error("ledger purged the log, want refused")
	}
	pcancel()

	t.Run("Roles", func(t *testing.T) { readOnly(ctx, t, ts, bucket, info.Name, data) })
	var _ jetstream.ObjectStore = lobs
}

// readOnly checks that validators and auditors read the snapshot bucket
// and change nothing in it.
func readOnly(ctx context.Context, t *testing.T, ts *apptest.Server, bucket, name string, data []byte) {
	for _, role := range []natsauth.Role{natsauth.Validator, natsauth.Auditor} {
		t.Run(string(role), func(t *testing.T) {
			t.Parallel()
			_, js := connectAs(t, ts, role)
			obs, err := js.ObjectStore(ctx, bucket)
			if err != nil {
				t.Fatalf("bind the bucket: %v", err)
			}
			got, err := obs.GetBytes(ctx, name)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read the snapshot: %v", err)
			}
			attacks := map[string]func(context.Context) error{
				"put a snapshot": func(c context.Context) error {
					_, err := obs.PutBytes(c, "snapshot-99999999999999999999", []byte("forged"))
					return err
				},
				"put a snapshot of serve's read models": func(c context.Context) error {
					_, err := obs.PutBytes(c, "ledger-99999999999999999999", []byte("forged"))
					return err
				},
				"replace the snapshot": func(c context.Context) error { _, err := obs.PutBytes(c, name, []byte("forged")); return err },
				"delete the snapshot":  func(c context.Context) error { return obs.Delete(c, name) },
				"purge the bucket": func(c context.Context) error {
					s, err := js.Stream(c, "OBJ_"+bucket)
					if err != nil {
						return err
					}
					return s.Purge(c)
				},
				"delete the bucket": func(c context.Context) error { return js.DeleteObjectStore(c, bucket) },
			}
			// A refused request gets no answer: each runs until its
			// deadline, all at once.
			natstest.WantRefused(t, ctx, 3*time.Second, attacks)
			if got, err := obs.GetBytes(ctx, name); err != nil || !bytes.Equal(got, data) {
				t.Errorf("the snapshot after the attacks: %v", err)
			}
		})
	}
}

// TestServe_StartsFromSnapshot: serve writes a snapshot of its read models
// and, restarted, starts from it instead of folding the whole log, then
// follows the log from the sequence after it. Everything stored before
// and after the snapshot is there: listings are the same as with the
// whole log folded, a key revoked after the snapshot stays revoked (a
// stale snapshot un-revokes nothing), and commands on users, keys and
// teams from the snapshot go on (their versions and sequences came with
// it).
func TestServe_StartsFromSnapshot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	withSnapshots := func(c *app.ServeConfig) { c.CheckpointInterval, c.SnapshotInterval = time.Hour, time.Hour }
	ts := apptest.StartWith(t, dir, withSnapshots)
	alice := ts.Register(t, "alice@example.com", apptest.Password)
	token := ts.Login(t, "alice@example.com", apptest.Password)
	kept := ts.CreateKey(t, token, `{"name":"kept","scopes":["read"],"rate_limit":{"limit":100,"window":"1m"}}`)
	revokedBefore := ts.CreateKey(t, token, `{"name":"revoked before"}`)
	revokedAfter := ts.CreateKey(t, token, `{"name":"revoked after"}`)
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+revokedBefore.Key, "", apptest.Bearer(token)...), http.StatusNoContent)
	r := ts.Do(t, "POST", "/teams", `{"name":"platform"}`, apptest.Bearer(token)...)
	apptest.WantStatus(t, r, http.StatusCreated)
	team := r.JSON(t)["id"].(string)
	r = ts.Do(t, "POST", "/teams/"+team+"/api-keys", `{"name":"team key"}`, apptest.Bearer(token)...)
	apptest.WantStatus(t, r, http.StatusCreated)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := ts.Snapshots().WriteNow(ctx); err != nil {
		t.Fatalf("WriteNow: %v", err)
	}
	// After the snapshot: a revocation it does not hold, a new key.
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+revokedAfter.Key, "", apptest.Bearer(token)...), http.StatusNoContent)
	after := ts.CreateKey(t, token, `{"name":"after"}`)
	// What the read models answer; last_used_at comes from the usage
	// stream, which a node's last report before it stops moves on.
	lastUsed := regexp.MustCompile(`"last_used_at":("[^"]*"|null)`)
	listing := func(ts *apptest.Server) []byte {
		var out []byte
		for _, path := range []string{"/api-keys", "/api-keys?limit=2", "/teams/" + team + "/api-keys", "/teams", "/users/me"} {
			r := ts.Do(t, "GET", path, "", apptest.Bearer(token)...)
			if r.Status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
			}
			out = append(append(out, path...), lastUsed.ReplaceAll(r.Body, nil)...)
		}
		return out
	}
	before := listing(ts)
	ts.Stop(t)

	ts = apptest.StartWith(t, dir, withSnapshots)
	if logs := ts.Logs.String(); !strings.Contains(logs, "starting from a snapshot") || !strings.Contains(logs, "ledger-") {
		t.Fatalf("serve did not start from its snapshot; log:\n%s", logs)
	}
	if m := ts.Metrics(t); !strings.Contains(m, `keyledger_validator_snapshot_start{outcome="loaded"} 1`) {
		t.Errorf("metrics: want the snapshot start loaded, got\n%s", grepLines(m, "snapshot"))
	}
	if got := listing(ts); !bytes.Equal(got, before) {
		t.Errorf("read models differ after starting from the snapshot:\nbefore %s\nafter  %s", before, got)
	}
	for _, c := range []struct {
		name string
		key  apptest.CreatedKey
		want int
	}{{"Kept", kept, 200}, {"RevokedBefore", revokedBefore, 401}, {"RevokedAfter", revokedAfter, 401}, {"After", after, 200}} {
		if got := ts.Validate(t, c.key); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
	// Commands on aggregates that came with the snapshot.
	apptest.WantStatus(t, ts.Do(t, "POST", "/api-keys/"+kept.Key+"/regenerate", "", apptest.Bearer(token)...), http.StatusOK)
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+after.Key, "", apptest.Bearer(token)...), http.StatusNoContent)
	ts.CreateKey(t, token, `{"name":"new"}`)
	apptest.WantStatus(t, ts.Do(t, "POST", "/teams/"+team+"/invitations", `{"role":"developer"}`, apptest.Bearer(token)...),
		http.StatusCreated)
	if got := ts.Do(t, "POST", "/users", `{"email":"alice@example.com","password":"`+apptest.Password+`"}`).Status; got != http.StatusConflict {
		t.Errorf("registering alice's address again: got %d, want 409", got)
	}
	if id := ts.Register(t, "bob@example.com", apptest.Password); id == alice {
		t.Error("bob got alice's id")
	}
	ts.Login(t, "alice@example.com", apptest.Password)
	now := listing(ts)
	ts.Stop(t)

	// The same log folded from its start gives the same read models.
	ts = apptest.StartWith(t, dir, func(c *app.ServeConfig) { withSnapshots(c); c.NoSnapshot = true })
	defer ts.Stop(t)
	if strings.Contains(ts.Logs.String(), "starting from a snapshot") {
		t.Error("--no-snapshot started from a snapshot")
	}
	if got := listing(ts); !bytes.Equal(got, now) {
		t.Errorf("read models from the snapshot and the tail differ from the whole log folded:\nsnapshot %s\nlog      %s", now, got)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestServe_RefusesForgedSnapshot: whoever may write the snapshot bucket
// (the ledger's credentials, the NATS operator) cannot make serve start
// from read models the ledger did not write: an altered snapshot, one
// signed by a key the log does not trust, and a snapshot of the lookup
// alone put under a name of serve's are each refused, and serve folds the
// whole log instead, with the right read models.
func TestServe_RefusesForgedSnapshot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	withSnapshots := func(c *app.ServeConfig) { c.CheckpointInterval, c.SnapshotInterval = time.Hour, time.Hour }
	ts := apptest.StartWith(t, dir, withSnapshots)
	ts.Register(t, "alice@example.com", apptest.Password)
	token := ts.Login(t, "alice@example.com", apptest.Password)
	revoked := ts.CreateKey(t, token, `{"name":"revoked"}`)
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+revoked.Key, "", apptest.Bearer(token)...), http.StatusNoContent)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lookupInfo, err := ts.Snapshots().WriteNow(ctx)
	if err != nil {
		t.Fatalf("WriteNow: %v", err)
	}
	_, js := connectAs(t, ts, natsauth.Ledger)
	obs, err := js.ObjectStore(ctx, snapshot.Bucket("KEYLEDGER"))
	if err != nil {
		t.Fatal(err)
	}
	ledgerName := strings.Replace(lookupInfo.Name, "snapshot-", "ledger-", 1)
	genuine, err := obs.GetBytes(ctx, ledgerName)
	if err != nil {
		t.Fatalf("serve's snapshot %s: %v", ledgerName, err)
	}
	lookupOnly, err := obs.GetBytes(ctx, lookupInfo.Name)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := snapshot.Decode(genuine)
	if err != nil {
		t.Fatal(err)
	}
	altered := append([]byte(nil), genuine...)
	altered[len(altered)/2] ^= 1
	// The forgeries are newer than the genuine snapshot: serve tries them
	// first, and only them (three at most).
	forged := [][]byte{lookupOnly, snapshot.Encode(decoded, testkeys.Ledger()), altered}
	for i, data := range forged {
		if _, err := obs.PutBytes(ctx, fmt.Sprintf("ledger-%020d", decoded.Seq+uint64(i)+1), data); err != nil {
			t.Fatal(err)
		}
	}
	before := ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(token)...)
	apptest.WantStatus(t, before, http.StatusOK)
	ts.Stop(t)
	ts = apptest.StartWith(t, dir, withSnapshots)
	defer ts.Stop(t)
	logs := ts.Logs.String()
	for _, want := range []string{"a snapshot of the lookup alone", "not signed by a ledger key trusted at its position",
		"starting without a snapshot"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log: want %q, got\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "starting from a snapshot") {
		t.Error("serve started from a forged snapshot")
	}
	if m := ts.Metrics(t); !strings.Contains(m, `keyledger_validator_snapshot_start{outcome="refused"} 1`) {
		t.Errorf("metrics: want the snapshot start refused, got\n%s", grepLines(m, "snapshot"))
	}
	after := ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(token)...)
	apptest.WantStatus(t, after, http.StatusOK)
	if !bytes.Equal(after.Body, before.Body) {
		t.Errorf("listing after folding the log:\nbefore %s\nafter  %s", before.Body, after.Body)
	}
	if got := ts.Validate(t, revoked); got != http.StatusUnauthorized {
		t.Errorf("revoked key: got %d, want 401", got)
	}
}
