package api_test

import (
	"bytes"
	"net/http"
	"regexp"
	"testing"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/mailtest"
)

var invitationIDs = regexp.MustCompile(`inv_[0-9A-Z]{26}(\.)?(?:[A-Za-z0-9_-]{43})?`)

var mailedToken = regexp.MustCompile(`/verify\?token=([A-Za-z0-9_.-]+)`)

// signUpWalkThrough checks the sign-up routes against the document with
// serve in verified mode (mail through a real mailpit) and in invite mode.
func signUpWalkThrough(t *testing.T, d *openAPIDoc) {
	do := func(ts *apptest.Server, method, docPath, body string, headers ...string) apptest.Response {
		t.Helper()
		r := ts.Do(t, method, docPath, body, headers...)
		d.check(t, method, docPath, r)
		return r
	}
	t.Run("Verified", func(t *testing.T) {
		ms := mailtest.Start(t, mailtest.Options{})
		ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
			c.SignUp = app.SignUpConfig{Registration: "verified", SMTPURL: "smtp://" + ms.SMTPAddr,
				SMTPFrom: "keyledger@example.com", PublicURL: "https://keys.example.com"}
		})
		defer ts.Stop(t)
		creds := `{"email":"vera@example.com","password":"` + apptest.Password + `"}`
		r := do(ts, "POST", "/users", creds)
		apptest.WantStatus(t, r, http.StatusAccepted)
		golden(t, "register_user_pending", r.Body)
		apptest.WantStatus(t, do(ts, "POST", "/sessions", creds), http.StatusForbidden)
		apptest.WantStatus(t, do(ts, "POST", "/users/verify", `{"token":"nope"}`), http.StatusBadRequest)
		m := mailedToken.FindStringSubmatch(ms.Await(t, "vera@example.com", 1)[0].Text)
		if m == nil {
			t.Fatal("no link in the mail")
		}
		apptest.WantStatus(t, do(ts, "POST", "/users/verify", `{"token":"`+m[1]+`"}`), http.StatusNoContent)
		apptest.WantStatus(t, do(ts, "POST", "/users/verify/resend", `{"email":"vera@example.com"}`), http.StatusAccepted)
		apptest.WantStatus(t, do(ts, "POST", "/users/verify/resend", `{"email":"not an address"}`), http.StatusBadRequest)
	})
	t.Run("Invite", func(t *testing.T) {
		ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) { c.SignUp.Registration = "invite" })
		defer ts.Stop(t)
		root := ts.RootAdmin(t)
		apptest.WantStatus(t, do(ts, "POST", "/users", `{"email":"ivy@example.com","password":"`+apptest.Password+`"}`), http.StatusForbidden)
		body := `{"expires_in":"1h"}`
		r := do(ts, "POST", "/admin/invitations", body, ts.AdminSigned(t, root, "POST", "/admin/invitations", body)...)
		apptest.WantStatus(t, r, http.StatusCreated)
		tok, _ := r.JSON(t)["token"].(string)
		golden(t, "create_invitation", invitationIDs.ReplaceAllFunc(r.Body, func(b []byte) []byte {
			if bytes.Contains(b, []byte(".")) {
				return []byte("inv_ULID.TOKEN")
			}
			return []byte("inv_ULID")
		}))
		r = do(ts, "POST", "/users", `{"email":"ivy@example.com","password":"`+apptest.Password+`","invitation":"`+tok+`"}`)
		apptest.WantStatus(t, r, http.StatusCreated)
		bad := `{"expires_in":"-1h"}`
		apptest.WantStatus(t, do(ts, "POST", "/admin/invitations", bad, ts.AdminSigned(t, root, "POST", "/admin/invitations", bad)...), http.StatusBadRequest)
		apptest.WantStatus(t, do(ts, "POST", "/admin/invitations", `{}`), http.StatusUnauthorized)
	})
}
