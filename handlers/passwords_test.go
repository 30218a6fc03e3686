package handlers_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestAPI_RegisterPasswordPolicy: registration refuses the passwords the
// issue found accepted (fifteen spaces, one character repeated, the email
// itself) and common ones, with a 400 that says why in plain words and
// never repeats the password; a passphrase passes.
func TestAPI_RegisterPasswordPolicy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	const peer = "192.0.2.1:40000"
	for _, tc := range []struct{ email, password, want string }{
		{"spaces@example.com", strings.Repeat(" ", 15), "must not be only spaces"},
		{"same@example.com", "aaaaaaaaaaaaaaa", "must not be a single character repeated"},
		{"self@example.com", "self@example.com", "must not be your email address"},
		{"local.part@example.com", "Local.Part 2024", "must not be your email address"},
		{"common@example.com", "qwertyuiopasdfghjkl", "on a list of commonly used passwords"},
		{"repeat@example.com", "Password Password", "on a list of commonly used passwords"},
		{"digits@example.com", "iloveyou12345678", "on a list of commonly used passwords"},
	} {
		r := h.do("POST", "/users", peer, loginBody(tc.email, tc.password))
		wantStatus(t, r, http.StatusBadRequest)
		var body struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			t.Fatal(err)
		}
		if body.Error.Code != "invalid" || !strings.Contains(body.Error.Message, tc.want) {
			t.Errorf("%s: got %q %q, want invalid saying %q", tc.email, body.Error.Code, body.Error.Message, tc.want)
		}
		if p := strings.TrimSpace(tc.password); p != "" && p != tc.email && strings.Contains(r.body, p) {
			t.Errorf("%s: the answer %s repeats the password", tc.email, r.body)
		}
	}
	wantStatus(t, h.do("POST", "/users", peer, loginBody("carol@example.com", "my cat sleeps on the warm keyboard")), http.StatusCreated)
}
