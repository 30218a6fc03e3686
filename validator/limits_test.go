package validator_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testclock"
	"github.com/keyledger/keyledger/validator"
)

// wantRateLimited validates once and wants a refusal after too many
// failures, lasting retryAfter.
func wantRateLimited(t testing.TB, v *validator.Validator, apiKey string, secret domain.Secret, retryAfter time.Duration) {
	t.Helper()
	id, err := v.Validate(context.Background(), apiKey, secret.Reveal())
	if !errors.Is(err, validator.ErrRateLimited) || id.APIKey != "" {
		t.Fatalf("Validate(%s): got %+v, %v, want ErrRateLimited", apiKey, id, err)
	}
	if domain.KindOf(err) != domain.RateLimited || domain.RetryAfterOf(err) != retryAfter {
		t.Fatalf("got kind %v, retry after %v, want rate_limited and %v", domain.KindOf(err), domain.RetryAfterOf(err), retryAfter)
	}
}

// TestValidator_FailureLimit: after the limit of failed validations of a
// key id within the window, that key id's failing validations are answered
// ErrRateLimited for a window while the right secret still passes (so a
// stranger who knows the key id cannot shut its owner out); other keys are
// not touched; unknown key ids are limited alike, so a refusal tells
// nothing about existence.
func TestValidator_FailureLimit(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	other, otherSecret := e.l.CreateKey(t, e.user.ID)
	_, wrong := e.l.CreateKey(t, e.user.ID) // a well-formed secret of another key
	clock := testclock.New(time.Now())
	// The staleness bound is far: advancing the clock must not make the
	// node stale.
	v, _ := openValidator(t, natstest.Connect(t, e.srv), validator.WithClock(clock.Now),
		validator.WithMaxStaleness(time.Hour), validator.WithFailureLimit(3, time.Minute))
	awaitReady(t, v)

	wantAccepted(t, v, k, secret) // successes do not count
	for range 3 {
		wantRejected(t, v, k.APIKey, wrong)
	}
	wantRateLimited(t, v, k.APIKey, wrong, time.Minute)
	wantAccepted(t, v, k, secret) // the owner is not shut out
	wantRateLimited(t, v, k.APIKey, wrong, time.Minute)
	wantAccepted(t, v, other, otherSecret)

	const unknown = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"
	for range 3 {
		wantRejected(t, v, unknown, wrong)
	}
	wantRateLimited(t, v, unknown, wrong, time.Minute)

	clock.Advance(45 * time.Second)
	wantRateLimited(t, v, k.APIKey, wrong, 15*time.Second)
	clock.Advance(15 * time.Second)
	wantAccepted(t, v, k, secret)
	wantRejected(t, v, k.APIKey, wrong) // the count started over
	wantAccepted(t, v, k, secret)

	// Over HTTP: 429 with Retry-After in whole seconds and a JSON error,
	// from /validate and from Middleware (which does not call next).
	for range 2 {
		wantRejected(t, v, k.APIKey, wrong)
	}
	clock.Advance(500 * time.Millisecond)
	node := httptest.NewServer(v.Handler())
	t.Cleanup(node.Close)
	var calls atomic.Int64
	app := httptest.NewServer(v.Middleware(identityHandler(&calls)))
	t.Cleanup(app.Close)
	for _, url := range []string{node.URL + "/validate", app.URL + "/anything"} {
		r := do(t, http.MethodGet, url, xAPIHeaders(k.APIKey, wrong.Reveal()))
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "60" {
			t.Fatalf("%s: got %d, Retry-After %q, want 429 and 60", url, r.status, r.header.Get("Retry-After"))
		}
		if want := `{"error":{"code":"rate_limited","message":"too many failed validations of this API key, try again later"}}` + "\n"; r.body != want {
			t.Fatalf("%s: got body %q, want %q", url, r.body, want)
		}
	}
	if calls.Load() != 0 {
		t.Fatalf("Middleware let %d rate-limited requests through, want none", calls.Load())
	}
	if r := do(t, http.MethodGet, app.URL+"/anything", xAPIHeaders(k.APIKey, secret.Reveal())); r.status != http.StatusOK || calls.Load() != 1 {
		t.Fatalf("the right secret during the block: got %d (%d calls), want 200 and one call", r.status, calls.Load())
	}
	if got := metricValue(t, scrape(t, v), `keyledger_validations_total{outcome="rate_limited"}`); got != 6 {
		t.Errorf(`keyledger_validations_total{outcome="rate_limited"}: got %v, want 6`, got)
	}
}

// TestValidator_FailureLimitDefaultAndOff: by default (and with
// WithFailureLimit(0, 0), zero meaning the default) a key is refused after
// DefaultFailureLimit failures; NoLimit turns the limit off.
func TestValidator_FailureLimitDefaultAndOff(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	_, wrong := e.l.CreateKey(t, e.user.ID)
	nc := natstest.Connect(t, e.srv)
	def, _ := openValidator(t, nc, validator.WithFailureLimit(0, 0))
	off, _ := openValidator(t, nc, validator.WithFailureLimit(validator.NoLimit, 0))
	awaitReady(t, def)
	awaitReady(t, off)
	for range validator.DefaultFailureLimit {
		wantRejected(t, def, k.APIKey, wrong)
	}
	id, err := def.Validate(context.Background(), k.APIKey, wrong.Reveal())
	if !errors.Is(err, validator.ErrRateLimited) || domain.RetryAfterOf(err) <= 0 || domain.RetryAfterOf(err) > validator.DefaultFailureWindow {
		t.Fatalf("default limit: got %+v, %v (retry after %v), want ErrRateLimited", id, err, domain.RetryAfterOf(err))
	}
	wantAccepted(t, def, k, secret)
	for range 5 * validator.DefaultFailureLimit {
		wantRejected(t, off, k.APIKey, wrong)
	}
	wantAccepted(t, off, k, secret)
}

func TestWithFailureLimit_Invalid(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	nc := natstest.Connect(t, e.srv)
	for _, opt := range []validator.Option{validator.WithFailureLimit(validator.NoLimit-1, time.Minute),
		validator.WithFailureLimit(3, -time.Minute)} {
		if v, err := validator.Open(context.Background(), nc, nil, opt); err == nil {
			v.Close()
			t.Error("got nil error, want one")
		} else if domain.KindOf(err) != domain.Invalid {
			t.Errorf("got %v, want an Invalid error", err)
		}
	}
}

func TestValidator_RateLimitedError(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, _ := e.l.CreateKey(t, e.user.ID)
	_, wrong := e.l.CreateKey(t, e.user.ID)
	v, _ := openValidator(t, natstest.Connect(t, e.srv), validator.WithFailureLimit(1, time.Minute))
	awaitReady(t, v)
	wantRejected(t, v, k.APIKey, wrong)
	_, err := v.Validate(context.Background(), k.APIKey, wrong.Reveal())
	if want := "too many failed validations of this API key, try again later"; err == nil || err.Error() != want || domain.MessageOf(err) != want {
		t.Fatalf("got %v (message %q), want %q once", err, domain.MessageOf(err), want)
	}
}
