package handlers

import (
	"bytes"
	"context"
	"net/http"
	"strings"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/idempotency"
	"github.com/keyledger/keyledger/internal/ledger"
)

// IdempotencyStore keeps the outcome of requests that carry an
// Idempotency-Key (see package idempotency).
type IdempotencyStore interface {
	// Begin claims the record of key for a request with fingerprint fp,
	// offering plan to run the command with. Errors: IdempotencyKeyReused,
	// IdempotencyKeyInUse, Unavailable, Internal.
	Begin(ctx context.Context, key idempotency.Key, fp [32]byte, plan []byte) (*idempotency.Claim, error)
	// Complete stores a claimed request's response. Errors: Conflict (the
	// claim was taken over), Unavailable.
	Complete(ctx context.Context, c *idempotency.Claim, resp idempotency.Response) error
	// Release gives a claim up, keeping its plan for the next retry.
	// Errors: Conflict, Unavailable.
	Release(ctx context.Context, c *idempotency.Claim) error
}

// Idempotency headers.
const (
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
)

// anonymousScope is the scope of Idempotency-Keys sent without a session
// (POST /users).
const anonymousScope = "anonymous"

// keptHeaders are the response headers a record keeps with the status and
// body: the rest (X-Request-Id, ...) belong to each attempt.
var keptHeaders = []string{"Content-Type", "Location", "Cache-Control"}

type presetKey struct{}

// presetFrom returns the identifiers a command must run with: those of its
// idempotency record, or a zero Preset (draw afresh) without one.
func presetFrom(ctx context.Context) ledger.Preset {
	p, _ := ctx.Value(presetKey{}).(ledger.Preset)
	return p
}

// idempotent runs next at most once per Idempotency-Key: a retry with the
// same key and the same request gets the first response again (with
// Idempotent-Replayed: true) and runs nothing; the same key with another
// request is 422; a retry while the first still runs is 409 with
// Retry-After. The command runs with identifiers chosen before it and kept
// in the record, so a retry that takes over the record of a request whose
// server died repeats the command rather than doing it twice. A request
// without the header passes straight through.
//
// Responses are kept but 5xx and 429: after those the record keeps only
// its identifiers, and the next retry runs the command again with them.
func (a *API) idempotent(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values(headerIdempotencyKey)
		if len(values) == 0 {
			next(w, r)
			return
		}
		if len(values) > 1 {
			writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "send one Idempotency-Key header"))
			return
		}
		if err := idempotency.ValidateKey(values[0]); err != nil {
			writeError(w, r, a.logger, err)
			return
		}
		body, err := readBody(w, r)
		if err != nil {
			writeError(w, r, a.logger, err)
			return
		}
		r.Body = http.NoBody
		if len(body) > 0 {
			r.Body = readCloser{bytes.NewReader(body)}
		}
		scope := userIDFrom(r.Context())
		if scope == "" {
			scope = anonymousScope
			if p := adminFrom(r.Context()); p.actor != "" {
				scope = p.actor // an admin's signed request: no user, but an admin
			}
		}
		fp := idempotency.Fingerprint(r.Method, r.Pattern, pathValues(r), scope, body)
		preset, err := a.ledger.NewPreset()
		if err != nil {
			writeError(w, r, a.logger, err)
			return
		}
		plan, err := preset.MarshalBinary()
		if err != nil {
			writeError(w, r, a.logger, domain.Wrap(domain.Internal, err, ""))
			return
		}
		claim, err := a.idempotency.Begin(r.Context(), idempotency.Key{Scope: scope, Value: values[0]}, fp, plan)
		if err != nil {
			writeError(w, r, a.logger, err) // in progress: 409 with Retry-After
			return
		}
		if claim.Replay != nil {
			replay(w, claim.Replay)
			return
		}
		if claim.TakenOver {
			if err := preset.UnmarshalBinary(claim.Plan); err != nil {
				writeError(w, r, a.logger, domain.Wrap(domain.Internal, err, ""))
				return
			}
			a.logger.Info("idempotency record taken over: running the command again with its identifiers",
				"request_id", requestIDFrom(r), "route", r.Pattern)
		}
		rec := &recorder{header: http.Header{}}
		a.runClaimed(rec, r, claim, preset, next)
		done := context.WithoutCancel(r.Context())
		resp := rec.response()
		// 5xx and 429 are not outcomes of the command but of the moment:
		// the next retry runs it again, with the same identifiers.
		if resp.Status >= 500 || resp.Status == http.StatusTooManyRequests {
			err = a.idempotency.Release(done, claim)
		} else {
			err = a.idempotency.Complete(done, claim, resp)
		}
		if err != nil {
			// The response stands: a retry finds the record pending and,
			// once its lease ends, repeats the command with the same
			// identifiers, which answers the same.
			a.logger.Warn("idempotency record not updated", "request_id", requestIDFrom(r), "kind", domain.KindOf(err), "err", err)
		}
		rec.writeTo(w)
	}
}

// runClaimed runs next under a claim: within its lease, with its
// identifiers. A panic releases the claim before it goes on up.
func (a *API) runClaimed(w http.ResponseWriter, r *http.Request, claim *idempotency.Claim, p ledger.Preset, next http.HandlerFunc) {
	defer func() {
		if v := recover(); v != nil {
			_ = a.idempotency.Release(context.WithoutCancel(r.Context()), claim)
			panic(v)
		}
	}()
	// Past the lease another request may run the command too: harmless
	// with the same identifiers, but there is no point going on.
	ctx, cancel := context.WithDeadline(r.Context(), claim.LeaseUntil)
	defer cancel()
	next(w, r.WithContext(context.WithValue(ctx, presetKey{}, p)))
}

// replay sends a stored response.
func replay(w http.ResponseWriter, resp *idempotency.Response) {
	for name, v := range resp.Header {
		w.Header().Set(name, v)
	}
	w.Header().Set(headerReplayed, "true")
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp.Body)
}

// pathValues returns the values of the route pattern's wildcards, in
// order.
func pathValues(r *http.Request) []string {
	var out []string
	rest := r.Pattern
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return out
		}
		name := strings.TrimSuffix(rest[i+1:i+j], "...")
		out = append(out, r.PathValue(name))
		rest = rest[i+j+1:]
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// recorder holds a response until its idempotency record is written.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.body.Write(b)
}

// response returns what a record keeps.
func (rec *recorder) response() idempotency.Response {
	resp := idempotency.Response{Status: rec.status, Header: map[string]string{}, Body: rec.body.Bytes()}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	for _, name := range keptHeaders {
		if v := rec.header.Get(name); v != "" {
			resp.Header[name] = v
		}
	}
	return resp
}

// writeTo sends the held response.
func (rec *recorder) writeTo(w http.ResponseWriter) {
	for name, v := range rec.header {
		w.Header()[name] = v
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(rec.body.Bytes())
}
