package domain_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

func TestError(t *testing.T) {
	t.Parallel()
	cause := errors.New("disk on fire")
	tests := []struct {
		name        string
		err         error
		wantKind    domain.Kind
		wantMessage string
		wantError   string
	}{
		{"Errorf", domain.Errorf(domain.Invalid, "name must be at most %d characters", 100),
			domain.Invalid, "name must be at most 100 characters", "name must be at most 100 characters"},
		{"Wrap", domain.Wrap(domain.Unavailable, cause, "store unavailable"),
			domain.Unavailable, "store unavailable", "store unavailable: disk on fire"},
		{"WrapNoMessage", domain.Wrap(domain.Conflict, cause, ""),
			domain.Conflict, "internal error", "disk on fire"},
		{"WrappedByFmt", fmt.Errorf("append key: %w", domain.Errorf(domain.NotFound, "api key not found")),
			domain.NotFound, "api key not found", "append key: api key not found"},
		{"Internal", domain.Wrap(domain.Internal, cause, "details"),
			domain.Internal, "internal error", "details: disk on fire"},
		{"Plain", cause, domain.Internal, "internal error", "disk on fire"},
		{"Nil", nil, domain.Internal, "internal error", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := domain.KindOf(tc.err); got != tc.wantKind {
				t.Errorf("KindOf: got %v, want %v", got, tc.wantKind)
			}
			if got := domain.MessageOf(tc.err); got != tc.wantMessage {
				t.Errorf("MessageOf: got %v, want %v", got, tc.wantMessage)
			}
			if tc.err != nil && tc.err.Error() != tc.wantError {
				t.Errorf("Error: got %v, want %v", tc.err.Error(), tc.wantError)
			}
		})
	}

	if err := domain.Wrap(domain.Internal, cause, "x"); !errors.Is(err, cause) {
		t.Errorf("errors.Is(Wrap(cause), cause): got %v, want %v", false, true)
	}
}

func TestRetryAfterOf(t *testing.T) {
	t.Parallel()
	limited := &domain.Error{Kind: domain.RateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond}
	tests := []struct {
		name string
		err  error
		want time.Duration
	}{
		{"Set", limited, 1500 * time.Millisecond},
		{"WrappedByFmt", fmt.Errorf("login: %w", limited), 1500 * time.Millisecond},
		{"CauseOfAnError", domain.Wrap(domain.RateLimited, limited, "outer"), 1500 * time.Millisecond},
		{"Unset", domain.Errorf(domain.RateLimited, "slow down"), 0},
		{"Plain", errors.New("x"), 0},
		{"Nil", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := domain.RetryAfterOf(tc.err); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Duration
		want int
	}{
		{0, 1}, {time.Nanosecond, 1}, {time.Second, 1}, {time.Second + time.Nanosecond, 2},
		{1500 * time.Millisecond, 2}, {15 * time.Minute, 900}, {-time.Second, 1},
	}
	for _, tc := range tests {
		if got := domain.RetryAfterSeconds(tc.in); got != tc.want {
			t.Errorf("RetryAfterSeconds(%v): got %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestRateLimitedFor(t *testing.T) {
	t.Parallel()
	sentinel := domain.Errorf(domain.RateLimited, "slow down")
	err := fmt.Errorf("validate: %w", domain.RateLimitedFor(90*time.Second, "slow down"))
	if got := domain.KindOf(err); got != domain.RateLimited {
		t.Errorf("KindOf: got %v, want %v", got, domain.RateLimited)
	}
	if got := domain.RetryAfterOf(err); got != 90*time.Second {
		t.Errorf("RetryAfterOf: got %v, want %v", got, 90*time.Second)
	}
	if got := domain.MessageOf(err); got != "slow down" {
		t.Errorf("MessageOf: got %q, want %q", got, "slow down")
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("errors.Is(%v, sentinel of the same kind and message): got false, want true", err)
	}
	if errors.Is(err, domain.Errorf(domain.RateLimited, "another limit")) {
		t.Errorf("errors.Is with another message: got true, want false")
	}
	if errors.Is(err, domain.Errorf(domain.Unavailable, "slow down")) {
		t.Errorf("errors.Is with another kind: got true, want false")
	}
	if errors.Is(sentinel, domain.Wrap(domain.RateLimited, errors.New("cause"), "slow down")) {
		t.Errorf("errors.Is against an error with a cause: got true, want false (only sentinels match by value)")
	}
}
