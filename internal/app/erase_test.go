package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/datakeys"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestErase_EndToEnd: a user registers, creates keys and erases their
// account. Afterwards nothing in the raw log (every message's headers and
// bytes) holds the email, its local part, the password hash, or the
// base64 of any of them; the data key is gone from the bucket and from the
// server's files on disk; audit verify still passes; a validation node
// refuses the old keys; login fails like an unknown address; and a serve
// started afresh from the log shows the user erased and the keys revoked,
// and lets the address register again.
//
// On the code before sealing, the raw log held the email and the hash in
// clear (user.registered schema 1), so the search fails there.
func TestErase_EndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := apptest.Start(t, dir)
	const email = "erin.erasable@example.com"
	userID := ts.Register(t, email, apptest.Password)
	token := ts.Login(t, email, apptest.Password)
	k1 := ts.CreateKey(t, token, `{"name":"one"}`)
	k2 := ts.CreateKey(t, token, `{"name":"two"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := ts.Service().UserByID(ctx, userID)
	if err != nil || u.PasswordHash == "" {
		t.Fatalf("the user before erasure: got %+v, %v, want the password hash", u, err)
	}
	hash := u.PasswordHash
	dataKey := readDataKey(t, ts, userID)
	// The check on disk below means something only if the key is there
	// before the erasure.
	natstest.Eventually(t, 20*time.Second, func() bool { return findInFiles(t, filepath.Join(dir, "nats"), dataKey) != "" },
		"the data key written to the store's files")

	node := &app.Node{Config: app.NodeConfig{NATSURL: ts.NATSURL(), HTTPAddr: "127.0.0.1:0",
		NATSClient: app.NATSClientConfig{Creds: ts.CredsFile(natsauth.Validator)}}}
	if err := node.Open(context.Background()); err != nil {
		t.Fatalf("open the node: %v", err)
	}
	defer node.Close(context.Background())
	natstest.Eventually(t, 10*time.Second, func() bool { return node.Validator().Status().Ready }, "node ready")
	if _, err := node.Validator().Validate(ctx, k1.Key, k1.Secret); err != nil {
		t.Fatalf("validate before erasure: %v", err)
	}

	r := ts.Do(t, "DELETE", "/users/me", `{"password":"`+apptest.Password+` not"}`, apptest.Bearer(token)...)
	apptest.WantStatus(t, r, http.StatusForbidden)
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/users/me", `{}`, apptest.Bearer(token)...), http.StatusForbidden)
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/users/me", `{"password":"x","extra":1}`, apptest.Bearer(token)...), http.StatusBadRequest)
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/users/me", `{"password":"`+apptest.Password+`"}`), http.StatusUnauthorized)
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/users/me", `{"password":"`+apptest.Password+`"}`, apptest.Bearer(token)...), http.StatusNoContent)

	// The session ended, the keys stopped, on serve and on the node.
	apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(token)...), http.StatusUnauthorized)
	for _, k := range []apptest.CreatedKey{k1, k2} {
		if got := ts.Validate(t, k); got != http.StatusUnauthorized {
			t.Errorf("serve: the erased user's key %s got %d, want 401", k.Key, got)
		}
		natstest.Eventually(t, 10*time.Second, func() bool {
			_, err := node.Validator().Validate(ctx, k.Key, k.Secret)
			return err != nil
		}, "the erased user's key refused on the node")
	}
	// Login with the erased address answers as for an unknown one.
	erased := ts.Do(t, "POST", "/sessions", `{"email":"`+email+`","password":"`+apptest.Password+`"}`)
	unknown := ts.Do(t, "POST", "/sessions", `{"email":"nobody.here@example.com","password":"`+apptest.Password+`"}`)
	if erased.Status != http.StatusUnauthorized || string(erased.Body) != string(unknown.Body) {
		t.Errorf("login as the erased user: got %d %s, want what an unknown address gets: %d %s",
			erased.Status, erased.Body, unknown.Status, unknown.Body)
	}

	// Nothing personal in the raw log.
	raw := apptest.AllStreamData(t, ts)
	for name, needle := range personalNeedles(email, hash) {
		if bytes.Contains(bytes.ToLower(raw), bytes.ToLower([]byte(needle))) {
			t.Errorf("the raw log holds the %s (%q)", name, needle)
		}
	}
	if !bytes.Contains(raw, []byte(`"type":"user.erased"`)) || !bytes.Contains(raw, []byte(`"reason":"user erased"`)) {
		t.Error("the raw log has no user.erased or no key revoked for the erasure")
	}
	// The data key is gone from the bucket.
	kv, err := apptest.JetStream(t, ts).KeyValue(ctx, datakeys.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, userID); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the bucket after erasure: got %v, %v, want the data key gone", e, err)
	}
	nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(ts.CredsFile(natsauth.Auditor)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	apptest.VerifyLog(t, nc)

	// A serve started afresh from the log.
	ts.Stop(t)
	// The server overwrote the data key's message: its bytes are nowhere
	// in the store's files.
	if path := findInFiles(t, filepath.Join(dir, "nats"), dataKey); path != "" {
		t.Errorf("the erased data key's bytes are still on disk, in %s", path)
	}
	ts2 := apptest.Start(t, dir)
	defer ts2.Stop(t)
	u2, ok := ts2.Service().UserByID(ctx, userID)
	if ok != nil || !u2.Erased || u2.Email != "" || u2.PasswordHash != "" {
		t.Errorf("restarted: got %+v, %v, want the user erased with nothing personal", u2, ok)
	}
	for _, k := range []apptest.CreatedKey{k1, k2} {
		if got := ts2.Validate(t, k); got != http.StatusUnauthorized {
			t.Errorf("restarted: key %s got %d, want 401", k.Key, got)
		}
	}
	apptest.WantStatus(t, ts2.Do(t, "POST", "/sessions", `{"email":"`+email+`","password":"`+apptest.Password+`"}`), http.StatusUnauthorized)
	again := ts2.Register(t, email, apptest.Password)
	if again == userID {
		t.Errorf("registering the address again: got the erased user's id, want a new one")
	}
	ts2.Login(t, email, apptest.Password)
}

// TestErase_AdminRoute: POST /admin/users/{id}/erase takes only an admin's
// signed request (a session, even an admin's, gets 403), answers 404 for
// an unknown user, and returns the revoked keys.
func TestErase_AdminRoute(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	root := ts.RootAdmin(t)
	ts.CreateUser(t, "ops@example.com", true)
	ts.CaughtUp(t)
	opsToken := ts.Login(t, "ops@example.com", apptest.Password)
	bob := ts.Register(t, "bob@example.com", apptest.Password)
	k := ts.CreateKey(t, ts.Login(t, "bob@example.com", apptest.Password), "")
	path := "/admin/users/" + bob + "/erase"
	apptest.WantStatus(t, ts.Do(t, "POST", path, `{"reason":"r"}`, apptest.Bearer(opsToken)...), http.StatusForbidden)
	r := ts.AdminDo(t, root, "POST", "/admin/users/usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C/erase", `{"reason":"r"}`)
	apptest.WantStatus(t, r, http.StatusNotFound)
	r = ts.AdminDo(t, root, "POST", path, `{"reason":"erasure request 7"}`)
	apptest.WantStatus(t, r, http.StatusOK)
	if got := r.JSON(t)["revoked"].([]any); len(got) != 1 || got[0] != k.Key {
		t.Errorf("revoked: got %v, want [%s]", got, k.Key)
	}
	r = ts.AdminDo(t, root, "GET", "/admin/users", "")
	apptest.WantStatus(t, r, http.StatusOK)
	found := false
	for _, u := range r.JSON(t)["users"].([]any) {
		m := u.(map[string]any)
		if m["id"] == bob {
			found = true
			if m["erased"] != true || m["email"] != "" || m["disabled"] != true {
				t.Errorf("admin list: got %v, want bob erased, disabled, without email", m)
			}
		}
	}
	if !found {
		t.Error("admin list: bob missing")
	}
}

// TestNATSAuth_UserKeysBucket: the ledger's credentials read and write
// the data keys; the validator's and the auditor's cannot read them in any
// way (bind, get, direct get, message get, consumer, subscription).
func TestNATSAuth_UserKeysBucket(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	userID := ts.Register(t, "alice@example.com", apptest.Password)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ledgerNC, _ := connectAs(t, ts, natsauth.Ledger)
	keys, err := datakeys.Open(ctx, ledgerNC)
	if err != nil {
		t.Fatalf("ledger binds the bucket: %v", err)
	}
	if _, err := keys.Get(ctx, userID); err != nil {
		t.Errorf("ledger reads a data key: %v", err)
	}
	const stream = "KV_" + datakeys.DefaultBucket
	subject := "$KV." + datakeys.DefaultBucket + "." + userID
	t.Run("Roles", func(t *testing.T) {
		for _, role := range []natsauth.Role{natsauth.Validator, natsauth.Auditor} {
			t.Run(string(role), func(t *testing.T) {
				t.Parallel()
				nc, js := connectAs(t, ts, role)
				attacks := map[string]func(context.Context) error{
					"bind the bucket": func(c context.Context) error { _, err := js.KeyValue(c, datakeys.DefaultBucket); return err },
					"stream info":     func(c context.Context) error { _, err := js.Stream(c, stream); return err },
					"direct get": func(c context.Context) error {
						m, err := nc.RequestWithContext(c, "$JS.API.DIRECT.GET."+stream+"."+subject, nil)
						if err == nil && len(m.Data) == 0 && m.Header.Get("Status") != "" {
							return errors.New(m.Header.Get("Status")) // an error status, no data
						}
						return err
					},
					"message get": func(c context.Context) error {
						m, err := nc.RequestWithContext(c, "$JS.API.STREAM.MSG.GET."+stream, []byte(`{"last_by_subj":"`+subject+`"}`))
						if err == nil && !bytes.Contains(m.Data, []byte(`"message"`)) {
							return errors.New(string(m.Data))
						}
						return err
					},
					"ordered consumer": func(c context.Context) error {
						_, err := js.OrderedConsumer(c, stream, jetstream.OrderedConsumerConfig{})
						return err
					},
					"subscribe to the bucket's subjects": func(c context.Context) error {
						sub, err := nc.SubscribeSync("$KV." + datakeys.DefaultBucket + ".>")
						if err != nil {
							return err
						}
						defer sub.Unsubscribe()
						if err := nc.FlushWithContext(c); err != nil {
							return err
						}
						<-c.Done() // a refused subscription shows as the connection's last error
						if err := nc.LastError(); err != nil {
							return err
						}
						return nil
					},
					"write a data key": func(c context.Context) error {
						_, err := js.Publish(c, subject, []byte("0123456789abcdef0123456789abcdef"))
						return err
					},
				}
				natstest.WantRefused(t, ctx, 3*time.Second, attacks)
			})
		}
	})
	if _, err := keys.Get(ctx, userID); err != nil {
		t.Errorf("the data key after the attacks: %v", err)
	}
	// The ledger may delete a data key's message, and no other: not one
	// of the log's.
	_, ledgerJS := connectAs(t, ts, natsauth.Ledger)
	log, err := ledgerJS.Stream(ctx, "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	defer dcancel()
	if err := log.DeleteMsg(dctx, 1); err == nil {
		t.Error("ledger credentials deleted a message of the log, want refused")
	}
	if err := keys.Destroy(ctx, userID); err != nil {
		t.Errorf("ledger credentials destroy a data key: %v", err)
	}
}

// readDataKey returns a user's data key as stored, read with the
// operator's credentials.
func readDataKey(t *testing.T, ts *apptest.Server, userID string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := apptest.JetStream(t, ts).KeyValue(ctx, datakeys.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, userID)
	if err != nil {
		t.Fatalf("data key of %s: %v", userID, err)
	}
	return e.Value()
}

// personalNeedles are the forms of an email and a password hash that must
// not appear in the log: as they are, the local part, and in base64 and
// hex.
func personalNeedles(email, hash string) map[string]string {
	local, _, _ := bytes.Cut([]byte(email), []byte("@"))
	out := map[string]string{"email": email, "local part": string(local), "password hash": hash}
	for name, v := range map[string]string{"email": email, "password hash": hash} {
		out[name+" in base64"] = base64.StdEncoding.EncodeToString([]byte(v))
		out[name+" in raw url base64"] = base64.RawURLEncoding.EncodeToString([]byte(v))
		out[name+" in hex"] = hex.EncodeToString([]byte(v))
	}
	// The hash's own salt and digest, base64 already.
	if i := bytes.LastIndexByte([]byte(hash), '$'); i > 0 {
		out["password digest"] = hash[i+1:]
	}
	return out
}

// findInFiles returns a file under dir that holds needle, or "".
func findInFiles(t *testing.T, dir string, needle []byte) string {
	t.Helper()
	found := ""
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			found = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestClient_EraseMe: the Go client erases its session's user; a wrong
// password is a 403 and erases nothing.
func TestClient_EraseMe(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	anon, err := client.New(ts.Base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Register(ctx, "gina@example.com", apptest.Password); err != nil {
		t.Fatal(err)
	}
	s, err := anon.Login(ctx, "gina@example.com", apptest.Password)
	if err != nil {
		t.Fatal(err)
	}
	c := anon.WithSession(s.Token)
	if err := c.EraseMe(ctx, apptest.Password+" no"); !client.IsForbidden(err) {
		t.Fatalf("EraseMe with a wrong password: got %v, want a 403", err)
	}
	if err := c.EraseMe(ctx, apptest.Password); err != nil {
		t.Fatalf("EraseMe: got %v, want nil", err)
	}
	if _, err := anon.Login(ctx, "gina@example.com", apptest.Password); !client.IsUnauthorized(err) {
		t.Errorf("login after erasure: got %v, want 401", err)
	}
	if err := anon.EraseMe(ctx, apptest.Password); !errors.Is(err, client.ErrNoSession) {
		t.Errorf("EraseMe without a session: got %v, want %v", err, client.ErrNoSession)
	}
}
