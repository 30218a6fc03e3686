package handlers

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keyledger/keyledger/domain"
)

// requestTypes are the bodies the API decodes, each as a fresh pointer.
var requestTypes = []func() any{
	func() any { return new(credentialsRequest) },
	func() any { return new(createKeyRequest) },
	func() any { return new(reasonRequest) },
	func() any { return new(editKeyRequest) },
	func() any { return new(regenerateRequest) },
}

func decodeBody(body string, dst any) error {
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return readJSON(httptest.NewRecorder(), r, dst, true)
}

func TestReadJSON_Strict(t *testing.T) {
	t.Parallel()
	ok := []struct {
		name, body string
		want       credentialsRequest
	}{
		{"Plain", `{"email":"a@example.com","password":"pw"}`, credentialsRequest{"a@example.com", "pw"}},
		{"Whitespace", " \n{ \"email\" : \"a\" } \n", credentialsRequest{Email: "a"}},
		{"EscapedKey", `{"em\u0061il":"a"}`, credentialsRequest{Email: "a"}}, // the same key, escaped
		{"NestedDuplicatesElsewhereAreFine", `{"email":"a","password":"b"}`, credentialsRequest{"a", "b"}},
		{"Unicode", `{"email":"ä@example.com"}`, credentialsRequest{Email: "ä@example.com"}},
		{"Null", `{"email":null}`, credentialsRequest{}},
		{"NullBody", `null`, credentialsRequest{}},
		// An escaped lone surrogate is valid JSON: it decodes to U+FFFD.
		{"LoneSurrogate", `{"email":"\ud800"}`, credentialsRequest{Email: "\ufffd"}},
		{"SurrogatePair", `{"email":"\ud83d\ude00"}`, credentialsRequest{Email: "\U0001F600"}},
	}
	for _, tc := range ok {
		t.Run("OK"+tc.name, func(t *testing.T) {
			var got credentialsRequest
			if err := decodeBody(tc.body, &got); err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	bad := []struct {
		name, body, wantMessage string
	}{
		{"Duplicate", `{"email":"a","email":"b"}`, `malformed JSON body: field "email" appears twice`},
		{"DuplicateEscaped", `{"email":"a","em\u0061il":"b"}`, `malformed JSON body: field "email" appears twice`},
		{"CaseVariant", `{"Email":"a"}`, `malformed JSON body: unknown field "Email" (names are case-sensitive)`},
		{"CaseVariantUpper", `{"EMAIL":"a","password":"b"}`, `malformed JSON body: unknown field "EMAIL" (names are case-sensitive)`},
		{"CaseVariantBesideExact", `{"email":"a","Email":"b"}`, `malformed JSON body: unknown field "Email" (names are case-sensitive)`},
		// encoding/json folds the Kelvin sign and the long s onto k and s.
		{"UnicodeFolding", `{"pa\u017fsword":"b"}`, `malformed JSON body: unknown field "paſsword" (names are case-sensitive)`},
		{"Unknown", `{"admin":true}`, `malformed JSON body: unknown field "admin" (names are case-sensitive)`},
		{"UnknownLongKeyCut", `{"` + strings.Repeat("k", 100) + `":1}`, `malformed JSON body: unknown field "` + strings.Repeat("k", 40) + `..." (names are case-sensitive)`},
		{"InvalidUTF8InValue", "{\"email\":\"a\xff\"}", "request body is not valid UTF-8"},
		{"InvalidUTF8InKey", "{\"em\xc3ail\":\"a\"}", "request body is not valid UTF-8"},
		{"InvalidUTF8Outside", "{\"email\":\"a\"}\xff", "request body is not valid UTF-8"},
		{"Syntax", `{"email":`, "malformed JSON body: unexpected end of input"},
		{"SyntaxBadToken", `{"email" "a"}`, "malformed JSON body: syntax error"},
		{"WrongType", `{"email":1}`, "malformed JSON body: field email has the wrong type"},
		{"NotAnObject", `["email"]`, "malformed JSON body: expected a JSON object"},
		{"Trailing", `{"email":"a"} {}`, "request body must be a single JSON object"},
		// Request bodies are flat: a nested value where a string belongs
		// is the wrong type, however deep it goes; past the decoder's
		// depth limit (10000) it is a syntax error.
		{"TooDeep", `{"email":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "malformed JSON body: field email has the wrong type"},
		{"DeepUnclosed", `{"email":` + strings.Repeat("[", 100), "malformed JSON body: unexpected end of input"},
		{"DeeperThanTheLimit", `{"email":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, "malformed JSON body: syntax error"},
		{"DuplicateAfterUnknownTypeIsFirstFound", `{"email":1,"email":"b"}`, "malformed JSON body: field email has the wrong type"},
		{"TrailingGarbage", `{"email":"a"}x`, "request body must be a single JSON object"},
		{"TrailingAdjacent", `{"email":"a"}{}`, "request body must be a single JSON object"},
		{"TrailingBracket", "{\"email\":\"a\"}\n]", "request body must be a single JSON object"},
		{"TrailingComma", `{"email":"a",}`, "malformed JSON body: syntax error"},
		{"NotAnObjectString", `"email"`, "malformed JSON body: expected a JSON object"},
		{"UnknownWithSlash", `{"a/~b":1}`, `malformed JSON body: unknown field "a/~b" (names are case-sensitive)`},
		{"HugeNumber", `{"email":1e999}`, "malformed JSON body: field email has the wrong type"},
	}
	for _, tc := range bad {
		t.Run("Err"+tc.name, func(t *testing.T) {
			var got credentialsRequest
			err := decodeBody(tc.body, &got)
			if domain.KindOf(err) != domain.Invalid {
				t.Fatalf("got %v, want an Invalid error", err)
			}
			if msg := domain.MessageOf(err); msg != tc.wantMessage {
				t.Fatalf("got message %q, want %q", msg, tc.wantMessage)
			}
		})
	}
	t.Run("OKCreateKey", func(t *testing.T) {
		var got createKeyRequest
		if err := decodeBody(`{"name":"ci","expires_at":"2030-01-02T15:04:05Z","signed_only":true}`, &got); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if got.Name != "ci" || got.ExpiresAt == nil || *got.ExpiresAt != "2030-01-02T15:04:05Z" || !got.SignedOnly {
			t.Fatalf("got %+v, want every field set", got)
		}
		got = createKeyRequest{}
		if err := decodeBody(`{"expires_at":null,"signed_only":false}`, &got); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if got.ExpiresAt != nil || got.SignedOnly {
			t.Fatalf("got %+v, want a nil expires_at", got)
		}
	})
	t.Run("ErrCreateKeyWrongTypes", func(t *testing.T) {
		for body, want := range map[string]string{
			`{"signed_only":"true"}`:    "malformed JSON body: field signed_only has the wrong type",
			`{"signed_only":1}`:         "malformed JSON body: field signed_only has the wrong type",
			`{"expires_at":{"x":1}}`:    "malformed JSON body: field expires_at has the wrong type",
			`{"expires_at":1893456000}`: "malformed JSON body: field expires_at has the wrong type",
		} {
			var got createKeyRequest
			err := decodeBody(body, &got)
			if domain.KindOf(err) != domain.Invalid || domain.MessageOf(err) != want {
				t.Fatalf("%s: got %v, want Invalid %q", body, err, want)
			}
		}
	})
	t.Run("DuplicateInNestedValue", func(t *testing.T) {
		var got map[string]any
		err := decodeBody(`{"a":{"b":1,"b":2}}`, &got)
		if domain.KindOf(err) != domain.Invalid {
			t.Fatalf("got %v, want an Invalid error", err)
		}
	})
}

// FuzzReadJSON: decoding a body never panics and fails only with Invalid
// (a 400); what it accepts is valid UTF-8 with every key exactly a field
// name and none twice, and it round-trips: encoding the decoded value and
// decoding that again gives the same value.
func FuzzReadJSON(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@example.com","password":"correct horse battery staple"}`,
		`{"name":"ci","expires_at":"2030-01-02T15:04:05Z"}`,
		`{"reason":"leaked"}`,
		`{"email":"a","email":"b"}`,
		`{"Email":"a"}`,
		`{"em\u0061il":"a"}`,
		"{\"name\":\"\xff\"}",
		`{"name":"\ud800"}`,
		`{"name":null,"expires_at":null}`,
		`{}`, ``, `[]`, `null`, `{"a":{"b":[1,{"c":2,"c":3}]}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, fresh := range requestTypes {
			dst := fresh()
			err := decodeBody(body, dst)
			if err != nil {
				if k := domain.KindOf(err); k != domain.Invalid {
					t.Fatalf("readJSON(%q): got kind %v (%v), want invalid", body, k, err)
				}
				continue
			}
			if strings.TrimSpace(body) == "" {
				continue
			}
			if !utf8.ValidString(body) {
				t.Fatalf("readJSON(%q): accepted invalid UTF-8", body)
			}
			var keys map[string]json.RawMessage
			if err := json.Unmarshal([]byte(body), &keys); err != nil {
				t.Fatalf("readJSON(%q): accepted what is not a JSON object: %v", body, err)
			}
			fields := fieldNames(dst)
			for k := range keys {
				if !fields[k] {
					t.Fatalf("readJSON(%q) into %T: accepted key %q", body, dst, k)
				}
			}
			// Without HTML escaping: json.Marshal would rewrite "&" in a
			// json.RawMessage field as "\u0026", the same value in other
			// bytes.
			var buf bytes.Buffer
			e := json.NewEncoder(&buf)
			e.SetEscapeHTML(false)
			if err := e.Encode(dst); err != nil {
				t.Fatalf("Marshal(%+v): %v", dst, err)
			}
			enc := bytes.TrimSpace(buf.Bytes())
			again := fresh()
			if err := decodeBody(string(enc), again); err != nil {
				t.Fatalf("readJSON(%s), re-encoded from %q: %v", enc, body, err)
			}
			if !reflect.DeepEqual(dst, again) {
				t.Fatalf("round trip of %q: got %+v, want %+v", body, again, dst)
			}
		}
	})
}

// fieldNames returns the JSON names of the fields of the struct dst points
// to: the keys a request body may hold, read from the struct tags apart
// from the decoder, for the fuzz target to check what it accepted.
func fieldNames(dst any) map[string]bool {
	t := reflect.TypeOf(dst).Elem()
	names := make(map[string]bool)
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[name] = true
	}
	return names
}
