package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/mail"
	"github.com/keyledger/keyledger/internal/mailtest"
)

const publicURL = "https://keys.example.com"

// linkToken finds the token in a verification message's link.
var linkToken = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/verify\?token=([A-Za-z0-9_.-]+)`)

// TestServe_SignUp_Verified plays a new user and an attacker against serve
// in verified mode with a real SMTP server (mailpit): the account is
// unusable until the mailed link is followed, the link works once, and
// registering a taken address answers exactly like a free one while its
// owner is told by mail.
func TestServe_SignUp_Verified(t *testing.T) {
	t.Parallel()
	ms := mailtest.Start(t, mailtest.Options{})
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		c.SignUp = app.SignUpConfig{Registration: "verified", SMTPURL: "smtp://" + ms.SMTPAddr,
			SMTPFrom: "keyledger@example.com", PublicURL: publicURL}
	})
	defer ts.Stop(t)

	const email = "alice@example.com"
	body := `{"email":"` + email + `","password":"` + apptest.Password + `"}`
	r := ts.Do(t, "POST", "/users", body)
	apptest.WantStatus(t, r, http.StatusAccepted)
	fresh := r.Body
	if m := r.JSON(t); m["status"] != "verification_pending" || m["email"] != email || m["id"] != nil {
		t.Fatalf("registration: got %s, want pending for %s and no user id", r.Body, email)
	}

	// Attack: use the account before proving the address.
	r = ts.Do(t, "POST", "/sessions", body)
	apptest.WantStatus(t, r, http.StatusForbidden)
	if !strings.Contains(string(r.Body), "not verified") {
		t.Errorf("login before verification: got %s, want a clear error", r.Body)
	}
	r = ts.Do(t, "POST", "/sessions", `{"email":"`+email+`","password":"`+apptest.Password+`x"}`)
	apptest.WantStatus(t, r, http.StatusUnauthorized)

	msgs := ms.Await(t, email, 1)
	if msgs[0].Subject != mail.SubjectVerification || msgs[0].From != "keyledger@example.com" {
		t.Fatalf("mail: got %q from %q, want %q", msgs[0].Subject, msgs[0].From, mail.SubjectVerification)
	}
	m := linkToken.FindStringSubmatch(msgs[0].Text)
	if m == nil {
		t.Fatalf("mail body %q: no %s/verify?token= link", msgs[0].Text, publicURL)
	}
	token := m[1]

	r = ts.Do(t, "POST", "/users/verify", `{"token":"`+token+`"}`)
	apptest.WantStatus(t, r, http.StatusNoContent)
	// Attack: replay the link.
	r = ts.Do(t, "POST", "/users/verify", `{"token":"`+token+`"}`)
	apptest.WantStatus(t, r, http.StatusBadRequest)
	if code := r.ErrorCode(t); code != "invalid" {
		t.Errorf("second use: got code %q, want invalid", code)
	}

	session := ts.Login(t, email, apptest.Password)
	k := ts.CreateKey(t, session, `{"name":"after verification"}`)
	if got := ts.Validate(t, k); got != http.StatusOK {
		t.Errorf("validate the new key: got %d, want 200", got)
	}

	// Attack: probe whether an address is registered.
	r = ts.Do(t, "POST", "/users", `{"email":"`+email+`","password":"another long passphrase"}`)
	apptest.WantStatus(t, r, http.StatusAccepted)
	if !bytes.Equal(r.Body, fresh) {
		t.Errorf("taken address: got %s, want exactly %s as for a free one", r.Body, fresh)
	}
	msgs = ms.Await(t, email, 2)
	if msgs[0].Subject != mail.SubjectAlreadyRegistered || linkToken.MatchString(msgs[0].Text) {
		t.Errorf("mail to the owner: got %q with body %q, want %q without a link", msgs[0].Subject, msgs[0].Text, mail.SubjectAlreadyRegistered)
	}
	r = ts.Do(t, "POST", "/users/verify/resend", `{"email":"nobody@example.com"}`)
	apptest.WantStatus(t, r, http.StatusAccepted)
	r2 := ts.Do(t, "POST", "/users/verify/resend", `{"email":"`+email+`"}`)
	apptest.WantStatus(t, r2, http.StatusAccepted)
	if strings.Replace(string(r.Body), "nobody", "alice", 1) != string(r2.Body) {
		t.Errorf("resend: got %s and %s, want the same answer for any address", r.Body, r2.Body)
	}
	// Personal data stays out of the logs.
	if logs := ts.Logs.String(); strings.Contains(logs, email) || strings.Contains(logs, token) {
		t.Error("the logs hold the address or the token")
	}
}

// TestServe_SignUp_Closed: nobody registers; admins still create users.
func TestServe_SignUp_Closed(t *testing.T) {
	t.Parallel()
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) { c.SignUp.Registration = "closed" })
	defer ts.Stop(t)
	r := ts.Do(t, "POST", "/users", `{"email":"bob@example.com","password":"`+apptest.Password+`"}`)
	apptest.WantStatus(t, r, http.StatusForbidden)
	if code := r.ErrorCode(t); code != "forbidden" || !strings.Contains(string(r.Body), "closed") {
		t.Errorf("got %s, want a forbidden error saying registration is closed", r.Body)
	}
	root := ts.RootAdmin(t)
	body := `{"email":"bob@example.com","password":"` + apptest.Password + `","salt":"0123456789abcdefghijklmnop"}`
	apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/users", body), http.StatusCreated)
	ts.Login(t, "bob@example.com", apptest.Password)
}

// TestServe_SignUp_Invite: an admin's invitation lets exactly one
// registration in, even when many race with it.
func TestServe_SignUp_Invite(t *testing.T) {
	t.Parallel()
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		c.SignUp.Registration = "invite"
		c.Limits.RegistrationBurst = -1 // the race below registers from one address
	})
	defer ts.Stop(t)
	root := ts.RootAdmin(t)
	invite := func(body string) string {
		t.Helper()
		r := ts.AdminDo(t, root, "POST", "/admin/invitations", body)
		apptest.WantStatus(t, r, http.StatusCreated)
		tok, _ := r.JSON(t)["token"].(string)
		if tok == "" || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("invitation: got %s (Cache-Control %q), want a token, not stored", r.Body, r.Header.Get("Cache-Control"))
		}
		return tok
	}
	register := func(email, invitation string) apptest.Response {
		return ts.Do(t, "POST", "/users", fmt.Sprintf(`{"email":%q,"password":%q,"invitation":%q}`, email, apptest.Password, invitation))
	}

	r := ts.Do(t, "POST", "/users", `{"email":"carol@example.com","password":"`+apptest.Password+`"}`)
	apptest.WantStatus(t, r, http.StatusForbidden)
	tok := invite(`{}`)
	apptest.WantStatus(t, register("carol@example.com", tok), http.StatusCreated)
	ts.Login(t, "carol@example.com", apptest.Password)
	// Attack: reuse it.
	apptest.WantStatus(t, register("mallory@example.com", tok), http.StatusForbidden)
	// A signed request naming an address must be salted.
	apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/invitations", `{"email":"dave@example.com"}`), http.StatusBadRequest)
	bound := invite(`{"email":"dave@example.com","expires_in":"1h","salt":"0123456789abcdefghijklmnop"}`)
	apptest.WantStatus(t, register("mallory@example.com", bound), http.StatusForbidden)
	apptest.WantStatus(t, register("dave@example.com", bound), http.StatusCreated)
	apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/invitations", `{"expires_in":"forever"}`), http.StatusBadRequest)

	// Attack: race many registrations with one invitation.
	raced := invite(`{}`)
	const n = 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = register(fmt.Sprintf("racer%d@example.com", i), raced).Status
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusForbidden:
		default:
			t.Errorf("racing registration: got %d, want 201 or 403", s)
		}
	}
	if created != 1 {
		t.Errorf("got %d registrations with one invitation (statuses %v), want exactly 1", created, statuses)
	}
}

// TestServe_RegistrationDefault: an API reachable from the network does
// not let anyone register by default. serve listening beyond loopback
// without a registration mode picks verified, which without a mail server
// refuses to start; on loopback it stays open (the README's one-command
// registration).
func TestServe_RegistrationDefault(t *testing.T) {
	t.Parallel()
	s := &app.Server{Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "0.0.0.0:0", NATSListen: "127.0.0.1:0"}}
	err := s.Open(context.Background())
	s.Close(context.Background())
	var ce app.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "--smtp-url") {
		t.Fatalf("serve on 0.0.0.0 with no registration mode: got %v, want a ConfigError asking for --smtp-url", err)
	}
	// On loopback behind a reverse proxy, the network reaches it too.
	s = &app.Server{Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		Limits: app.LimitsConfig{TrustedProxies: []string{"127.0.0.1"}}}}
	err = s.Open(context.Background())
	s.Close(context.Background())
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "--smtp-url") {
		t.Fatalf("serve on loopback behind --trusted-proxy with no registration mode: got %v, want a ConfigError asking for --smtp-url", err)
	}
	s = &app.Server{Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "0.0.0.0:0", NATSListen: "127.0.0.1:0",
		SignUp: app.SignUpConfig{Registration: "verified", SMTPURL: "smtp://127.0.0.1:25", SMTPFrom: "k@example.com"}}}
	err = s.Open(context.Background())
	s.Close(context.Background())
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "--public-url") {
		t.Fatalf("verified on 0.0.0.0 without --public-url: got %v, want a ConfigError asking for it", err)
	}
	s = &app.Server{Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		SignUp: app.SignUpConfig{Registration: "sometimes"}}}
	err = s.Open(context.Background())
	s.Close(context.Background())
	if !errors.As(err, &ce) {
		t.Fatalf("--registration sometimes: got %v, want a ConfigError", err)
	}

	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ts.Register(t, "erin@example.com", apptest.Password)
	ts.Login(t, "erin@example.com", apptest.Password)
}

// TestServe_SignUp_MailDown: with the mail server out of reach a
// registration still answers at once and the account is kept (waiting for
// its verification: a new link can be asked for later).
func TestServe_SignUp_MailDown(t *testing.T) {
	t.Parallel()
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		// A port nothing listens on: every delivery attempt fails.
		c.SignUp = app.SignUpConfig{Registration: "verified", SMTPURL: "smtp://" + apptest.FreeAddr(t),
			SMTPFrom: "keyledger@example.com", PublicURL: publicURL}
	})
	defer ts.Stop(t)
	body := `{"email":"ken@example.com","password":"` + apptest.Password + `"}`
	start := time.Now()
	r := ts.Do(t, "POST", "/users", body)
	apptest.WantStatus(t, r, http.StatusAccepted)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("registration with the mail server down took %v, want no wait for mail", took)
	}
	// The account exists: the right password is told to verify first.
	apptest.WantStatus(t, ts.Do(t, "POST", "/sessions", body), http.StatusForbidden)
	found := false
	users, err := ts.Service().ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		found = found || u.Email == "ken@example.com"
	}
	if !found {
		t.Error("the account is not in the read model")
	}
}
