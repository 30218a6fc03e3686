package app_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/snapshot"
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
