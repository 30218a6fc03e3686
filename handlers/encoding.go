package handlers

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	"github.com/keyledger/keyledger/domain"
)

// statusOf is the one table from error kinds to HTTP statuses.
var statusOf = map[domain.Kind]int{
	domain.Invalid:      http.StatusBadRequest,
	domain.Unauthorized: http.StatusUnauthorized,
	domain.NotFound:     http.StatusNotFound,
	domain.Conflict:     http.StatusConflict,
	domain.TooLarge:     http.StatusRequestEntityTooLarge,
	domain.RateLimited:  http.StatusTooManyRequests,
	domain.Unavailable:  http.StatusServiceUnavailable,
	domain.Internal:     http.StatusInternalServerError,
	domain.Forbidden:    http.StatusForbidden,
}

// StatusOf returns the HTTP status for an error's kind.
func StatusOf(err error) int {
	if s, ok := statusOf[domain.KindOf(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError writes err as a JSON error, with Retry-After when the error
// says how long to wait. Internal and Unavailable causes are logged; the
// client sees only the kind and its safe message.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	kind := domain.KindOf(err)
	if kind == domain.Internal || kind == domain.Unavailable {
		logger.Error("request failed", "request_id", requestIDFrom(r), "kind", kind, "err", err)
	}
	if d := domain.RetryAfterOf(err); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(domain.RetryAfterSeconds(d)))
	}
	writeJSONError(w, StatusOf(err), string(kind), domain.MessageOf(err))
}

func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	var body errorBody
	body.Error.Code, body.Error.Message = code, message
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// readJSON decodes a request body holding one JSON object into dst,
// rejecting unknown fields, trailing data, other content types and bodies
// over MaxBodyBytes. An empty body leaves dst as is when allowEmpty.
func readJSON(w http.ResponseWriter, r *http.Request, dst any, allowEmpty bool) error {
	if r.ContentLength > MaxBodyBytes {
		return domain.Errorf(domain.TooLarge, "request body exceeds %d bytes", MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return domain.Errorf(domain.TooLarge, "request body exceeds %d bytes", MaxBodyBytes)
	}
	if err != nil {
		return domain.Errorf(domain.Invalid, "could not read request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return domain.Errorf(domain.Invalid, "request body must be a JSON object")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return domain.Errorf(domain.Invalid, "Content-Type must be application/json")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return domain.Errorf(domain.Invalid, "malformed JSON body: %s", jsonProblem(err))
	}
	if dec.More() {
		return domain.Errorf(domain.Invalid, "request body must be a single JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return domain.Errorf(domain.Invalid, "request body must be a single JSON object")
	}
	return nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return "syntax error"
	case errors.As(err, &typ):
		if typ.Field != "" {
			return "field " + typ.Field + " has the wrong type"
		}
		return "expected a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	// DisallowUnknownFields: `json: unknown field "x"`.
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

type requestIDKey struct{}

// requestID returns the caller's X-Request-Id when it is short and plain,
// or a new random one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && isPlain(id) {
		return id
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func requestIDFrom(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

// responseWriter records the status for the request log.
type responseWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// probeWriter captures what the mux would answer to an unmatched request.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header         { return p.header }
func (p *probeWriter) WriteHeader(status int)      { p.status = status }
func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
