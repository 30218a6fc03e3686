package app_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/internal/app/apptest"
)

// sessionStatus is what a serve answers a session token with on an
// authenticated read: 200 while it holds, 401 once it ended.
func sessionStatus(t *testing.T, ts *apptest.Server, token string) int {
	t.Helper()
	return ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(token)...).Status
}

func wantSession(t *testing.T, what string, ts *apptest.Server, token string, want int) {
	t.Helper()
	if got := sessionStatus(t, ts, token); got != want {
		t.Errorf("%s: got %d, want %d", what, got, want)
	}
}

// TestSessions_AcrossServes: sessions end on every serve of the log, and
// stay ended after a restart, because the ending is an event: a password
// change on one serve ends the user's tokens on both (the old password
// fails, the new one works), a revocation on one ends every token of the
// user on the other, a logout on one ends that token on the other while
// another token of the user holds, and a token issued before a disable
// stays refused after enable (it worked again before sessions had an
// epoch).
func TestSessions_AcrossServes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := apptest.Start(t, dir)
	alice := a.Register(t, "alice@example.com", apptest.Password)
	bobID := a.Register(t, "bob@example.com", apptest.Password)
	root := a.RootAdmin(t)
	b, stopB := startSecondServe(t, a)
	defer stopB()
	caughtUpWith(t, b, a)
	const newPassword = "a new and long passphrase for alice"

	// Password change on B ends the token issued by A, on A and B.
	onA := a.Login(t, "alice@example.com", apptest.Password)
	bob := a.Login(t, "bob@example.com", apptest.Password)
	caughtUpWith(t, b, a)
	wantSession(t, "alice's token on B before the change", b, onA, http.StatusOK)
	r := b.Do(t, "POST", "/users/me/password", `{"current_password":"not the password at all","new_password":"`+newPassword+`"}`, apptest.Bearer(onA)...)
	wantCode(t, r, http.StatusForbidden, "forbidden")
	r = b.Do(t, "POST", "/users/me/password", `{"current_password":"`+apptest.Password+`","new_password":"aaaaaaaaaaaaaaaaaaaa"}`, apptest.Bearer(onA)...)
	wantCode(t, r, http.StatusBadRequest, "invalid")
	apptest.WantStatus(t, b.Do(t, "POST", "/users/me/password",
		`{"current_password":"`+apptest.Password+`","new_password":"`+newPassword+`"}`, apptest.Bearer(onA)...), http.StatusNoContent)
	caughtUpWith(t, a, a) // a holds the log (its embedded NATS): its head is the log's
	wantSession(t, "the token after a password change, on A", a, onA, http.StatusUnauthorized)
	wantSession(t, "the token after a password change, on B", b, onA, http.StatusUnauthorized)
	wantSession(t, "bob's token after alice's change", b, bob, http.StatusOK)
	for _, ts := range []*apptest.Server{a, b} {
		r := ts.Do(t, "POST", "/sessions", `{"email":"alice@example.com","password":"`+apptest.Password+`"}`)
		apptest.WantStatus(t, r, http.StatusUnauthorized)
	}

	// Revocation on A ends every token of alice on B.
	one, two := a.Login(t, "alice@example.com", newPassword), b.Login(t, "alice@example.com", newPassword)
	apptest.WantStatus(t, a.Do(t, "POST", "/users/me/sessions/revoke", "", apptest.Bearer(one)...), http.StatusNoContent)
	caughtUpWith(t, b, a)
	wantSession(t, "token from A after a revocation, on B", b, one, http.StatusUnauthorized)
	// A verified it for the revocation itself, and remembers it: still refused.
	wantSession(t, "token from A after a revocation, on A", a, one, http.StatusUnauthorized)
	wantSession(t, "token from B after a revocation, on B", b, two, http.StatusUnauthorized)
	wantSession(t, "token from B after a revocation, on A", a, two, http.StatusUnauthorized)

	// Logout on A ends that token on B; another token of alice holds.
	out, kept := a.Login(t, "alice@example.com", newPassword), b.Login(t, "alice@example.com", newPassword)
	apptest.WantStatus(t, a.Do(t, "DELETE", "/sessions/current", "", apptest.Bearer(out)...), http.StatusNoContent)
	caughtUpWith(t, b, a)
	wantSession(t, "the logged-out token on B", b, out, http.StatusUnauthorized)
	wantSession(t, "the logged-out token on A", a, out, http.StatusUnauthorized)
	wantSession(t, "alice's other token on A", a, kept, http.StatusOK)

	// The finding: disable, then enable; the token from before the
	// disable must stay refused.
	apptest.WantStatus(t, a.AdminDo(t, root, "POST", "/admin/users/"+alice+"/disable", `{"reason":"compromised"}`), http.StatusNoContent)
	apptest.WantStatus(t, a.AdminDo(t, root, "POST", "/admin/users/"+alice+"/enable", `{"reason":"cleared"}`), http.StatusNoContent)
	caughtUpWith(t, b, a)
	wantSession(t, "a token issued before disable, after enable, on A", a, kept, http.StatusUnauthorized)
	wantSession(t, "a token issued before disable, after enable, on B", b, kept, http.StatusUnauthorized)
	fresh := b.Login(t, "alice@example.com", newPassword)
	wantSession(t, "a token issued after enable", b, fresh, http.StatusOK)

	// An admin revokes bob's sessions with a signed request on B.
	apptest.WantStatus(t, b.AdminDo(t, root, "POST", "/admin/users/"+bobID+"/revoke-sessions",
		`{"reason":"laptop stolen"}`), http.StatusNoContent)
	caughtUpWith(t, a, a) // a holds the log (its embedded NATS): its head is the log's
	wantSession(t, "bob's token after an admin revocation, on A", a, bob, http.StatusUnauthorized)

	// A restart rebuilds all of it from the log.
	stopB()
	a.Stop(t)
	a = apptest.Start(t, dir)
	defer a.Stop(t)
	for name, token := range map[string]string{"changed": onA, "revoked": two, "logged out": out, "before disable": kept, "bob revoked": bob} {
		wantSession(t, "after a restart, the "+name+" token", a, token, http.StatusUnauthorized)
	}
	wantSession(t, "after a restart, the token issued after enable", a, fresh, http.StatusOK)
	apptest.WantStatus(t, a.Do(t, "POST", "/sessions", `{"email":"alice@example.com","password":"`+apptest.Password+`"}`), http.StatusUnauthorized)
	a.Login(t, "alice@example.com", newPassword)
}

// TestSessions_RefusedAfterDisableAndEnable is the finding: a session
// token issued before `admin users disable` worked again after `enable`.
// It must stay refused; a new login works.
func TestSessions_RefusedAfterDisableAndEnable(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	alice := ts.Register(t, "alice@example.com", apptest.Password)
	root := ts.RootAdmin(t)
	before := ts.Login(t, "alice@example.com", apptest.Password)
	wantSession(t, "the token before disable", ts, before, http.StatusOK)
	apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/users/"+alice+"/disable", `{"reason":"compromised"}`), http.StatusNoContent)
	wantSession(t, "the token while disabled", ts, before, http.StatusUnauthorized)
	apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/users/"+alice+"/enable", `{"reason":"cleared"}`), http.StatusNoContent)
	wantSession(t, "the token issued before disable, after enable", ts, before, http.StatusUnauthorized)
	wantSession(t, "a token issued after enable", ts, ts.Login(t, "alice@example.com", apptest.Password), http.StatusOK)
}

// TestClient_Sessions: the Go client's ChangePassword, RevokeSessions,
// Logout and AdminRevokeSessions end what they say, and a session they
// ended answers 401 as a *client.Error.
func TestClient_Sessions(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	aliceID := ts.Register(t, "alice@example.com", apptest.Password)
	ts.CreateUser(t, "ops@example.com", true)
	ts.CaughtUp(t)
	anon, err := client.New(ts.Base)
	if err != nil {
		t.Fatal(err)
	}
	login := func(email, password string) *client.Client {
		t.Helper()
		s, err := anon.Login(ctx, email, password)
		if err != nil {
			t.Fatalf("Login %s: %v", email, err)
		}
		return anon.WithSession(s.Token)
	}
	wantEnded := func(what string, c *client.Client) {
		t.Helper()
		var e *client.Error
		if _, err := c.ListKeys(ctx, client.ListOptions{}); !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
			t.Errorf("%s: got %v, want a 401", what, err)
		}
	}
	const newPassword = "a new and long passphrase for alice"

	alice := login("alice@example.com", apptest.Password)
	var e *client.Error
	if err := alice.ChangePassword(ctx, "not the password at all", newPassword); !errors.As(err, &e) || e.Status != http.StatusForbidden {
		t.Errorf("ChangePassword with a wrong current password: got %v, want a 403", err)
	}
	if err := alice.ChangePassword(ctx, apptest.Password, newPassword); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	wantEnded("after ChangePassword", alice)

	alice, other := login("alice@example.com", newPassword), login("alice@example.com", newPassword)
	if err := alice.Logout(ctx); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	wantEnded("after Logout", alice)
	if _, err := other.ListKeys(ctx, client.ListOptions{}); err != nil {
		t.Errorf("another session after Logout: %v", err)
	}
	if err := other.RevokeSessions(ctx); err != nil {
		t.Fatalf("RevokeSessions: %v", err)
	}
	wantEnded("after RevokeSessions", other)

	alice = login("alice@example.com", newPassword)
	if err := login("ops@example.com", apptest.Password).AdminRevokeSessions(ctx, aliceID, "laptop stolen"); err != nil {
		t.Fatalf("AdminRevokeSessions: %v", err)
	}
	wantEnded("after AdminRevokeSessions", alice)
}
