package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/httpsig"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// publicHost is the name every serve of a test answers to, as behind a
// load balancer: an admin's signature covers it, so the one signed
// request is valid at every serve.
const publicHost = "keyledger.test"

// signedRequest is an admin request signed once, to be sent anywhere.
type signedRequest struct {
	method, path, body string
	headers            []string
}

// signFor signs method path body with k for https://keyledger.test.
func signFor(t *testing.T, k apptest.AdminKey, method, path, body string) signedRequest {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+publicHost+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := httpsig.Sign(req, []byte(body), k.Private, httpsig.SignOptions{KeyID: k.ID, Tag: httpsig.AdminTag}); err != nil {
		t.Fatal(err)
	}
	h := []string{"Signature-Input", req.Header.Get("Signature-Input"), "Signature", req.Header.Get("Signature")}
	if d := req.Header.Get("Content-Digest"); d != "" {
		h = append(h, "Content-Digest", d)
	}
	return signedRequest{method: method, path: path, body: body, headers: h}
}

// sendTo sends the signed request to ts as if to keyledger.test. It is
// safe to call from several goroutines (it reports with t.Error).
func (sr signedRequest) sendTo(t *testing.T, ts *apptest.Server) apptest.Response {
	t.Helper()
	var body io.Reader
	if sr.body != "" {
		body = strings.NewReader(sr.body)
	}
	req, err := http.NewRequest(sr.method, ts.Base+sr.path, body)
	if err != nil {
		t.Error(err)
		return apptest.Response{}
	}
	req.Host = publicHost
	if sr.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(sr.headers); i += 2 {
		req.Header.Set(sr.headers[i], sr.headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return apptest.Response{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// wantReplayRefused checks a 401 that names the replay.
func wantReplayRefused(t *testing.T, r apptest.Response) {
	t.Helper()
	wantCode(t, r, http.StatusUnauthorized, "unauthorized")
	if msg, _ := r.JSON(t)["error"].(map[string]any)["message"].(string); msg != "admin signature replayed" {
		t.Errorf("message %q, want %q", msg, "admin signature replayed")
	}
}

// startSecondServe starts another serve of ts's log: on ts's embedded
// NATS server with the ledger's credentials (as serve runs in a cluster),
// signing with ts's ledger key. stop stops it, at the latest when the
// test ends.
func startSecondServe(t *testing.T, ts *apptest.Server) (second *apptest.Server, stop func()) {
	t.Helper()
	logs := &apptest.SyncBuffer{}
	s := &app.Server{
		Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSURL: ts.NATSURL(),
			NATSClient:     app.NATSClientConfig{Creds: ts.CredsFile(natsauth.Ledger)},
			SigningKeyFile: ts.Config.SigningKeyFile, SessionKeyFile: ts.Config.SessionKeyFile,
			Argon2:             auth.Argon2Params{Memory: 64, Time: 1, Threads: 1},
			CheckpointInterval: -1},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if err := s.Open(context.Background()); err != nil {
		s.Close(context.Background())
		t.Fatalf("open the second serve: %v", err)
	}
	second = &apptest.Server{Server: s, Base: "http://" + s.HTTPAddr(), Logs: logs}
	var once sync.Once
	stop = func() { once.Do(func() { second.Stop(t) }) }
	t.Cleanup(stop)
	natstest.Eventually(t, 10*time.Second, s.Ready, "second serve ready")
	return second, stop
}

// caughtUpWith waits until b's read models show everything in a's log.
func caughtUpWith(t *testing.T, b, a *apptest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Projector().WaitFor(ctx, apptest.StreamHead(t, a)); err != nil {
		t.Fatalf("second serve catching up with the log: %v", err)
	}
}

// TestAdminReplay_AcrossServes: an admin request accepted by one serve is
// refused by every other serve of the log, however the admin state
// changed meanwhile.
func TestAdminReplay_AcrossServes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := apptest.Start(t, dir)
	defer a.Stop(t)
	alice := a.Register(t, "alice@example.com", apptest.Password)
	root := a.RootAdmin(t)
	b, stopB := startSecondServe(t, a)
	defer stopB()
	caughtUpWith(t, b, a)

	disable := signFor(t, root, "POST", "/admin/users/"+alice+"/disable", `{"reason":"first"}`)
	apptest.WantStatus(t, disable.sendTo(t, a), http.StatusNoContent)
	apptest.WantStatus(t, signFor(t, root, "POST", "/admin/users/"+alice+"/enable", "").sendTo(t, a), http.StatusNoContent)
	caughtUpWith(t, b, a)

	// Captured once, replayed at the other serve: alice must stay enabled.
	wantReplayRefused(t, disable.sendTo(t, b))
	if u, err := b.Service().UserByID(context.Background(), alice); err != nil || u.Disabled {
		t.Fatal("the replay at the second serve disabled alice")
	}

}

// TestAdminReplay_AfterRestart: an admin request accepted before serve
// restarted (its embedded NATS server with it) is refused afterwards.
func TestAdminReplay_AfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := apptest.Start(t, dir)
	alice := a.Register(t, "alice@example.com", apptest.Password)
	root := a.RootAdmin(t)
	disable := signFor(t, root, "POST", "/admin/users/"+alice+"/disable", `{"reason":"first"}`)
	apptest.WantStatus(t, disable.sendTo(t, a), http.StatusNoContent)
	apptest.WantStatus(t, signFor(t, root, "POST", "/admin/users/"+alice+"/enable", "").sendTo(t, a), http.StatusNoContent)
	a.Stop(t)

	a = apptest.Start(t, dir)
	defer a.Stop(t)
	wantReplayRefused(t, disable.sendTo(t, a))
	if u, err := a.Service().UserByID(context.Background(), alice); err != nil || u.Disabled {
		t.Fatal("the replay after a restart disabled alice")
	}
	// A fresh signature still works.
	apptest.WantStatus(t, signFor(t, root, "GET", "/admin/users", "").sendTo(t, a), http.StatusOK)
}

// TestAdminReplay_Race: the same signed admin request sent to two serves
// at once is accepted by exactly one.
func TestAdminReplay_Race(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, t.TempDir())
	defer a.Stop(t)
	root := a.RootAdmin(t)
	b, stopB := startSecondServe(t, a)
	defer stopB()
	caughtUpWith(t, b, a)
	for round := range 10 {
		// A read: without a shared nonce check both serves would answer it.
		req := signFor(t, root, "GET", "/admin/keys", "")
		statuses := make([]int, 4)
		var wg sync.WaitGroup
		for i := range statuses {
			ts := []*apptest.Server{a, b}[i%2]
			wg.Go(func() { statuses[i] = req.sendTo(t, ts).Status })
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			switch s {
			case http.StatusOK:
				ok++
			case http.StatusUnauthorized:
			default:
				t.Errorf("round %d: status %d, want 200 or 401", round, s)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d of %v accepted, want exactly 1", round, ok, statuses)
		}
	}
}

// TestAdminReplay_NoncesUnavailable: with the nonce bucket out of reach a
// signed admin request fails closed (503), even a read that the read
// models could answer, and works again once it is back.
func TestAdminReplay_NoncesUnavailable(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	proxy := natstest.StartProxy(t, strings.TrimPrefix(ns.ClientURL(), "nats://"))
	ts := startServerWith(t, func(c *app.ServeConfig) { c.NATSURL = proxy.URL() })
	root := ts.RootAdmin(t)
	apptest.WantStatus(t, ts.AdminDo(t, root, "GET", "/admin/keys", ""), http.StatusOK)

	proxy.Cut()
	natstest.Eventually(t, 10*time.Second, func() bool { return !ts.Conn().IsConnected() }, "serve cut off from NATS")
	r := ts.AdminDo(t, root, "GET", "/admin/keys", "")
	wantCode(t, r, http.StatusServiceUnavailable, "unavailable")
	if msg, _ := r.JSON(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "admin nonce") {
		t.Errorf("message %q, want the admin nonce store's", msg)
	}

	proxy.Restore()
	natstest.Eventually(t, 10*time.Second, ts.Conn().IsConnected, "serve reconnected")
	apptest.WantStatus(t, ts.AdminDo(t, root, "GET", "/admin/keys", ""), http.StatusOK)
}

// TestAdminReplay_BucketGone: without the admin nonce bucket a running
// serve answers admin requests 503, and a serve on the ledger's
// credentials, which may not create it, refuses to start and says to run
// keyledger setup.
func TestAdminReplay_BucketGone(t *testing.T) {
	t.Parallel()
	a := apptest.Start(t, t.TempDir())
	defer a.Stop(t)
	root := a.RootAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := apptest.JetStream(t, a).DeleteStream(ctx, "KV_KEYLEDGER_ADMIN_NONCES"); err != nil {
		t.Fatalf("delete the bucket as the operator: %v", err)
	}
	wantCode(t, a.AdminDo(t, root, "GET", "/admin/keys", ""), http.StatusServiceUnavailable, "unavailable")

	s := &app.Server{Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSURL: a.NATSURL(),
		NATSClient:     app.NATSClientConfig{Creds: a.CredsFile(natsauth.Ledger)},
		SigningKeyFile: a.Config.SigningKeyFile, CheckpointInterval: -1, StartTimeout: 20 * time.Second}}
	err := s.Open(ctx)
	s.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "keyledger setup") || !strings.Contains(err.Error(), "KEYLEDGER_ADMIN_NONCES") {
		t.Fatalf("serve on ledger credentials without the bucket: got %v, want a refusal naming the bucket and keyledger setup", err)
	}
}
