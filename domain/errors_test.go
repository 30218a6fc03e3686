package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

func TestError(t *testing.T) {
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
