package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/natstest"
)

// loadKeyEvents returns the events of one key from ts's log.
func loadKeyEvents(t *testing.T, ts *apptest.Server, apiKey string) []domain.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := eventstore.New(ctx, ts.Conn(), eventstore.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	events, _, err := store.Load(ctx, domain.CategoryKey, apiKey)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// TestAdminSignature_Attacks: a request to the admin API is an admin's
// act only when signed by an enrolled, unrevoked admin key, fresh, not
// replayed, over the very body sent; anything else is 401 and changes
// nothing.
func TestAdminSignature_Attacks(t *testing.T) {
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	alice := ts.Register(t, "alice@example.com", apptest.Password)
	token := ts.Login(t, "alice@example.com", apptest.Password)
	k := ts.CreateKey(t, token, `{"name":"ci"}`)
	root := ts.RootAdmin(t)
	mallory := apptest.NewAdminKey(t, t.TempDir(), "root") // claims root's name, not enrolled
	path, body := "/admin/keys/"+k.Key, `{"reason":"leaked"}`

	t.Run("UnenrolledKey", func(t *testing.T) {
		r := ts.AdminDo(t, mallory, "DELETE", path, body)
		apptest.WantStatus(t, r, http.StatusUnauthorized)
	})
	t.Run("UnenrolledKeyClaimingRootsKeyID", func(t *testing.T) {
		forged := mallory
		forged.ID = root.ID
		r := ts.AdminDo(t, forged, "DELETE", path, body)
		apptest.WantStatus(t, r, http.StatusUnauthorized)
	})
	t.Run("BodyChanged", func(t *testing.T) {
		h := ts.AdminSigned(t, root, "POST", "/admin/users/"+alice+"/disable", `{"reason":"typo"}`)
		r := ts.Do(t, "POST", "/admin/users/"+alice+"/disable", `{"reason":"evil"}`, h...)
		apptest.WantStatus(t, r, http.StatusUnauthorized)
	})
	t.Run("PathChanged", func(t *testing.T) {
		h := ts.AdminSigned(t, root, "GET", "/admin/keys", "")
		r := ts.Do(t, "POST", "/admin/users/"+alice+"/revoke-keys", "", h...)
		apptest.WantStatus(t, r, http.StatusUnauthorized)
	})
	t.Run("APIKeyTag", func(t *testing.T) {
		// An API key's signature (tag keyledger-v1) is not an admin's.
		h := ts.AdminSigned(t, root, "GET", "/admin/keys", "")
		h[1] = strings.Replace(h[1], `tag="keyledger-admin-v1"`, `tag="keyledger-v1"`, 1)
		r := ts.Do(t, "GET", "/admin/keys", "", h...)
		apptest.WantStatus(t, r, http.StatusUnauthorized)
	})
	if got := ts.Validate(t, k); got != http.StatusOK {
		t.Fatalf("refused admin requests changed the key: got %d, want 200", got)
	}
	if u, err := ts.Service().UserByID(context.Background(), alice); err != nil || u.Disabled {
		t.Fatal("a refused admin request disabled alice")
	}

	t.Run("Replayed", func(t *testing.T) {
		h := ts.AdminSigned(t, root, "POST", "/admin/users/"+alice+"/disable", `{"reason":"first"}`)
		apptest.WantStatus(t, ts.Do(t, "POST", "/admin/users/"+alice+"/disable", `{"reason":"first"}`, h...), http.StatusNoContent)
		apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/users/"+alice+"/enable", ""), http.StatusNoContent)
		// The disable replayed after the enable must not lock alice out again.
		apptest.WantStatus(t, ts.Do(t, "POST", "/admin/users/"+alice+"/disable", `{"reason":"first"}`, h...), http.StatusUnauthorized)
		if u, err := ts.Service().UserByID(context.Background(), alice); err != nil || u.Disabled {
			t.Error("the replay disabled alice")
		}
	})

	t.Run("RevokedAdminKey", func(t *testing.T) {
		bob := apptest.NewAdminKey(t, t.TempDir(), "bob")
		text, _ := bob.Public.MarshalText()
		apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/admin-keys", `{"name":"bob","key":"`+string(text)+`"}`), http.StatusCreated)
		apptest.WantStatus(t, ts.AdminDo(t, bob, "GET", "/admin/keys", ""), http.StatusOK)
		apptest.WantStatus(t, ts.AdminDo(t, root, "DELETE", "/admin/admin-keys/"+bob.ID, `{"reason":"laptop lost"}`), http.StatusNoContent)
		apptest.WantStatus(t, ts.AdminDo(t, bob, "DELETE", path, body), http.StatusUnauthorized)
		if got := ts.Validate(t, k); got != http.StatusOK {
			t.Errorf("a revoked admin key revoked a key: got %d, want 200", got)
		}
	})

	t.Run("EnrolledAdminRevokesKey", func(t *testing.T) {
		apptest.WantStatus(t, ts.AdminDo(t, root, "DELETE", path, body), http.StatusNoContent)
		if got := ts.Validate(t, k); got != http.StatusUnauthorized {
			t.Errorf("validate after the revocation: got %d, want 401", got)
		}
		events := loadKeyEvents(t, ts, k.Key)
		e := events[len(events)-1]
		if e.Type != domain.TypeKeyRevoked || e.Actor != "admin:root" {
			t.Fatalf("got %s by %s, want key.revoked by admin:root", e.Type, e.Actor)
		}
		if e.Request == nil {
			t.Fatal("the event keeps no signed request")
		}
		// An auditor re-verifies the kept signature with the enrolled key,
		// and checks it asked for this very revocation.
		if err := e.Request.Verify(root.Public); err != nil {
			t.Errorf("the kept signature does not verify: %v", err)
		}
		if v, _ := e.Request.Component("@target-uri"); v != ts.Base+path {
			t.Errorf("kept @target-uri %q, want %q", v, ts.Base+path)
		}
		if v, _ := e.Request.Component("@method"); v != "DELETE" {
			t.Errorf("kept @method %q, want DELETE", v)
		}
		if err := e.Request.Verify(mallory.Public); err == nil {
			t.Error("the kept signature verifies with another key")
		}
	})
}

// TestAdminBootstrap: serve --bootstrap-admin enrolls the first admin key
// only while none is enrolled, and keeps ignoring it across restarts.
func TestAdminBootstrap(t *testing.T) {
	dir := t.TempDir()
	first := apptest.NewAdminKey(t, t.TempDir(), "ops")
	second := apptest.NewAdminKey(t, t.TempDir(), "eve")
	start := func(k apptest.AdminKey) *app.Server {
		s := &app.Server{Config: app.ServeConfig{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
			CheckpointInterval: -1, BootstrapAdmin: k.File + ".pub", BootstrapAdminName: k.Name}}
		if err := s.Open(context.Background()); err != nil {
			t.Fatalf("Open: %v", err)
		}
		natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
		return s
	}
	stop := func(s *app.Server) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	s := start(first)
	natstest.Eventually(t, 10*time.Second, func() bool { _, _, ok := s.Service().AdminByKey(first.ID); return ok }, "bootstrap admin enrolled")
	stop(s)

	// Restarted with another bootstrap key: admins exist, so it is ignored.
	s = start(second)
	defer stop(s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := s.Service().BootstrapAdmin(ctx, ledger.BootstrapAdmin{Name: second.Name, Key: second.Public})
	if err != nil || ok {
		t.Fatalf("a second bootstrap: got %v, %v, want false, nil", ok, err)
	}
	if _, _, ok := s.Service().AdminByKey(second.ID); ok {
		t.Error("a second bootstrap key was enrolled while an admin existed")
	}
	if _, _, ok := s.Service().AdminByKey(first.ID); !ok {
		t.Error("the first admin key is gone after a restart")
	}
	admins := s.Service().ListAdmins()
	if len(admins) != 1 || admins[0].Name != "ops" || len(admins[0].Keys) != 1 || admins[0].Keys[0].EnrolledBy != domain.ActorBootstrap {
		t.Errorf("got %+v, want ops alone, enrolled by the bootstrap", admins)
	}
}
