package httperr_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/httperr"
)

func TestStatus(t *testing.T) {
	tests := []struct {
		kind domain.Kind
		want int
	}{
		{domain.Internal, http.StatusInternalServerError},
		{domain.Invalid, http.StatusBadRequest},
		{domain.NotFound, http.StatusNotFound},
		{domain.Conflict, http.StatusConflict},
		{domain.Unauthorized, http.StatusUnauthorized},
		{domain.TooLarge, http.StatusRequestEntityTooLarge},
		{domain.RateLimited, http.StatusTooManyRequests},
		{domain.Unavailable, http.StatusServiceUnavailable},
		{domain.Forbidden, http.StatusForbidden},
		{domain.IdempotencyKeyReused, http.StatusUnprocessableEntity},
		{domain.IdempotencyKeyInUse, http.StatusConflict},
		{domain.PreconditionFailed, http.StatusPreconditionFailed},
		{domain.UsageExceeded, http.StatusTooManyRequests},
		{domain.Kind("no_such_kind"), http.StatusInternalServerError},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			if got := httperr.Status(tc.kind); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if got, want := len(httperr.Kinds()), len(tests)-1; got != want {
		t.Errorf("Kinds: got %d kinds, want %d (a kind added to domain needs a status here and a row above)", got, want)
	}
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name           string
		err            error
		wantStatus     int
		wantBody       string
		wantRetryAfter string
	}{
		{"Invalid", domain.Errorf(domain.Invalid, "name too long"), http.StatusBadRequest,
			`{"error":{"code":"invalid","message":"name too long"}}`, ""},
		{"RateLimitedRoundsUp", fmt.Errorf("login: %w", domain.RateLimitedFor(1500*time.Millisecond, "slow down")),
			http.StatusTooManyRequests, `{"error":{"code":"rate_limited","message":"slow down"}}`, "2"},
		{"RateLimitedUnderASecond", domain.RateLimitedFor(time.Millisecond, "slow down"),
			http.StatusTooManyRequests, `{"error":{"code":"rate_limited","message":"slow down"}}`, "1"},
		{"UnavailableWithRetryAfter", &domain.Error{Kind: domain.Unavailable, Message: "catching up", RetryAfter: time.Second},
			http.StatusServiceUnavailable, `{"error":{"code":"unavailable","message":"catching up"}}`, "1"},
		{"InternalHidesCause", domain.Wrap(domain.Internal, errors.New("secret sk_123 in a cause"), "details"),
			http.StatusInternalServerError, `{"error":{"code":"internal","message":"internal error"}}`, ""},
		{"PlainError", errors.New("disk on fire"), http.StatusInternalServerError,
			`{"error":{"code":"internal","message":"internal error"}}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			httperr.Write(rec, tc.err)
			if rec.Code != tc.wantStatus {
				t.Errorf("status: got %v, want %v", rec.Code, tc.wantStatus)
			}
			if got := rec.Body.String(); got != tc.wantBody+"\n" {
				t.Errorf("body: got %q, want %q", got, tc.wantBody+"\n")
			}
			if got := rec.Header().Get("Retry-After"); got != tc.wantRetryAfter {
				t.Errorf("Retry-After: got %q, want %q", got, tc.wantRetryAfter)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", got)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options: got %q, want nosniff", got)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		rec := httptest.NewRecorder()
		httperr.WriteJSON(rec, http.StatusCreated, map[string]int{"n": 1})
		if rec.Code != http.StatusCreated || rec.Body.String() != "{\"n\":1}\n" {
			t.Errorf("got %d %q, want 201 {\"n\":1}", rec.Code, rec.Body.String())
		}
	})
	t.Run("ErrUnencodable", func(t *testing.T) {
		rec := httptest.NewRecorder()
		httperr.WriteJSON(rec, http.StatusOK, map[string]any{"f": func() {}})
		want := `{"error":{"code":"internal","message":"internal error"}}` + "\n"
		if rec.Code != http.StatusInternalServerError || rec.Body.String() != want {
			t.Errorf("got %d %q, want 500 %q", rec.Code, rec.Body.String(), want)
		}
	})
	t.Run("WriteCode", func(t *testing.T) {
		rec := httptest.NewRecorder()
		httperr.WriteCode(rec, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
		want := `{"error":{"code":"method_not_allowed","message":"method not allowed"}}` + "\n"
		if rec.Code != http.StatusMethodNotAllowed || rec.Body.String() != want {
			t.Errorf("got %d %q, want 405 %q", rec.Code, rec.Body.String(), want)
		}
	})
}
