package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/httperr"
)

// StatusOf returns the HTTP status for an error's kind: httperr's table,
// the one both the API and validation nodes answer by.
func StatusOf(err error) int { return httperr.StatusOf(err) }

// writeError writes err as a JSON error (httperr.Write: the kind's status,
// Retry-After when the error says how long to wait). Internal and
// Unavailable causes are logged, but for logins and registrations shed
// for want of a hashing slot: under a flood that would write a line per
// request (the metrics count them); the client sees only the kind and its
// safe message.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	kind := domain.KindOf(err)
	if kind == domain.Internal || kind == domain.Unavailable && !errors.Is(err, auth.ErrBusy) {
		logger.Error("request failed", "request_id", requestIDFrom(r), "kind", kind, "err", err)
	}
	httperr.Write(w, err)
}

// writeJSONError and writeJSON are httperr's writers under the names the
// handlers call them by.
func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	httperr.WriteCode(w, status, code, message)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httperr.WriteJSON(w, status, v) }

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
