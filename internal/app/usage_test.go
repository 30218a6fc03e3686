package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/usage"
	"github.com/keyledger/keyledger/validator"
)

// openUsageNode opens a validation node with the validator's credentials.
func openUsageNode(t *testing.T, ts *apptest.Server, name string) *app.Node {
	t.Helper()
	node := &app.Node{Config: app.NodeConfig{NATSURL: ts.NATSURL(), HTTPAddr: "127.0.0.1:0", Fleet: app.FleetConfig{NodeName: name},
		UsageInterval: time.Hour, NATSClient: app.NATSClientConfig{Creds: ts.CredsFile(natsauth.Validator)}}}
	if err := node.Open(context.Background()); err != nil {
		t.Fatalf("open node %s: %v", name, err)
	}
	natstest.Eventually(t, time.Minute, func() bool { return node.Validator().Status().Ready }, "node ready")
	return node
}

// TestUsage_TwoNodesAndServe: validations on two nodes with the
// validator's credentials and on serve's own validator reach serve's
// usage read model exactly once each, as the nodes stop (each publishes
// its last interval on the way out).
func TestUsage_TwoNodesAndServe(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ts.Register(t, "alice@example.com", "correct horse battery staple")
	token := ts.Login(t, "alice@example.com", "correct horse battery staple")
	k := ts.CreateKey(t, token, "")
	a, b := openUsageNode(t, ts, "node-a"), openUsageNode(t, ts, "node-b")
	ctx := context.Background()
	before := time.Now()
	validate := func(v *validator.Validator, n int, secret string, wantOK bool) {
		for range n {
			if _, err := v.Validate(ctx, k.Key, secret); (err == nil) != wantOK {
				t.Fatalf("validate: %v, want ok=%v", err, wantOK)
			}
		}
	}
	validate(a.Validator(), 7, k.Secret, true)
	validate(b.Validator(), 5, k.Secret, true)
	wrong, err := domain.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	validate(b.Validator(), 2, wrong.Reveal(), false)
	for _, n := range []*app.Node{a, b} {
		if err := n.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	fold := ts.Server.Usage()
	defer func() { ap, rj := fold.Applied(); t.Logf("applied %d rejected %d", ap, rj) }()
	natstest.Eventually(t, time.Minute, func() bool {
		bs := fold.Buckets(k.Key, before.Add(-2*time.Hour), before.Add(2*time.Hour), usage.Hour)
		var valid, refused uint64
		for _, x := range bs {
			valid += x.Valid
			refused += x.Total() - x.Valid
		}
		return valid == 12 && refused == 2
	}, "12 valid and 2 refused validations in the read model")
	if last, ok := fold.LastUsed(k.Key); !ok || last.Before(before) {
		t.Fatalf("last used: got %v, %v, want after %v", last, ok, before)
	}

	// Over HTTP: the owner sees the buckets and last_used_at; another
	// user gets 404; bad queries are 400.
	r := ts.Do(t, "GET", "/api-keys/"+k.Key+"/usage?bucket=1d", "", apptest.Bearer(token)...)
	var got struct {
		Buckets []struct {
			Start   time.Time         `json:"start"`
			Valid   uint64            `json:"valid"`
			Refused map[string]uint64 `json:"refused"`
		} `json:"buckets"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &got) != nil || len(got.Buckets) != 1 ||
		got.Buckets[0].Valid != 12 || got.Buckets[0].Refused["wrong_secret"] != 2 {
		t.Fatalf("usage: got %d %s, want one day with 12 valid and 2 wrong_secret", r.Status, r.Body)
	}
	if view := ts.Do(t, "GET", "/api-keys/"+k.Key, "", apptest.Bearer(token)...).JSON(t); view["last_used_at"] == nil {
		t.Fatalf("key view: last_used_at is null: %v", view)
	}
	// The Go client reads the same.
	c, err := client.New(ts.Base, client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	buckets, err := c.KeyUsage(ctx, k.Key, client.UsageQuery{Bucket: "1h", From: before.Add(-2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var cvalid uint64
	for _, b := range buckets {
		cvalid += b.Valid
	}
	if cvalid != 12 {
		t.Fatalf("client KeyUsage: got %+v, want 12 valid", buckets)
	}
	if ck, err := c.GetKey(ctx, k.Key); err != nil || ck.LastUsedAt == nil {
		t.Fatalf("client GetKey: %+v, %v, want last_used_at", ck, err)
	}
	if _, err := c.AdminUsage(ctx, 0, 0); err == nil {
		t.Fatal("client AdminUsage as a user: want refused")
	}
	ts.Register(t, "mallory@example.com", "correct horse battery staple")
	other := ts.Login(t, "mallory@example.com", "correct horse battery staple")
	if r := ts.Do(t, "GET", "/api-keys/"+k.Key+"/usage", "", apptest.Bearer(other)...); r.Status != 404 {
		t.Fatalf("another user's usage: got %d %s, want 404", r.Status, r.Body)
	}
	for _, q := range []string{"bucket=5m", "from=yesterday", "from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z"} {
		if r := ts.Do(t, "GET", "/api-keys/"+k.Key+"/usage?"+q, "", apptest.Bearer(token)...); r.Status != 400 {
			t.Fatalf("usage?%s: got %d %s, want 400", q, r.Status, r.Body)
		}
	}
	if r := ts.Do(t, "GET", "/admin/usage", "", apptest.Bearer(token)...); r.Status < 400 || r.Status >= 500 {
		t.Fatalf("admin usage as a user: got %d, want refused", r.Status)
	}
	admin := ts.RootAdmin(t)
	r = ts.AdminDo(t, admin, "GET", "/admin/usage?window=2h&top=5", "")
	if r.Status != 200 || !strings.Contains(string(r.Body), k.Key) {
		t.Fatalf("admin usage: got %d %s, want the key", r.Status, r.Body)
	}
	if r := ts.AdminDo(t, admin, "GET", "/admin/usage?top=0", ""); r.Status != 400 {
		t.Fatalf("admin usage top=0: got %d, want 400", r.Status)
	}
}

// TestUsage_Permissions is the attack of stolen validator or auditor
// credentials on the usage stream: a validator may publish reports but
// not read, purge, delete or re-create the stream; an auditor may read it
// but not publish reports.
func TestUsage_Permissions(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, vjs := connectAs(t, ts, natsauth.Validator)
	if _, err := vjs.Publish(ctx, usage.Subject("node-a"), []byte(`{}`)); err != nil {
		t.Fatalf("validator publishing a report: %v", err)
	}
	denied := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		t.Cleanup(cancel)
		return c
	}
	if err := vjs.DeleteStream(denied(), usage.StreamName("KEYLEDGER")); err == nil {
		t.Fatal("a validator deleted the usage stream")
	}
	if _, err := vjs.Stream(denied(), usage.StreamName("KEYLEDGER")); err == nil {
		t.Fatal("a validator read the usage stream's info")
	}
	_, ajs := connectAs(t, ts, natsauth.Auditor)
	if _, err := ajs.Publish(denied(), usage.Subject("node-a"), []byte(`{}`)); err == nil {
		t.Fatal("an auditor published a usage report")
	}
	// serve on an outside NATS holds the ledger's credentials: it
	// publishes its own /validate's reports and folds everyone's.
	lnc, ljs := connectAs(t, ts, natsauth.Ledger)
	if _, err := ljs.Publish(ctx, usage.Subject("serve:outside"), []byte(`{}`)); err != nil {
		t.Fatalf("ledger publishing a report: %v", err)
	}
	fold := usage.NewFold(usage.FoldConfig{Known: func(string) bool { return true }})
	stop, err := fold.Follow(ctx, lnc, "KEYLEDGER")
	if err != nil {
		t.Fatalf("ledger following the usage stream: %v", err)
	}
	natstest.Eventually(t, 10*time.Second, func() bool { a, r := fold.Applied(); return a+r == 2 }, "the ledger's fold read both reports")
	stop()
	_, ojs := connectAs(t, ts, natsauth.Operator)
	s, err := ojs.Stream(ctx, usage.StreamName("KEYLEDGER"))
	if err != nil {
		t.Fatal(err)
	}
	if s.CachedInfo().State.Msgs != 2 {
		t.Fatalf("usage stream: %d messages, want the validator's and the ledger's", s.CachedInfo().State.Msgs)
	}
	// Not even the operator purges it: the stream denies purges.
	if err := s.Purge(ctx); err == nil {
		t.Fatal("the usage stream could be purged")
	}
}
