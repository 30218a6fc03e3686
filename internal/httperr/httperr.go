// Package httperr is how keyledger's HTTP servers (the ledger's API and
// validation nodes) answer: one table from error kinds to statuses, and
// one JSON writer for errors and bodies, so that the same error gets the
// same status, body and headers wherever it is answered.
//
// An error is answered as {"error":{"code":"<kind>","message":"..."}}
// with only its client-safe message (domain.MessageOf): an Internal
// error's cause never reaches the client.
package httperr

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/keyledger/keyledger/domain"
)

// statusOf is the one table from error kinds to HTTP statuses.
var statusOf = map[domain.Kind]int{
	domain.Internal:     http.StatusInternalServerError,
	domain.Invalid:      http.StatusBadRequest,
	domain.NotFound:     http.StatusNotFound,
	domain.Conflict:     http.StatusConflict,
	domain.Unauthorized: http.StatusUnauthorized,
	domain.TooLarge:     http.StatusRequestEntityTooLarge,
	domain.RateLimited:  http.StatusTooManyRequests,
	domain.Unavailable:  http.StatusServiceUnavailable,
	domain.Forbidden:    http.StatusForbidden,

	domain.IdempotencyKeyReused: http.StatusUnprocessableEntity,
	domain.IdempotencyKeyInUse:  http.StatusConflict,
	domain.PreconditionFailed:   http.StatusPreconditionFailed,
	domain.UsageExceeded:        http.StatusTooManyRequests,
}

// Status returns the HTTP status for an error kind: 500 for a kind the
// table does not know.
func Status(k domain.Kind) int {
	if s, ok := statusOf[k]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// StatusOf returns the HTTP status for an error: Status of its kind.
func StatusOf(err error) int { return Status(domain.KindOf(err)) }

// Kinds returns the kinds the table maps, sorted by name.
func Kinds() []domain.Kind {
	kinds := make([]domain.Kind, 0, len(statusOf))
	for k := range statusOf {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// Write answers err: its kind's status, a JSON error body with the kind
// as code and the client-safe message, and Retry-After, in whole seconds
// rounded up, when the error says how long to wait (domain.RetryAfterOf).
// Logging the cause is the caller's business.
func Write(w http.ResponseWriter, err error) {
	if d := domain.RetryAfterOf(err); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(domain.RetryAfterSeconds(d)))
	}
	kind := domain.KindOf(err)
	WriteCode(w, Status(kind), string(kind), domain.MessageOf(err))
}

// WriteCode answers with status and a JSON error body of code and
// message, for the answers of a server that no domain error stands for
// (such as 405 method_not_allowed).
func WriteCode(w http.ResponseWriter, status int, code, message string) {
	var body errorBody
	body.Error.Code, body.Error.Message = code, message
	WriteJSON(w, status, body)
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// internalBody is the answer when v cannot be encoded.
const internalBody = `{"error":{"code":"internal","message":"internal error"}}`

// WriteJSON answers with status and v encoded as JSON, followed by a
// newline, with Content-Type application/json and X-Content-Type-Options
// nosniff. Should v not encode, the answer is a 500 internal error.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(internalBody)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
