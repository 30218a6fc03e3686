package domain_test

import (
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

// TestScopeGrants is the matching rule, with near-misses. "orders*" has no
// separator before its "*": it grants every scope starting with "orders",
// "ordersx:read" included. "orders:*" stays inside the namespace.
func TestScopeGrants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		granted, required string
		want              bool
	}{
		{"orders:read", "orders:read", true},
		{"orders:read", "orders:write", false},
		{"orders:read", "orders:read:all", false},
		{"orders:read", "orders:rea", false},
		{"orders:read", "Orders:read", false},
		{"orders:read", "orders:*", false},
		{"orders:*", "orders:read", true},
		{"orders:*", "orders:read:all", true},
		{"orders:*", "orders:", true},
		{"orders:*", "orders:*", true},
		{"orders:*", "orders", false},
		{"orders:*", "ordersx:read", false},
		{"orders:*", "order:read", false},
		{"orders:*", "billing:read", false},
		{"orders*", "orders", true},
		{"orders*", "orders:read", true},
		{"orders*", "ordersx:read", true},
		{"orders*", "order", false},
		{"*", "orders:read", true},
		{"*", "*", true},
		{"*", "a", true},
		{"a/b/*", "a/b/c", true},
		{"a/b/*", "a/bc", false},
	}
	for _, tc := range tests {
		if got := domain.ScopeGrants(tc.granted, tc.required); got != tc.want {
			t.Errorf("ScopeGrants(%q, %q): got %v, want %v", tc.granted, tc.required, got, tc.want)
		}
	}
}

func TestValidScope(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a", "*", "orders:read", "orders:*", "orders*", "A-Z_a.z/0:9-",
		strings.Repeat("a", 128), strings.Repeat("a", 127) + "*"} {
		if !domain.ValidScope(s) {
			t.Errorf("ValidScope(%q): got false, want true", s)
		}
	}
	for _, s := range []string{"", " ", "**", "a*b", "*a", "orders read", "orders\tread", "orders,read", "é",
		"orders:read\n", strings.Repeat("a", 129), strings.Repeat("a", 128) + "*", "a\x00", "a+b", "a@b"} {
		if domain.ValidScope(s) {
			t.Errorf("ValidScope(%q): got true, want false", s)
		}
	}
}

func TestNewScopeSet(t *testing.T) {
	t.Parallel()
	set, err := domain.NewScopeSet([]string{"orders:write", "billing:read", "orders:write"})
	if err != nil || set != "billing:read orders:write" {
		t.Fatalf("got %q, %v, want sorted without duplicates", set, err)
	}
	if set.Len() != 2 || strings.Join(set.List(), ",") != "billing:read,orders:write" {
		t.Errorf("Len, List: got %d, %v", set.Len(), set.List())
	}
	if empty, err := domain.NewScopeSet(nil); err != nil || empty != "" || empty.Len() != 0 || len(empty.List()) != 0 {
		t.Errorf("NewScopeSet(nil): got %q, %v, want empty", empty, err)
	}
	many := make([]string, domain.MaxScopes+1)
	for i := range many {
		many[i] = "s" + strings.Repeat("x", i)
	}
	if _, err := domain.NewScopeSet(many); domain.KindOf(err) != domain.Invalid {
		t.Errorf("%d scopes: got %v, want Invalid", len(many), err)
	}
	if _, err := domain.NewScopeSet(many[:domain.MaxScopes]); err != nil {
		t.Errorf("%d scopes: got %v, want nil", domain.MaxScopes, err)
	}
	for _, bad := range [][]string{{""}, {"a b"}, {"ok", "a*b"}} {
		if _, err := domain.NewScopeSet(bad); domain.KindOf(err) != domain.Invalid {
			t.Errorf("NewScopeSet(%q): got %v, want Invalid", bad, err)
		}
	}
}

func TestScopeSet_Missing(t *testing.T) {
	t.Parallel()
	set, err := domain.NewScopeSet([]string{"orders:*", "billing:read"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		required []string
		missing  string
		want     bool
	}{
		{nil, "", false},
		{[]string{"orders:read"}, "", false},
		{[]string{"orders:read", "billing:read"}, "", false},
		{[]string{"orders:read", "billing:write"}, "billing:write", true},
		{[]string{"ordersx:read"}, "ordersx:read", true},
		{[]string{"orders:read", "bad scope"}, "bad scope", true},
		{[]string{""}, "", true},
	}
	for _, tc := range tests {
		missing, ok := set.Missing(tc.required)
		if ok != tc.want || missing != tc.missing {
			t.Errorf("Missing(%q): got %q, %v, want %q, %v", tc.required, missing, ok, tc.missing, tc.want)
		}
	}
	if missing, ok := domain.ScopeSet("").Missing([]string{"a"}); !ok || missing != "a" {
		t.Errorf("empty set: got %q, %v, want a key without scopes to grant nothing", missing, ok)
	}
}

func TestParseRequiredScopes(t *testing.T) {
	t.Parallel()
	got, err := domain.ParseRequiredScopes("  orders:read \t billing:*  ")
	if err != nil || strings.Join(got, ",") != "orders:read,billing:*" {
		t.Errorf("got %q, %v", got, err)
	}
	if got, err := domain.ParseRequiredScopes(""); err != nil || len(got) != 0 {
		t.Errorf("empty: got %q, %v, want none", got, err)
	}
	for _, bad := range []string{"orders,read", "a\nb", "é", strings.Repeat("a ", domain.MaxScopes+1)} {
		if got, err := domain.ParseRequiredScopes(bad); domain.KindOf(err) != domain.Invalid {
			t.Errorf("ParseRequiredScopes(%q): got %q, %v, want Invalid", bad, got, err)
		}
	}
}

func TestCompactMetadata(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		kind     domain.Kind
	}{
		{"", "", ""},
		{"null", "", ""},
		{" {} ", "", ""},
		{`{ "plan" : "pro", "n": [1, 2] }`, `{"plan":"pro","n":[1,2]}`, ""},
		{`[1]`, "", domain.Invalid},
		{`"s"`, "", domain.Invalid},
		{`7`, "", domain.Invalid},
		{`{"a":}`, "", domain.Invalid},
		{`{"a":1}{}`, "", domain.Invalid},
		{`{"a":"` + strings.Repeat("x", domain.MaxMetadataBytes-8) + `"}`, `{"a":"` + strings.Repeat("x", domain.MaxMetadataBytes-8) + `"}`, ""},
		{`{"a":"` + strings.Repeat("x", domain.MaxMetadataBytes-7) + `"}`, "", domain.Invalid},
		// Whitespace does not count against the limit.
		{`{"a":   "` + strings.Repeat("x", domain.MaxMetadataBytes-8) + `"}`, `{"a":"` + strings.Repeat("x", domain.MaxMetadataBytes-8) + `"}`, ""},
	}
	for _, tc := range tests {
		got, err := domain.CompactMetadata([]byte(tc.in))
		if tc.kind != "" {
			if domain.KindOf(err) != tc.kind {
				t.Errorf("CompactMetadata(%.40q): got %v, want kind %v", tc.in, err, tc.kind)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CompactMetadata(%.40q): got %.40q, %v, want %.40q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseRequiredScopes: whatever the header, the parser returns only
// valid scopes, at most MaxScopes of them, or Invalid.
func FuzzParseRequiredScopes(f *testing.F) {
	for _, s := range []string{"", "orders:read", "a b\tc", "*", "orders:* billing:read", "a,b", "é", "  "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := domain.ParseRequiredScopes(in)
		if err != nil {
			if domain.KindOf(err) != domain.Invalid {
				t.Fatalf("got %v, want Invalid", err)
			}
			return
		}
		if len(got) > domain.MaxScopes {
			t.Fatalf("got %d scopes, want at most %d", len(got), domain.MaxScopes)
		}
		for _, s := range got {
			if !domain.ValidScope(s) {
				t.Fatalf("got scope %q, want only valid ones", s)
			}
		}
	})
}

// FuzzCompactMetadata: accepted metadata is a compact JSON object within
// the limit, and compacting it again changes nothing.
func FuzzCompactMetadata(f *testing.F) {
	for _, s := range []string{"", "null", "{}", `{"a":1}`, `{"a":[1,{"b":null}]}`, "[1]", `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := domain.CompactMetadata(in)
		if err != nil {
			if domain.KindOf(err) != domain.Invalid {
				t.Fatalf("got %v, want Invalid", err)
			}
			return
		}
		if got == "" {
			return
		}
		if len(got) > domain.MaxMetadataBytes || got[0] != '{' {
			t.Fatalf("got %.60q, want an object of at most %d bytes", got, domain.MaxMetadataBytes)
		}
		again, err := domain.CompactMetadata([]byte(got))
		if err != nil || again != got {
			t.Fatalf("again: got %.60q, %v, want %.60q", again, err, got)
		}
	})
}
