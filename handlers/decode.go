package handlers

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/keyledger/keyledger/domain"
)

// decodeOptions make the decoder as strict as request bodies need. Names
// must match a field exactly (JSON v2 never folds case, nor Unicode, as
// encoding/json does with "paſsword"), unknown names are refused, and so
// are duplicate names (v2's default). AllowInvalidUTF8 is set only
// because decodeStrict has already refused raw invalid UTF-8 with a clear
// message: what it still lets through is an escaped lone surrogate
// ("\ud800"), valid JSON that decodes to U+FFFD, as it did before.
var decodeOptions = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(true),
)

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
	err := json.Unmarshal(body, dst, decodeOptions)
	switch {
	case err == nil:
		return nil
	case afterFirstValue(body, err):
		return domain.Errorf(domain.Invalid, "request body must be a single JSON object")
	}
	return domain.Errorf(domain.Invalid, "malformed JSON body: %s", decodeProblem(err))
}

// afterFirstValue reports whether err, from decoding body, is a syntax
// error past the end of a valid first value: trailing data. It reads body
// again, which only a refused body costs.
func afterFirstValue(body []byte, err error) bool {
	var syntactic *jsontext.SyntacticError
	if !errors.As(err, &syntactic) {
		return false
	}
	dec := jsontext.NewDecoder(bytes.NewReader(body), decodeOptions)
	if _, err := dec.ReadValue(); err != nil {
		return false
	}
	return syntactic.ByteOffset >= dec.InputOffset()
}

// decodeProblem describes a decoding error in the client's terms. The
// library's own messages name Go types, so none of them is passed on; the
// client's input is echoed only as a field name, cut short.
func decodeProblem(err error) string {
	var syntactic *jsontext.SyntacticError
	var semantic *json.SemanticError
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName) && errors.As(err, &syntactic):
		return "field " + quoteKey(syntactic.JSONPointer.LastToken()) + " appears twice"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	case errors.As(err, &syntactic):
		return "syntax error"
	case errors.Is(err, json.ErrUnknownName) && errors.As(err, &semantic):
		return "unknown field " + quoteKey(semantic.JSONPointer.LastToken()) + " (names are case-sensitive)"
	case errors.As(err, &semantic) && semantic.JSONPointer != "":
		// Request bodies are flat: the first name is the field's, and
		// it is one of dst's (an unknown one is refused before its value).
		for name := range semantic.JSONPointer.Tokens() {
			return "field " + cutKey(name) + " has the wrong type"
		}
	}
	return "expected a JSON object"
}

// quoteKey quotes a JSON key for an error message, cut short: it is the
// client's own input, echoed back only as far as needed to name it.
func quoteKey(k string) string {
	return strconv.Quote(cutKey(k))
}

func cutKey(k string) string {
	const max = 40
	if len(k) > max {
		k = strings.ToValidUTF8(k[:max], "") + "..."
	}
	return k
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
