// Package domain holds keyledger's aggregates (users and API keys), the
// events that change them, the rules that decide which events a command may
// record, and the one error type every layer speaks.
//
// It depends on the standard library only: no NATS, no HTTP, no logging, and
// it never reads the clock. Callers pass the time and the identifiers in.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error for callers: transports map it to a status code.
// The list is append-only.
type Kind string

// Error kinds. Append only; never renumber or rename.
const (
	// Internal is any failure the caller cannot fix; details stay in logs.
	Internal Kind = "internal"
	// Invalid is input that breaks a rule (format, length, range).
	Invalid Kind = "invalid"
	// NotFound is a missing resource, or one the caller may not see.
	NotFound Kind = "not_found"
	// Conflict is a state that forbids the command (revoked key, taken email,
	// or a concurrent change that won the race).
	Conflict Kind = "conflict"
	// Unauthorized is missing or wrong credentials.
	Unauthorized Kind = "unauthorized"
	// TooLarge is input above a size limit.
	TooLarge Kind = "too_large"
	// RateLimited is a caller that must slow down.
	RateLimited Kind = "rate_limited"
	// Unavailable is a dependency that cannot be reached right now; retrying
	// later may succeed.
	Unavailable Kind = "unavailable"
	// Forbidden is a caller who is known but may not do this.
	Forbidden Kind = "forbidden"
	// IdempotencyKeyReused is an idempotency key sent again with a
	// different request (body, path, method or caller) than its first.
	IdempotencyKeyReused Kind = "idempotency_key_reused"
	// IdempotencyKeyInUse is an idempotency key whose first request is
	// still running; retrying later gets its outcome.
	IdempotencyKeyInUse Kind = "idempotency_key_in_use"
	// PreconditionFailed is a change made on the condition that its
	// target is still at a version it no longer is (HTTP If-Match).
	PreconditionFailed Kind = "precondition_failed"
	// UsageExceeded is a key without credits enough left for the request.
	UsageExceeded Kind = "usage_exceeded"
)

// Error is the error type of keyledger. Message is safe to show to a client;
// Err, when set, is the cause and is only for logs.
type Error struct {
	Kind    Kind
	Message string
	Err     error
	// RetryAfter, when positive, is how long the caller should wait before
	// trying again (RateLimited, Unavailable); transports send it on, as
	// HTTP's Retry-After.
	RetryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Message != "":
		return e.Message + ": " + e.Err.Error()
	case e.Err != nil:
		return e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether e matches target for errors.Is: besides e itself, a
// sentinel (an *Error with no cause) of the same kind and message matches,
// so an error made for one occasion, say with its own RetryAfter, still
// matches the sentinel it stands for.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Err == nil && t.Kind == e.Kind && t.Message == e.Message
}

// Errorf returns an *Error of kind k whose message is safe to show clients.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind k with a client-safe message and a cause
// that is only logged.
func Wrap(k Kind, err error, message string) *Error {
	return &Error{Kind: k, Message: message, Err: err}
}

// RateLimitedFor returns the error of a caller refused by a limit: kind
// RateLimited, the client-safe message, and d, how long until the limit
// lets the caller through again, as RetryAfter. Every limit answers with
// it; transports turn it into 429 and a Retry-After header.
func RateLimitedFor(d time.Duration, message string) *Error {
	return &Error{Kind: RateLimited, Message: message, RetryAfter: d}
}

// KindOf returns the kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// RetryAfterOf returns the RetryAfter of the first *Error in err's chain
// that has one, or 0.
func RetryAfterOf(err error) time.Duration {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return 0
		}
		if e.RetryAfter > 0 {
			return e.RetryAfter
		}
		err = e.Err
	}
	return 0
}

// RetryAfterSeconds is d in whole seconds, rounded up and at least 1: the
// value of a Retry-After header, which cannot say less than a second.
func RetryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// MessageOf returns the client-safe message of the first *Error in err's
// chain, or "internal error" when there is none or it is Internal.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal && e.Message != "" {
		return e.Message
	}
	return "internal error"
}
