// Package console is keyledger's web console: server-rendered pages under
// /console/ where owners sign up, log in and manage their keys. Every
// action is a call of the HTTP API's own routes, made in process (see
// inProcess), so the console has no powers, limits or checks of its own
// beyond those of a browser page: the session, the CSRF defences and the
// headers that keep the pages from being framed, sniffed or scripted.
//
// Templates and assets are embedded in the binary; the pages work
// without JavaScript, which only adds a copy button.
package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyledger/keyledger/client"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// maxFormBytes caps a form's body.
const maxFormBytes = 64 << 10

// ContentSecurityPolicy is the policy of every console response: only the
// console's own scripts, styles and images, no inline code, no framing,
// forms posted only back to the console's origin.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Config holds the console's dependencies.
type Config struct {
	// API is the HTTP API's handler; every page calls it in process.
	API http.Handler
	// TLS says the console is served over HTTPS: its cookies are then
	// Secure and carry the __Host- prefix.
	TLS bool
	// History, if set, replays a key's events for its history page;
	// nil: the page says it cannot.
	History History
	// Logger may be nil.
	Logger *slog.Logger
}

// Console is the web console. It implements http.Handler for the paths
// under Prefix.
type Console struct {
	api     *client.Client
	history History
	tls     bool
	logger  *slog.Logger
	pages   map[string]*template.Template
	origin  *http.CrossOriginProtection
	mux     *http.ServeMux
	static  http.Handler
	session string // the session cookie's name
	pre     string // the pre-session cookie's name
}

// New returns the console, or an error if a dependency is missing or a
// template does not parse.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil {
		return nil, errors.New("console: missing API handler")
	}
	api, err := client.New("http://keyledger.invalid", client.WithHTTPClient(&http.Client{Transport: inProcess{api: cfg.API},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}))
	if err != nil {
		return nil, err
	}
	c := &Console{api: api, history: cfg.History, tls: cfg.TLS, logger: cfg.Logger, origin: http.NewCrossOriginProtection(), mux: http.NewServeMux(),
		session: "kl_session", pre: "kl_pre"}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.tls {
		c.session, c.pre = "__Host-kl_session", "__Host-kl_pre"
	}
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(static))
	c.routes()
	return c, nil
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{"when": when, "at": at, "adminKeyURL": adminKeyURL, "userStatus": userStatus}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || strings.HasPrefix(base, "_") {
			continue
		}
		// Every page is the layout, the shared parts (_*.html) and itself.
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html", n)
		if err != nil {
			return nil, err
		}
		pages[base] = t
	}
	return pages, nil
}

// when formats an optional time for a page.
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// at formats a time for a page.
func at(t time.Time) string { return when(&t) }

// ServeHTTP serves a console page with the headers every page carries.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if c.tls {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if strings.HasPrefix(r.URL.Path, Prefix+"static/") {
		h.Set("Cache-Control", "public, max-age=300")
		c.static.ServeHTTP(w, r)
		return
	}
	// Pages hold a user's keys, a CSRF token or a secret: no cache keeps them.
	h.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := c.checkForm(w, r); err != nil {
			c.render(w, r, http.StatusForbidden, "message", page{Title: "Refused", Error: err.Error()})
			return
		}
	}
	c.mux.ServeHTTP(w, withRequest(w, r))
}

// withRequest gives r a context that carries r itself into the API calls.
func withRequest(_ http.ResponseWriter, r *http.Request) *http.Request {
	return r.WithContext(withOuter(r.Context(), r))
}

var (
	errCrossOrigin = errors.New("this form was posted from another site, and refused; use the console's own pages")
	errCSRF        = errors.New("this form has expired or did not come from this console; reload the page and try again")
)

// checkForm refuses a state-changing request that another origin sent
// (Sec-Fetch-Site, Origin) or that lacks the form token bound to the
// browser's session (or pre-session) cookie. It parses the form.
func (c *Console) checkForm(w http.ResponseWriter, r *http.Request) error {
	if err := c.origin.Check(r); err != nil {
		return errCrossOrigin
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return errCSRF
	}
	got := r.PostForm.Get("csrf")
	if got == "" {
		return errCSRF
	}
	for _, name := range []string{c.session, c.pre} {
		if ck, err := r.Cookie(name); err == nil && ck.Value != "" && hmac.Equal([]byte(got), []byte(csrfToken(ck.Value))) {
			return nil
		}
	}
	return errCSRF
}

// csrfToken is the form token bound to a cookie's secret value: an HMAC
// keyed by it, so only a page that could read the HttpOnly cookie's value
// (the console's own, server side) can make one, on any serve instance.
func csrfToken(binding string) string {
	m := hmac.New(sha256.New, []byte(binding))
	m.Write([]byte("keyledger console form v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// page is what every template gets.
type page struct {
	Title    string
	CSRF     string
	SignedIn bool
	Error    string
	Notice   string
	Data     any
	// Me is who is signed in (set by render on signed-in pages).
	Me *client.Me
}

// render writes the page named name with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := c.pages[name]
	if !ok {
		c.logger.Error("console: no such page", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if p.CSRF == "" {
		p.CSRF = c.formToken(w, r)
	}
	if me, ok := meFrom(r.Context()); ok && p.SignedIn && p.Me == nil {
		p.Me = &me
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		c.logger.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// formToken returns the CSRF token for the forms of a page: bound to the
// session cookie when there is one, otherwise to a pre-session cookie,
// set here if the browser has none yet.
func (c *Console) formToken(w http.ResponseWriter, r *http.Request) string {
	if tok, ok := c.token(r); ok {
		return csrfToken(tok)
	}
	if ck, err := r.Cookie(c.pre); err == nil && len(ck.Value) >= 32 {
		return csrfToken(ck.Value)
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, c.cookie(c.pre, v, time.Time{}))
	// The same request may render a form twice (an error page): keep the
	// value for it.
	r.AddCookie(&http.Cookie{Name: c.pre, Value: v})
	return csrfToken(v)
}

// cookie builds one of the console's cookies: HttpOnly, SameSite=Strict,
// Path=/, Secure under TLS. A zero expiry makes a browser-session cookie.
func (c *Console) cookie(name, value string, expires time.Time) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: c.tls, SameSite: http.SameSiteStrictMode}
	if !expires.IsZero() {
		ck.Expires = expires
	}
	return ck
}

// token returns the session token the browser's cookie holds.
func (c *Console) token(r *http.Request) (string, bool) {
	ck, err := r.Cookie(c.session)
	if err != nil || ck.Value == "" {
		return "", false
	}
	return ck.Value, true
}

// clearSession removes the session cookie.
func (c *Console) clearSession(w http.ResponseWriter) {
	ck := c.cookie(c.session, "", time.Time{})
	ck.MaxAge = -1
	http.SetCookie(w, ck)
}

// RedirectRoot answers GET / with a redirect to the console.
func RedirectRoot(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// RedirectVerify answers GET /verify, where a sign-up mail's link points,
// with a redirect to the console's confirmation page, keeping the query.
// Like that page, it verifies nothing by itself.
func RedirectVerify(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	target := Prefix + "verify"
	if q := r.URL.Query().Get("token"); q != "" {
		target += "?token=" + url.QueryEscape(q)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}
