package handlers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/httpsig"
)

// Admin requests signed with an admin's key (RFC 9421, tag
// keyledger-admin-v1): the signature is the authority. The key id must be
// an admin key the log enrolled and has not revoked; the signature must
// cover the method, the target URI and the body's digest, be created
// within AdminSignatureWindow of the server's clock, and carry a nonce no
// serve on the log has seen before (AdminNonces). The request is then its
// admin's act: the actor recorded is admin:<name> of the key, whatever the
// request says, and the signature is kept in the events it causes.

// AdminSignatureWindow is how far an admin signature's created time may be
// from the server's clock, and how long a signature may be valid.
const AdminSignatureWindow = 5 * time.Minute

// AdminNonceTTL is how long the nonce of an accepted admin signature must
// be remembered: a signature is accepted from AdminSignatureWindow before
// its created time (clock skew) until AdminSignatureWindow after its
// expiry, at most AdminSignatureWindow after created, so for three windows;
// a fourth covers the clocks of serves and NATS disagreeing.
const AdminNonceTTL = 4 * AdminSignatureWindow

// adminPrincipal is who an admin request acts for.
type adminPrincipal struct {
	actor   string
	request *domain.SignedRequest // nil for a session
}

type adminKey struct{}

func adminFrom(ctx context.Context) adminPrincipal {
	p, _ := ctx.Value(adminKey{}).(adminPrincipal)
	return p
}

// adminActor is the actor recorded for an admin acting over HTTP.
func adminActor(r *http.Request) string { return adminFrom(r.Context()).actor }

// adminRequest is the signed request kept in the events (nil: a session).
func adminRequest(r *http.Request) *domain.SignedRequest { return adminFrom(r.Context()).request }

// errAdminSignature is what a refused admin signature answers: no detail
// an attacker could use to tell an unknown key from a bad signature.
var errAdminSignature = domain.Errorf(domain.Unauthorized, "invalid admin signature")

// admin lets only admins through: a request signed with an enrolled
// admin key (no Authorization field), or an admin user's session (anyone
// else signed in gets 403).
func (a *API) admin(next http.HandlerFunc) http.HandlerFunc {
	session := a.authenticated(func(w http.ResponseWriter, r *http.Request) {
		u := userFrom(r.Context())
		if !u.IsAdmin() {
			writeError(w, r, a.logger, domain.Errorf(domain.Forbidden, "admin role required"))
			return
		}
		p := adminPrincipal{actor: domain.AdminActor(u.ID)}
		next(w, r.WithContext(context.WithValue(r.Context(), adminKey{}, p)))
	})
	return func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Values("Authorization")) > 0 || len(r.Header.Values("Signature-Input")) == 0 {
			session(w, r)
			return
		}
		p, err := a.verifyAdmin(w, r)
		if err != nil {
			if domain.KindOf(err) == domain.Unauthorized {
				w.Header().Set("WWW-Authenticate", `Signature realm="keyledger-admin"`)
				a.logger.Warn("admin signature refused", "request_id", requestIDFrom(r), "err", err)
				if !errors.Is(err, errReplay) {
					err = errAdminSignature
				}
			}
			writeError(w, r, a.logger, err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), adminKey{}, p)))
	}
}

// verifyAdmin checks an admin signature and leaves the body, read, for the
// handler. Errors: Unauthorized (the reason is for the log only),
// TooLarge, Invalid, Unavailable.
func (a *API) verifyAdmin(w http.ResponseWriter, r *http.Request) (adminPrincipal, error) {
	s, err := httpsig.ParseTagged(r, httpsig.AdminTag)
	if err != nil {
		return adminPrincipal{}, domain.Wrap(domain.Unauthorized, err, "")
	}
	if err := s.CheckTime(a.ledger.Now(), AdminSignatureWindow, AdminSignatureWindow); err != nil {
		return adminPrincipal{}, domain.Wrap(domain.Unauthorized, err, "")
	}
	name, pub, ok := a.ledger.AdminByKey(s.KeyID)
	if !ok {
		return adminPrincipal{}, domain.Errorf(domain.Unauthorized, "admin key %q is not enrolled or was revoked", s.KeyID)
	}
	if !s.Verify(pub[:]) {
		return adminPrincipal{}, domain.Errorf(domain.Unauthorized, "bad signature by admin key %s", s.KeyID)
	}
	body, err := readBody(w, r)
	if err != nil {
		return adminPrincipal{}, err
	}
	if err := s.CheckBody(body); err != nil {
		return adminPrincipal{}, domain.Wrap(domain.Unauthorized, err, "")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	// Last, once everything else holds: only an enrolled admin's valid
	// signature takes room in the bucket. No bucket, no admin request.
	if err := a.adminNonces.Record(r.Context(), s.KeyID, s.Nonce); err != nil {
		if domain.KindOf(err) == domain.Unauthorized {
			return adminPrincipal{}, errReplay
		}
		return adminPrincipal{}, err
	}
	req := &domain.SignedRequest{KeyID: s.KeyID, Input: s.Input(), Signature: s.Bytes(), Base: string(s.Base())}
	return adminPrincipal{actor: domain.AdminActor(name), request: req}, nil
}

// AdminNonces remembers the nonces of accepted admin signatures for every
// serve on the log and across restarts (package adminnonce).
type AdminNonces interface {
	// Record records that the admin key keyID signed a request with
	// nonce; of the calls with the same pair, on any serve, exactly one
	// returns nil. Errors: Unauthorized (recorded before: a replay),
	// Unavailable (nothing may be assumed recorded).
	Record(ctx context.Context, keyID, nonce string) error
}

// errReplay is what a replayed admin signature answers. It says more than
// errAdminSignature only to whoever holds a signature that verifies: the
// admin whose client sent a request twice, or someone who captured one and
// knows already.
var errReplay = domain.Errorf(domain.Unauthorized, "admin signature replayed")
