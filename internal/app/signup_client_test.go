package app_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/mailtest"
)

// TestClient_SignUp drives the sign-up routes through the Go client: an
// admin user's session issues an invitation, which SignUp spends; in
// verified mode SignUp reports the pending account and VerifyEmail and
// ResendVerification answer as documented.
func TestClient_SignUp(t *testing.T) {
	t.Parallel()
	testCtx := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t.Cleanup(cancel)
		return ctx
	}
	wantStatus := func(t *testing.T, err error, want int) {
		t.Helper()
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != want {
			t.Fatalf("got %v, want a *client.Error with status %d", err, want)
		}
	}
	t.Run("Invite", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) { c.SignUp.Registration = "invite" })
		defer ts.Stop(t)
		ts.CreateUser(t, "ops@example.com", true)
		ts.CaughtUp(t)
		anon, err := client.New(ts.Base)
		if err != nil {
			t.Fatal(err)
		}
		s, err := anon.Login(ctx, "ops@example.com", apptest.Password)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := anon.WithSession(s.Token).AdminCreateInvitation(ctx, client.InvitationRequest{Email: "zoe@example.com", ExpiresIn: time.Hour})
		if err != nil {
			t.Fatalf("AdminCreateInvitation: %v", err)
		}
		_, err = anon.SignUp(ctx, client.SignUpRequest{Email: "zoe@example.com", Password: apptest.Password})
		wantStatus(t, err, http.StatusForbidden)
		got, err := anon.SignUp(ctx, client.SignUpRequest{Email: "zoe@example.com", Password: apptest.Password, Invitation: inv.Token})
		if err != nil || got.Pending() || got.ID == "" || got.Email != "zoe@example.com" {
			t.Fatalf("SignUp: got %+v, %v, want the new user", got, err)
		}
	})
	t.Run("Verified", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		ms := mailtest.Start(t, mailtest.Options{})
		ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
			c.SignUp = app.SignUpConfig{Registration: "verified", SMTPURL: "smtp://" + ms.SMTPAddr,
				SMTPFrom: "keyledger@example.com", PublicURL: publicURL}
		})
		defer ts.Stop(t)
		anon, err := client.New(ts.Base)
		if err != nil {
			t.Fatal(err)
		}
		got, err := anon.SignUp(ctx, client.SignUpRequest{Email: "yan@example.com", Password: apptest.Password})
		if err != nil || !got.Pending() || got.ID != "" {
			t.Fatalf("SignUp: got %+v, %v, want pending and no user id", got, err)
		}
		_, err = anon.Login(ctx, "yan@example.com", apptest.Password)
		wantStatus(t, err, http.StatusForbidden)
		wantStatus(t, anon.VerifyEmail(ctx, "not a token"), http.StatusBadRequest)
		m := linkToken.FindStringSubmatch(ms.Await(t, "yan@example.com", 1)[0].Text)
		if m == nil {
			t.Fatal("no link in the mail")
		}
		if err := anon.VerifyEmail(ctx, m[1]); err != nil {
			t.Fatalf("VerifyEmail: %v", err)
		}
		if _, err := anon.Login(ctx, "yan@example.com", apptest.Password); err != nil {
			t.Fatalf("Login after verification: %v", err)
		}
		if err := anon.ResendVerification(ctx, "nobody@example.com"); err != nil {
			t.Errorf("ResendVerification: %v", err)
		}
	})
}
