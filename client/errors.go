package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error codes the API puts in {"error":{"code"}}; Error.Code holds one of
// them (or, for an answer without a JSON error body, the code of its
// status).
const (
	CodeInvalid          = "invalid"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodeTooLarge         = "too_large"
	CodeRateLimited      = "rate_limited"
	// CodeIdempotencyKeyReused: the Idempotency-Key was used before for a
	// different request (422).
	CodeIdempotencyKeyReused = "idempotency_key_reused"
	// CodeIdempotencyKeyInUse: a request with the same Idempotency-Key is
	// still running; retry after RetryAfter (409).
	CodeIdempotencyKeyInUse = "idempotency_key_in_use"
	CodeUnavailable         = "unavailable"
	CodeInternal            = "internal"
	// CodeUsageExceeded: the key has no credits enough left for the
	// request (429).
	CodeUsageExceeded = "usage_exceeded"
	// CodePreconditionFailed: the key is no longer at the version
	// If-Match named (412).
	CodePreconditionFailed = "precondition_failed"
)

// codeOfStatus gives the code of an answer whose body is not a JSON error
// (a proxy's page, say).
var codeOfStatus = map[int]string{
	http.StatusBadRequest:            CodeInvalid,
	http.StatusUnauthorized:          CodeUnauthorized,
	http.StatusForbidden:             CodeForbidden,
	http.StatusNotFound:              CodeNotFound,
	http.StatusMethodNotAllowed:      CodeMethodNotAllowed,
	http.StatusConflict:              CodeConflict,
	http.StatusRequestEntityTooLarge: CodeTooLarge,
	http.StatusTooManyRequests:       CodeRateLimited,
	http.StatusServiceUnavailable:    CodeUnavailable,
	http.StatusInternalServerError:   CodeInternal,
}

// maxMessageLen caps Error.Message, which comes from the server.
const maxMessageLen = 200

// Error is the API's answer to a request it did not fulfil: any status
// outside 2xx. Match it with errors.As, or with the Is* helpers.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the API's error code, one of the Code* constants.
	Code string
	// Message is the API's explanation, meant for people.
	Message string
	// RetryAfter is how long the server asked the client to wait (the
	// Retry-After header), or 0.
	RetryAfter time.Duration
}

// Error returns "keyledger: <status> <code>: <message>". It never holds a
// credential: the server's messages do not echo request values, and the
// client never adds any.
func (e *Error) Error() string {
	return fmt.Sprintf("keyledger: %d %s: %s", e.Status, e.Code, e.Message)
}

// parseError turns a non-2xx response into an *Error.
func parseError(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &body) == nil {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	}
	// Anything but the API's JSON error (a proxy's HTML page, say) is
	// summarised by its status alone: its body is not repeated.
	if e.Code == "" {
		e.Code = codeOfStatus[resp.StatusCode]
		if e.Code == "" {
			e.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_"))
		}
	}
	if e.Message == "" {
		e.Message = strings.ToLower(http.StatusText(resp.StatusCode))
		if e.Message == "" {
			e.Message = "unexpected status"
		}
	}
	e.Message = printable(e.Message, maxMessageLen)
	e.Code = printable(e.Code, 64)
	return e
}

// printable cuts s to n bytes and replaces control characters, so a
// message cannot forge log lines.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date. Anything else, or a time in the past, is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func hasStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// IsNotFound reports whether err is an *Error with status 404: no such
// key or route, or a key that belongs to someone else.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsUnauthorized reports whether err is an *Error with status 401: a
// missing, wrong or expired session, a wrong password, or API-key
// credentials that do not validate.
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

// IsForbidden reports whether err is an *Error with status 403: an admin
// route called by someone who is not an admin.
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// IsConflict reports whether err is an *Error with status 409: an email
// already taken, or a key that can no longer change.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// IsRateLimited reports whether err is an *Error with status 429; its
// RetryAfter says how long to wait.
func IsRateLimited(err error) bool { return hasStatus(err, http.StatusTooManyRequests) }
