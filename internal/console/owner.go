package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyledger/keyledger/client"
)

func (c *Console) routes() {
	c.mux.HandleFunc("GET /console/{$}", c.home)
	c.mux.HandleFunc("GET /console/login", c.loginPage)
	c.mux.HandleFunc("POST /console/login", c.login)
	c.mux.HandleFunc("GET /console/signup", c.signupPage)
	c.mux.HandleFunc("POST /console/signup", c.signup)
	c.mux.HandleFunc("GET /console/verify", c.verifyPage)
	c.mux.HandleFunc("POST /console/verify", c.verify)
	c.mux.HandleFunc("POST /console/verify/resend", c.resend)
	c.mux.HandleFunc("POST /console/logout", c.logout)
	c.mux.HandleFunc("GET /console/keys", c.signedIn(c.keys))
	c.mux.HandleFunc("GET /console/keys/new", c.signedIn(c.newKeyPage))
	c.mux.HandleFunc("POST /console/keys", c.signedIn(c.createKey))
	c.mux.HandleFunc("GET /console/keys/{key}", c.signedIn(c.keyPage))
	c.mux.HandleFunc("POST /console/keys/{key}/edit", c.signedIn(c.editKey))
	c.mux.HandleFunc("POST /console/keys/{key}/rotate", c.signedIn(c.rotateKey))
	c.mux.HandleFunc("POST /console/keys/{key}/disable", c.signedIn(c.disableKey))
	c.mux.HandleFunc("POST /console/keys/{key}/enable", c.signedIn(c.enableKey))
	c.mux.HandleFunc("GET /console/keys/{key}/history", c.signedIn(c.keyHistory))
	c.mux.HandleFunc("GET /console/keys/{key}/usage", c.signedIn(c.keyUsage))
	c.mux.HandleFunc("GET /console/keys/{key}/revoke", c.signedIn(c.revokePage))
	c.mux.HandleFunc("POST /console/keys/{key}/revoke", c.signedIn(c.revokeKey))
	c.mux.HandleFunc("GET /console/account", c.signedIn(c.accountPage))
	c.mux.HandleFunc("POST /console/account/password", c.signedIn(c.changePassword))
	c.mux.HandleFunc("POST /console/account/erase", c.signedIn(c.erase))
	c.teamRoutes()
	c.adminRoutes()
	c.mux.HandleFunc("/console/", c.notFound)
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusNotFound, "message", page{Title: "Not found", Error: "There is no such page."})
}

// signedIn runs next with an API client of the browser's session, or
// sends the browser to the login page. Whether the session still holds is
// the API's to say on each call (see apiFailed).
func (c *Console) signedIn(next func(http.ResponseWriter, *http.Request, *client.Client)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := c.token(r)
		if !ok {
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		api := c.api.WithSession(tok)
		me, err := api.Me(r.Context())
		if err != nil {
			c.apiFailed(w, r, "Console", "message", page{}, err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), meKey{}, me)), api)
	}
}

// meKey carries who the session is (client.Me) to the page's layout.
type meKey struct{}

// meFrom returns who the signed-in browser is.
func meFrom(ctx context.Context) (client.Me, bool) {
	me, ok := ctx.Value(meKey{}).(client.Me)
	return me, ok
}

// apiFailed shows what the API answered to a failed call, with the
// API's status and message; a session the API no longer accepts sends the
// browser to the login page. The message is the API's, which never echoes
// a request's values.
func (c *Console) apiFailed(w http.ResponseWriter, r *http.Request, title, view string, p page, err error) {
	var ae *client.Error
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && view != "login":
		c.clearSession(w)
		http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
		return
	case errors.As(err, &ae):
		p.Title, p.Error = title, ae.Message
		if ae.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(ae.RetryAfter.Seconds()+0.999)))
		}
		c.render(w, r, ae.Status, view, p)
	case errors.Is(err, client.ErrNoSession):
		http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
	default:
		c.logger.Error("console: API call", "page", title, "err", err)
		p.Title, p.Error = title, "internal error"
		c.render(w, r, http.StatusInternalServerError, view, p)
	}
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.token(r); ok {
		http.Redirect(w, r, Prefix+"keys", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// credentialsForm is what the login and sign-up pages show again after a
// failure; never the password.
type credentialsForm struct {
	Email string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", page{Title: "Log in", Data: credentialsForm{}})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	email := r.PostForm.Get("email")
	s, err := c.api.Login(r.Context(), email, r.PostForm.Get("password"))
	if err != nil {
		c.apiFailed(w, r, "Log in", "login", page{Data: credentialsForm{Email: email}}, err)
		return
	}
	http.SetCookie(w, c.cookie(c.session, s.Token, s.ExpiresAt))
	http.Redirect(w, r, Prefix+"keys", http.StatusSeeOther)
}

type signupForm struct {
	Email      string
	Invitation string
}

func (c *Console) signupPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "signup", page{Title: "Sign up", Data: signupForm{}})
}

func (c *Console) signup(w http.ResponseWriter, r *http.Request) {
	f := signupForm{Email: r.PostForm.Get("email"), Invitation: r.PostForm.Get("invitation")}
	res, err := c.api.SignUp(r.Context(), client.SignUpRequest{Email: f.Email, Password: r.PostForm.Get("password"),
		Invitation: f.Invitation})
	if err != nil {
		f.Invitation = ""
		c.apiFailed(w, r, "Sign up", "signup", page{Data: f}, err)
		return
	}
	if res.Pending() {
		c.render(w, r, http.StatusAccepted, "pending", page{Title: "Check your mail",
			Notice: "Check your mail: a link to confirm your address is on its way. Log in once you have confirmed it.",
			Data:   credentialsForm{Email: res.Email}})
		return
	}
	c.render(w, r, http.StatusCreated, "login", page{Title: "Log in", Notice: "Your account is ready: log in.",
		Data: credentialsForm{Email: res.Email}})
}

// verifyPage is where a sign-up mail's link lands (GET /verify redirects
// here): a GET verifies nothing, the page posts the token on the user's
// click.
func (c *Console) verifyPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "verify", page{Title: "Confirm your address", Data: r.URL.Query().Get("token")})
}

func (c *Console) verify(w http.ResponseWriter, r *http.Request) {
	if err := c.api.VerifyEmail(r.Context(), r.PostForm.Get("token")); err != nil {
		c.apiFailed(w, r, "Confirm your address", "verify", page{Data: ""}, err)
		return
	}
	c.render(w, r, http.StatusOK, "login", page{Title: "Log in", Notice: "Your address is confirmed: log in.", Data: credentialsForm{}})
}

// resend asks for another confirmation mail; the API answers alike for
// any well-formed address, and draws on the address's registration budget.
func (c *Console) resend(w http.ResponseWriter, r *http.Request) {
	f := credentialsForm{Email: r.PostForm.Get("email")}
	if err := c.api.ResendVerification(r.Context(), f.Email); err != nil {
		c.apiFailed(w, r, "Check your mail", "pending", page{Data: f}, err)
		return
	}
	c.render(w, r, http.StatusAccepted, "pending", page{Title: "Check your mail", Data: f,
		Notice: "If this address waits for its confirmation, a new link is on its way."})
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if tok, ok := c.token(r); ok {
		// The token ends on every instance; a session already ended is
		// as good as logged out.
		if err := c.api.WithSession(tok).Logout(r.Context()); err != nil && !isStatus(err, http.StatusUnauthorized) {
			c.apiFailed(w, r, "Log out", "message", page{}, err)
			return
		}
	}
	c.clearSession(w)
	c.render(w, r, http.StatusOK, "login", page{Title: "Log in", SignedIn: false, Notice: "You are logged out.",
		CSRF: c.preToken(w, r), Data: credentialsForm{}})
}

// preToken is formToken for a page whose session just ended.
func (c *Console) preToken(w http.ResponseWriter, r *http.Request) string {
	r2 := r.Clone(r.Context())
	r2.Header.Del("Cookie")
	if ck, err := r.Cookie(c.pre); err == nil {
		r2.AddCookie(ck)
	}
	return c.formToken(w, r2)
}

func isStatus(err error, status int) bool {
	var ae *client.Error
	return errors.As(err, &ae) && ae.Status == status
}

type keysView struct {
	Keys []client.Key
	Next string
}

func (c *Console) keys(w http.ResponseWriter, r *http.Request, api *client.Client) {
	pg, err := api.ListKeys(r.Context(), client.ListOptions{Limit: 50, Cursor: r.URL.Query().Get("cursor")})
	if err != nil {
		c.apiFailed(w, r, "Keys", "message", page{}, err)
		return
	}
	c.render(w, r, http.StatusOK, "keys", page{Title: "Your keys", SignedIn: true, Data: keysView{Keys: pg.Keys, Next: pg.NextCursor}})
}

// keyForm is the create and edit forms' fields as typed.
type keyForm struct {
	Name, Scopes, Metadata, ExpiresAt  string
	RateLimit, RateWindow              string
	Credits, RefillAmount, RefillEvery string
	SignedOnly                         bool
	Version                            string
}

func readKeyForm(r *http.Request) keyForm {
	f := r.PostForm
	return keyForm{Name: f.Get("name"), Scopes: f.Get("scopes"), Metadata: f.Get("metadata"), ExpiresAt: f.Get("expires_at"),
		RateLimit: f.Get("rate_limit"), RateWindow: f.Get("rate_window"), Credits: f.Get("credits"),
		RefillAmount: f.Get("refill_amount"), RefillEvery: f.Get("refill_every"), SignedOnly: f.Get("signed_only") != "",
		Version: f.Get("version")}
}

// formError is a form field the console could not read: a 400 with its
// message.
type formError string

func (e formError) Error() string { return string(e) }

func (f keyForm) scopes() []string {
	return strings.FieldsFunc(f.Scopes, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

func (f keyForm) metadata() (json.RawMessage, error) {
	s := strings.TrimSpace(f.Metadata)
	if s == "" {
		return nil, nil
	}
	if !json.Valid([]byte(s)) || !strings.HasPrefix(s, "{") {
		return nil, formError("metadata must be a JSON object, like {\"team\":\"billing\"}")
	}
	return json.RawMessage(s), nil
}

// expiry reads the expiry field: a browser's datetime-local value, taken
// as UTC, or an RFC 3339 time; empty: none.
func (f keyForm) expiry() (*time.Time, error) {
	s := strings.TrimSpace(f.ExpiresAt)
	if s == "" {
		return nil, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return &t, nil
		}
	}
	return nil, formError("expiry must be a date and time, like 2030-01-02T15:04 (UTC)")
}

func (f keyForm) rateLimit() (*client.RateLimit, error) {
	if strings.TrimSpace(f.RateLimit) == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(f.RateLimit), 10, 64)
	if err != nil {
		return nil, formError("the rate limit must be a whole number of requests")
	}
	window := strings.TrimSpace(f.RateWindow)
	if window == "" {
		window = "1m"
	}
	return &client.RateLimit{Limit: n, Window: window}, nil
}

func (f keyForm) credits() (*client.Credits, error) {
	if strings.TrimSpace(f.Credits) == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(f.Credits), 10, 64)
	if err != nil {
		return nil, formError("credits must be a whole number")
	}
	cr := &client.Credits{Remaining: n}
	if a := strings.TrimSpace(f.RefillAmount); a != "" {
		m, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return nil, formError("the refill amount must be a whole number")
		}
		every := strings.TrimSpace(f.RefillEvery)
		if every == "" {
			every = "30d"
		}
		cr.Refill = &client.Refill{Amount: m, Interval: every}
	}
	return cr, nil
}

func (f keyForm) createRequest() (client.CreateKeyRequest, error) {
	req := client.CreateKeyRequest{Name: strings.TrimSpace(f.Name), Scopes: f.scopes(), SignedOnly: f.SignedOnly}
	var err error
	if req.Metadata, err = f.metadata(); err != nil {
		return req, err
	}
	if req.ExpiresAt, err = f.expiry(); err != nil {
		return req, err
	}
	if req.RateLimit, err = f.rateLimit(); err != nil {
		return req, err
	}
	req.Credits, err = f.credits()
	return req, err
}

func (c *Console) newKeyPage(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	c.render(w, r, http.StatusOK, "key_new", page{Title: "New key", SignedIn: true, Data: keyForm{RateWindow: "1m"}})
}

// secretView is the one page that shows a secret.
type secretView struct {
	APIKey, Name, Secret string
	Rotated              bool
	PreviousUntil        string
}

func (c *Console) createKey(w http.ResponseWriter, r *http.Request, api *client.Client) {
	f := readKeyForm(r)
	req, err := f.createRequest()
	if err != nil {
		c.render(w, r, http.StatusBadRequest, "key_new", page{Title: "New key", SignedIn: true, Error: err.Error(), Data: f})
		return
	}
	k, err := api.CreateKey(r.Context(), req)
	if err != nil {
		c.apiFailed(w, r, "New key", "key_new", page{SignedIn: true, Data: f}, err)
		return
	}
	// The secret is in this answer's body only: never in a URL, never
	// cached (Cache-Control: no-store on every page).
	c.render(w, r, http.StatusCreated, "secret", page{Title: "Your new key", SignedIn: true,
		Data: secretView{APIKey: k.APIKey, Name: k.Name, Secret: k.Secret}})
}

// keyView is a key's page.
type keyView struct {
	Key  client.Key
	Form keyForm
}

// formOf fills the edit form from a key.
func formOf(k client.Key) keyForm {
	f := keyForm{Name: k.Name, Scopes: strings.Join(k.Scopes, " "), Version: strconv.FormatUint(k.Version, 10), RateWindow: "1m"}
	if len(k.Metadata) > 0 && string(k.Metadata) != "{}" {
		f.Metadata = string(k.Metadata)
	}
	if k.ExpiresAt != nil {
		f.ExpiresAt = k.ExpiresAt.UTC().Format("2006-01-02T15:04")
	}
	if k.RateLimit != nil {
		f.RateLimit, f.RateWindow = strconv.FormatUint(k.RateLimit.Limit, 10), k.RateLimit.Window
	}
	return f
}

func (c *Console) keyPage(w http.ResponseWriter, r *http.Request, api *client.Client) {
	k, err := api.GetKey(r.Context(), r.PathValue("key"))
	if err != nil {
		c.apiFailed(w, r, "Key", "message", page{SignedIn: true}, err)
		return
	}
	c.render(w, r, http.StatusOK, "key", page{Title: keyTitle(k), SignedIn: true, Data: keyView{Key: k, Form: formOf(k)}})
}

func keyTitle(k client.Key) string {
	if k.Name != "" {
		return "Key " + k.Name
	}
	return "Key " + k.APIKey
}

// afterChange shows the key's page again after a change, with a notice.
func (c *Console) afterChange(w http.ResponseWriter, r *http.Request, api *client.Client, notice string) {
	k, err := api.GetKey(r.Context(), r.PathValue("key"))
	if err != nil {
		c.apiFailed(w, r, "Key", "message", page{SignedIn: true}, err)
		return
	}
	c.render(w, r, http.StatusOK, "key", page{Title: keyTitle(k), SignedIn: true, Notice: notice,
		Data: keyView{Key: k, Form: formOf(k)}})
}

// keyFailed shows the key's page with what the API refused.
func (c *Console) keyFailed(w http.ResponseWriter, r *http.Request, api *client.Client, err error) {
	k, gerr := api.GetKey(r.Context(), r.PathValue("key"))
	if gerr != nil {
		c.apiFailed(w, r, "Key", "message", page{SignedIn: true}, gerr)
		return
	}
	var fe formError
	if errors.As(err, &fe) {
		c.render(w, r, http.StatusBadRequest, "key", page{Title: keyTitle(k), SignedIn: true, Error: fe.Error(),
			Data: keyView{Key: k, Form: formOf(k)}})
		return
	}
	c.apiFailed(w, r, keyTitle(k), "key", page{SignedIn: true, Data: keyView{Key: k, Form: formOf(k)}}, err)
}

func (c *Console) editKey(w http.ResponseWriter, r *http.Request, api *client.Client) {
	err := func() error {
		f := readKeyForm(r)
		version, err := strconv.ParseUint(f.Version, 10, 64)
		if err != nil {
			return formError("the form has no key version; reload the page")
		}
		name, scopes := strings.TrimSpace(f.Name), f.scopes()
		edit := client.KeyEdit{Name: &name, Scopes: &scopes}
		md, err := f.metadata()
		if err != nil {
			return err
		}
		edit.Metadata = &md
		if edit.ExpiresAt, err = f.expiry(); err != nil {
			return err
		}
		edit.ClearExpiry = edit.ExpiresAt == nil
		if edit.RateLimit, err = f.rateLimit(); err != nil {
			return err
		}
		edit.ClearRateLimit = edit.RateLimit == nil
		// Credits are set anew only when asked: setting them starts a new
		// count, forgetting what was spent.
		if r.PostForm.Get("clear_credits") != "" {
			edit.ClearCredits = true
		} else if edit.Credits, err = f.credits(); err != nil {
			return err
		}
		_, err = api.EditKey(r.Context(), r.PathValue("key"), edit, version)
		return err
	}()
	if err != nil {
		c.keyFailed(w, r, api, err)
		return
	}
	c.afterChange(w, r, api, "Saved.")
}

// graces are the grace periods the rotate form offers.
var graces = map[string]time.Duration{"0s": 0, "15m": 15 * time.Minute, "1h": time.Hour, "24h": 24 * time.Hour,
	"168h": 168 * time.Hour}

func (c *Console) rotateKey(w http.ResponseWriter, r *http.Request, api *client.Client) {
	grace, ok := graces[r.PostForm.Get("grace")]
	if !ok {
		c.keyFailed(w, r, api, formError("choose a grace period from the list"))
		return
	}
	s, err := api.RegenerateSecretWithGrace(r.Context(), r.PathValue("key"), grace)
	if err != nil {
		c.keyFailed(w, r, api, err)
		return
	}
	v := secretView{APIKey: s.APIKey, Secret: s.Secret, Rotated: true}
	if grace > 0 {
		if k, err := api.GetKey(r.Context(), s.APIKey); err == nil {
			v.PreviousUntil = when(k.PreviousSecretExpiresAt)
			v.Name = k.Name
		}
	}
	c.render(w, r, http.StatusOK, "secret", page{Title: "Your new secret", SignedIn: true, Data: v})
}

func (c *Console) disableKey(w http.ResponseWriter, r *http.Request, api *client.Client) {
	if err := api.DisableKey(r.Context(), r.PathValue("key"), strings.TrimSpace(r.PostForm.Get("reason"))); err != nil {
		c.keyFailed(w, r, api, err)
		return
	}
	c.afterChange(w, r, api, "The key is disabled: it validates nowhere until you enable it.")
}

func (c *Console) enableKey(w http.ResponseWriter, r *http.Request, api *client.Client) {
	if err := api.EnableKey(r.Context(), r.PathValue("key"), strings.TrimSpace(r.PostForm.Get("reason"))); err != nil {
		c.keyFailed(w, r, api, err)
		return
	}
	c.afterChange(w, r, api, "The key is enabled.")
}

func (c *Console) revokePage(w http.ResponseWriter, r *http.Request, api *client.Client) {
	k, err := api.GetKey(r.Context(), r.PathValue("key"))
	if err != nil {
		c.apiFailed(w, r, "Key", "message", page{SignedIn: true}, err)
		return
	}
	c.render(w, r, http.StatusOK, "revoke", page{Title: "Revoke " + keyTitle(k), SignedIn: true, Data: k})
}

func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request, api *client.Client) {
	if r.PostForm.Get("confirm") != "yes" {
		c.keyFailed(w, r, api, formError("tick the box to confirm the revocation"))
		return
	}
	if err := api.RevokeKey(r.Context(), r.PathValue("key")); err != nil {
		c.keyFailed(w, r, api, err)
		return
	}
	c.afterChange(w, r, api, "The key is revoked, for good.")
}

func (c *Console) accountPage(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	c.render(w, r, http.StatusOK, "account", page{Title: "Account", SignedIn: true})
}

func (c *Console) changePassword(w http.ResponseWriter, r *http.Request, api *client.Client) {
	f := r.PostForm
	if f.Get("new_password") != f.Get("new_password_again") {
		c.render(w, r, http.StatusBadRequest, "account", page{Title: "Account", SignedIn: true,
			Error: "the two new passwords differ"})
		return
	}
	if err := api.ChangePassword(r.Context(), f.Get("current_password"), f.Get("new_password")); err != nil {
		c.accountFailed(w, r, err)
		return
	}
	// Every session of the user ended, this one too.
	c.clearSession(w)
	c.render(w, r, http.StatusOK, "login", page{Title: "Log in", Notice: "Your password is changed and every session ended: log in again.",
		CSRF: c.preToken(w, r), Data: credentialsForm{}})
}

// accountFailed shows the account page with what the API refused; a wrong
// password confirmation is the API's 403, not a lost session.
func (c *Console) accountFailed(w http.ResponseWriter, r *http.Request, err error) {
	c.apiFailed(w, r, "Account", "account", page{SignedIn: true}, err)
}

func (c *Console) erase(w http.ResponseWriter, r *http.Request, api *client.Client) {
	if r.PostForm.Get("confirm") != "yes" {
		c.render(w, r, http.StatusBadRequest, "account", page{Title: "Account", SignedIn: true,
			Error: "tick the box to confirm that your account is to be erased"})
		return
	}
	if err := api.EraseMe(r.Context(), r.PostForm.Get("password")); err != nil {
		c.accountFailed(w, r, err)
		return
	}
	c.clearSession(w)
	c.render(w, r, http.StatusOK, "message", page{Title: "Account erased", CSRF: c.preToken(w, r),
		Notice: "Your account is erased: your address and password are unreadable everywhere, and your keys are revoked."})
}
