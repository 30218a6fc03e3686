package validator

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/httperr"
)

// Header names of the validated identity, set on /validate's 200 answer
// (for forward-auth proxies) and on requests Middleware lets through.
const (
	HeaderUser = "X-Keyledger-User"
	HeaderKey  = "X-Keyledger-Key"
	// HeaderOwner and HeaderOwnerType say who owns the key: the owner's id
	// (a user's usr_..., or a team's tm_...) and "user" or "team". A team's
	// key carries in HeaderUser the member who created it: authorize by
	// the owner.
	HeaderOwner     = "X-Keyledger-Owner"
	HeaderOwnerType = "X-Keyledger-Owner-Type"
	// HeaderScopes carries the key's granted scopes, space-separated.
	HeaderScopes = "X-Keyledger-Scopes"
	// HeaderRequiredScopes is what a caller of /validate (a forward-auth
	// proxy) says the request needs, space-separated; with the query
	// parameter QueryScope, every scope named must be granted.
	HeaderRequiredScopes = "X-Keyledger-Required-Scopes"
	// QueryScope is /validate's query parameter naming one required
	// scope; it may be repeated.
	QueryScope = "scope"
)

// errMissingScope answers a valid key that lacks a required scope: the
// key is fine, the permission is missing.
func errMissingScope(scope string) error {
	return domain.Errorf(domain.Forbidden, "the API key is not granted the required scope %q", scope)
}

// requiredScopes returns the scopes a /validate request requires: its
// QueryScope parameters and its HeaderRequiredScopes. Errors: Invalid
// for a scope that is not valid or too many of them.
func requiredScopes(r *http.Request) ([]string, error) {
	var out []string
	for _, h := range r.Header.Values(HeaderRequiredScopes) {
		scopes, err := domain.ParseRequiredScopes(h)
		if err != nil {
			return nil, err
		}
		out = append(out, scopes...)
	}
	for _, q := range r.URL.Query()[QueryScope] {
		if !domain.ValidScope(q) {
			return nil, domain.Errorf(domain.Invalid, "required scope %q is not a valid scope", q)
		}
		out = append(out, q)
	}
	if len(out) > domain.MaxScopes {
		return nil, domain.Errorf(domain.Invalid, "at most %d required scopes", domain.MaxScopes)
	}
	return out, nil
}

// RequireScopes returns middleware that lets a request through only when
// the identity Middleware validated for it is granted every one of
// scopes: a request without one gets 401 with WWW-Authenticate: ApiKey
// (RequireScopes must run inside Middleware), a key lacking a scope 403
// {"error":{"code":"forbidden",...}}. It panics on a scope that is not
// valid: that is a programming error, and failing at start is safer than
// refusing or granting at run time.
func RequireScopes(scopes ...string) func(http.Handler) http.Handler {
	for _, s := range scopes {
		if !domain.ValidScope(s) {
			panic("validator.RequireScopes: invalid scope " + strconv.Quote(s))
		}
	}
	required := slices.Clone(scopes)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, ok := IdentityFrom(r.Context())
			if !ok {
				w.Header().Set("WWW-Authenticate", "ApiKey")
				httperr.Write(w, ErrUnauthorized)
				return
			}
			if missing, ok := id.MissingScope(required...); ok {
				httperr.Write(w, errMissingScope(missing))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

type identityKey struct{}

// IdentityFrom returns the identity Middleware put in a request's context.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// ValidateRequest validates the credentials of an HTTP request that this
// process received: headers x-api-key: base64(api_key) and x-api-secret:
// base64(secret), or Authorization: ApiKey base64(api_key:secret), or a
// signature (Signature-Input and Signature, see ValidateSigned; then the
// body is read, up to MaxSignedBody, to check its digest, and r.Body
// replaced with a copy). Exactly one of these: a credential header sent
// twice, or two styles at once, is refused with
// domain.ErrAmbiguousCredentials (see domain.ParseCredentials). It returns
// the identity, the reason (for logs and metrics only), and the errors of
// Validate.
func (v *Validator) ValidateRequest(r *http.Request) (Identity, domain.Reason, error) {
	id, reason, err := v.validateRequest(r)
	if err != nil {
		return Identity{}, reason, err
	}
	if reason, err := v.admit(r.Context(), &id, 1); err != nil {
		return Identity{}, reason, err
	}
	return id, reason, nil
}

// validateRequest is ValidateRequest before the key's limits (see
// validate).
func (v *Validator) validateRequest(r *http.Request) (Identity, domain.Reason, error) {
	if isSigned(r.Header) {
		body, err := readSignedBody(r)
		if err != nil {
			v.metrics.outcome(domain.ReasonMalformedSignature)
			return Identity{}, domain.ReasonMalformedSignature, ErrUnauthorized
		}
		return v.signed(r.Header, v.target(r), body, true)
	}
	apiKey, secret, err := parseCredentials(r.Header)
	if err != nil {
		reason := domain.ReasonMalformed
		if errors.Is(err, domain.ErrAmbiguousCredentials) {
			reason = domain.ReasonAmbiguous
		}
		v.metrics.outcome(reason)
		return Identity{}, reason, err
	}
	return v.validateSecret(apiKey, secret)
}

// Middleware lets through requests whose API-key credentials validate,
// with the identity in the request context (see IdentityFrom) and in the
// X-Keyledger-User, X-Keyledger-Key and X-Keyledger-Scopes headers, which
// replace any the client sent (use RequireScopes after it to demand
// scopes); the secret's header (x-api-secret, or an ApiKey
// Authorization) is removed so nothing downstream can log it. Anything
// else is refused before next runs: 401 with
// WWW-Authenticate: ApiKey for bad credentials, 429 with Retry-After for a
// key refused after too many failures, 503 when the node cannot vouch for
// its view. A key with limits is charged 1 for each request let through:
// past its rate limit 429 rate_limited, out of credits 429
// usage_exceeded; the RateLimit-Policy, RateLimit and
// X-Keyledger-Credits-Remaining headers tell the client where it stands.
func (v *Validator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, reason, err := v.validateRequest(r)
		if err == nil {
			reason, err = v.admit(r.Context(), &id, 1)
			writeLimitHeaders(w.Header(), id)
		}
		if err != nil {
			v.refuse(w, reason, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		r.Header = r.Header.Clone()
		r.Header.Set(HeaderUser, id.UserID)
		r.Header.Set(HeaderOwner, id.OwnerID)
		r.Header.Set(HeaderOwnerType, id.OwnerType)
		r.Header.Set(HeaderKey, id.APIKey)
		r.Header.Set(HeaderScopes, strings.Join(id.Scopes, " "))
		r.Header.Del("X-Api-Secret")
		if isAPIKeyAuthorization(r.Header) {
			r.Header.Del("Authorization")
		}
		next.ServeHTTP(w, r)
	})
}

// ValidateHandler answers /validate: 200
// {"api_key","user_id","owner_type","owner_id","created_by","name","scopes","metadata"}
// with the identity also in X-Keyledger-User, X-Keyledger-Owner,
// X-Keyledger-Owner-Type, X-Keyledger-Key and X-Keyledger-Scopes; the same
// 401 with WWW-Authenticate: ApiKey for every bad credential; 403
// forbidden for a valid key lacking a scope the request requires (query
// parameter scope, repeatable, and header X-Keyledger-Required-Scopes,
// space-separated: all must be granted); 400 for required scopes that are
// not valid scopes; 429 with Retry-After for a key refused after too many
// failures (see WithFailureLimit); 503 when the node cannot vouch for its
// view. A key with limits is charged the request's cost (query parameter
// cost or header X-Keyledger-Cost, 1 by default; 400 when malformed):
// past its rate limit 429 rate_limited, out of credits 429
// usage_exceeded, its limits out of reach 503; the answer (200 or 429)
// carries rate_limit and credits in the body and the RateLimit-Policy,
// RateLimit and X-Keyledger-Credits-Remaining headers for a proxy to pass
// on. It reads only headers and the query and accepts any method, so it
// serves as nginx auth_request and Traefik ForwardAuth target.
func (v *Validator) ValidateHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.ContentLength != 0 && !isSigned(r.Header) {
			// The body is not read: close rather than wait for a body a
			// proxy announced but never sends.
			w.Header().Set("Connection", "close")
		}
		required, err := requiredScopes(r)
		if err != nil {
			httperr.Write(w, err)
			return
		}
		cost, err := ParseCost(r.URL.Query()["cost"], r.Header.Values(HeaderCost))
		if err != nil {
			httperr.Write(w, err)
			return
		}
		id, reason, err := v.validateForwarded(w, r)
		if err != nil {
			v.refuse(w, reason, err)
			return
		}
		if missing, ok := id.MissingScope(required...); ok {
			// Counted besides the credential's own ok outcome; not charged
			// to the key's limits.
			v.metrics.outcome(domain.ReasonOK)
			v.metrics.outcome(domain.ReasonMissingScope)
			v.opts.usage.Record(id.APIKey, domain.ReasonMissingScope, v.opts.now())
			v.logger.Debug("validation refused", "reason", domain.ReasonMissingScope)
			httperr.Write(w, errMissingScope(missing))
			return
		}
		reason, err = v.admit(r.Context(), &id, cost)
		writeLimitHeaders(w.Header(), id)
		if err != nil {
			v.refuse(w, reason, err)
			return
		}
		w.Header().Set(HeaderUser, id.UserID)
		w.Header().Set(HeaderOwner, id.OwnerID)
		w.Header().Set(HeaderOwnerType, id.OwnerType)
		w.Header().Set(HeaderKey, id.APIKey)
		w.Header().Set(HeaderScopes, strings.Join(id.Scopes, " "))
		httperr.WriteJSON(w, http.StatusOK, id)
	})
}

// validateForwarded validates what /validate is asked about. Plain
// credentials are read from the headers. A signed request is the original
// request a forward-auth proxy describes in X-Forwarded-Method, -Proto,
// -Host and -Uri, when the proxy is trusted (see WithTrustedProxy), or,
// without them, the request itself. Its body is
// checked when one comes along (Traefik's forwardBody, or a direct call);
// when a proxy sends none, the signed Content-Digest ("none" if the
// signature covers no body) is answered in X-Keyledger-Content-Digest, for
// the upstream to check with CheckForwardedBody.
func (v *Validator) validateForwarded(w http.ResponseWriter, r *http.Request) (Identity, domain.Reason, error) {
	if !isSigned(r.Header) {
		return v.validateRequest(r)
	}
	t, forwarded, err := v.forwardedTarget(r)
	if err != nil {
		v.metrics.outcome(domain.ReasonMalformedSignature)
		return Identity{}, domain.ReasonMalformedSignature, ErrUnauthorized
	}
	if !forwarded {
		return v.validateRequest(r)
	}
	if r.ContentLength != 0 {
		body, err := readSignedBody(r)
		if err != nil {
			v.metrics.outcome(domain.ReasonMalformedSignature)
			return Identity{}, domain.ReasonMalformedSignature, ErrUnauthorized
		}
		return v.signed(r.Header, t, body, true)
	}
	id, reason, err := v.signed(r.Header, t, nil, false)
	if err == nil {
		digest := r.Header.Get("Content-Digest")
		if digest == "" {
			digest = noBody
		}
		w.Header().Set(digestHeader, digest)
	}
	return id, reason, err
}

// Handler serves a validation node: /validate, /healthz and /readyz (200
// with the applied sequence once ready, 503 before). /metrics is not on
// it: serve MetricsHandler on a listener that is not public.
func (v *Validator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/validate", v.ValidateHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httperr.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		st := v.Status()
		code := http.StatusOK
		if !st.Ready {
			code = http.StatusServiceUnavailable
		}
		httperr.WriteJSON(w, code, st)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		httperr.Write(w, errNoRoute)
	})
	return mux
}

var errNoRoute = domain.Errorf(domain.NotFound, "no such route")

// refuse answers a validation that failed: 503 or 429, with Retry-After,
// when err says the node cannot vouch for its view or the key is over its
// failure limit; for anything else the one 401 every bad credential gets,
// with WWW-Authenticate: ApiKey. The reason goes to the log only. The one
// exception is ambiguous credentials, decided before anything is looked
// up: their 401 says what to send instead.
func (v *Validator) refuse(w http.ResponseWriter, reason domain.Reason, err error) {
	v.logger.Debug("validation refused", "reason", reason)
	switch k := domain.KindOf(err); k {
	case domain.Unavailable, domain.RateLimited, domain.UsageExceeded:
		// The body's code as a header too, for a proxy that cannot read
		// the body (nginx's auth_request).
		w.Header().Set(HeaderError, string(k))
		httperr.Write(w, err)
		return
	}
	w.Header().Set("WWW-Authenticate", "ApiKey")
	if reason == domain.ReasonAmbiguous {
		httperr.Write(w, domain.ErrAmbiguousCredentials)
		return
	}
	httperr.Write(w, ErrUnauthorized)
}

// parseCredentials reads a request's API-key credentials from every value
// of its credential header fields: the one place that decides is
// domain.ParseCredentials.
func parseCredentials(h http.Header) (string, domain.Secret, error) {
	return domain.ParseCredentials(h.Values("X-Api-Key"), h.Values("X-Api-Secret"), h.Values("Authorization"))
}

// isAPIKeyAuthorization reports whether h carries an Authorization of the
// ApiKey scheme (compared in ASCII).
func isAPIKeyAuthorization(h http.Header) bool {
	for _, v := range h.Values("Authorization") {
		scheme, _, _ := strings.Cut(strings.Trim(v, " \t"), " ")
		if domain.EqualFoldASCII(scheme, "apikey") {
			return true
		}
	}
	return false
}
