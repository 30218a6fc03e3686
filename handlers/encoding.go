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
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

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

// readJSON decodes a request body holding one JSON object into dst, a
// pointer to a request struct. It is stricter than encoding/json, which
// matches keys to fields ignoring case, keeps the last of duplicate keys
// and turns invalid UTF-8 into U+FFFD: it refuses a key that is not
// exactly a field's name, a key given twice in one object, invalid UTF-8,
// unknown fields, trailing data, other content types and bodies over
// MaxBodyBytes. An empty body leaves dst as is when allowEmpty.
// Errors: Invalid, TooLarge.
func readJSON(w http.ResponseWriter, r *http.Request, dst any, allowEmpty bool) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
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
	return decodeStrict(body, dst)
}

// decodeStrict is readJSON's decoding of a body that was read.
func decodeStrict(body []byte, dst any) error {
	if !utf8.Valid(body) {
		return domain.Errorf(domain.Invalid, "request body is not valid UTF-8")
	}
	if err := checkKeys(body, fieldNames(dst)); err != nil {
		return err
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

// readBody reads a request body of at most MaxBodyBytes. Errors: TooLarge,
// Invalid.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, domain.Errorf(domain.TooLarge, "request body exceeds %d bytes", MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, domain.Errorf(domain.TooLarge, "request body exceeds %d bytes", MaxBodyBytes)
	}
	if err != nil {
		return nil, domain.Errorf(domain.Invalid, "could not read request body")
	}
	return body, nil
}

// maxJSONDepth bounds the nesting checkKeys walks: request bodies are flat
// objects, and no field takes anything nested this deep.
const maxJSONDepth = 32

// checkKeys walks the first JSON value of body and refuses what
// encoding/json would let through: a key given twice in one object, and,
// in the top-level object, a key that is not exactly one of fields (nil:
// any key). Syntax errors are reported as such.
func checkKeys(body []byte, fields map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers out of float64's range are the decoder's to judge
	return walkKeys(dec, fields, 0)
}

func walkKeys(dec *json.Decoder, fields map[string]bool, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return domain.Errorf(domain.Invalid, "malformed JSON body: %s", jsonProblem(err))
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxJSONDepth {
		return domain.Errorf(domain.Invalid, "malformed JSON body: nested too deeply")
	}
	switch delim {
	case '{':
		seen := make(map[string]bool)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return domain.Errorf(domain.Invalid, "malformed JSON body: %s", jsonProblem(err))
			}
			key, _ := tok.(string)
			if seen[key] {
				return domain.Errorf(domain.Invalid, "malformed JSON body: field %s appears twice", quoteKey(key))
			}
			seen[key] = true
			if fields != nil && !fields[key] {
				return domain.Errorf(domain.Invalid, "malformed JSON body: unknown field %s (names are case-sensitive)", quoteKey(key))
			}
			if err := walkKeys(dec, nil, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := walkKeys(dec, nil, depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return domain.Errorf(domain.Invalid, "malformed JSON body: %s", jsonProblem(err))
	}
	return nil
}

// quoteKey quotes a JSON key for an error message, cut short: it is the
// client's own input, echoed back only as far as needed to name it.
func quoteKey(k string) string {
	const max = 40
	if len(k) > max {
		k = strings.ToValidUTF8(k[:max], "") + "..."
	}
	return strconv.Quote(k)
}

// fieldNames returns the JSON names of the fields of the struct dst points
// to (nil for anything else), cached per type.
func fieldNames(dst any) map[string]bool {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	t = t.Elem()
	if names, ok := fieldNamesCache.Load(t); ok {
		return names.(map[string]bool)
	}
	names := make(map[string]bool)
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		names[name] = true
	}
	fieldNamesCache.Store(t, names)
	return names
}

var fieldNamesCache sync.Map // reflect.Type -> map[string]bool

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
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
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
