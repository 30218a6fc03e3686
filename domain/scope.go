package domain

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// Limits on what a key may carry besides its secret.
const (
	// MaxScopes is the most scopes a key holds.
	MaxScopes = 64
	// MaxScopeLength is the longest scope, in bytes, its trailing "*"
	// included.
	MaxScopeLength = 128
	// MaxMetadataBytes is the largest metadata object, in bytes of its
	// compact JSON encoding.
	MaxMetadataBytes = 4096
)

// ScopeSet is the set of scopes a key is granted: valid scopes (see
// ValidScope), sorted, without duplicates, joined by single spaces, "" for
// none. It is a string so that a Key stays comparable, can be copied and
// shared freely (a read model interns it) and cannot be changed through a
// copy. Build one with NewScopeSet.
//
// A granted scope grants a required one when both are equal, or when the
// granted scope ends in "*" and the required scope starts with what
// precedes the "*". So "*" grants every scope; "orders:*" grants
// "orders:read" and "orders:" but neither "orders" nor "ordersx:read";
// "orders*" (no separator before the "*") grants every scope starting with
// "orders": "orders", "orders:read", and "ordersx:read" too. Put the
// separator before the "*" to stay inside a namespace.
type ScopeSet string

// NewScopeSet returns the set of scopes. It returns Invalid for more than
// MaxScopes scopes (duplicates counted once) or for a scope that is not
// valid (see ValidScope).
func NewScopeSet(scopes []string) (ScopeSet, error) {
	if len(scopes) == 0 {
		return "", nil
	}
	for _, s := range scopes {
		if !ValidScope(s) {
			return "", Errorf(Invalid, "scope %q: want 1 to %d characters of A-Z a-z 0-9 . _ : / - with an optional trailing *",
				truncate(s, MaxScopeLength), MaxScopeLength)
		}
	}
	sorted := slices.Clone(scopes)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	if len(sorted) > MaxScopes {
		return "", Errorf(Invalid, "at most %d scopes", MaxScopes)
	}
	return ScopeSet(strings.Join(sorted, " ")), nil
}

// ValidScope reports whether s is a scope: 1 to MaxScopeLength bytes of
// [A-Za-z0-9._:/-], the last of which may be a "*" ("*" alone is the scope
// that grants everything).
func ValidScope(s string) bool {
	if s == "" || len(s) > MaxScopeLength {
		return false
	}
	body := strings.TrimSuffix(s, "*")
	for i := 0; i < len(body); i++ {
		if !scopeByte(body[i]) {
			return false
		}
	}
	return true
}

func scopeByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '.' || c == '_' || c == ':' || c == '/' || c == '-'
}

// ScopeGrants reports whether the granted scope grants the required one
// (see ScopeSet for the rule). This is the one place that says it.
func ScopeGrants(granted, required string) bool {
	if prefix, wild := strings.CutSuffix(granted, "*"); wild {
		return strings.HasPrefix(required, prefix)
	}
	return granted == required
}

// List returns the scopes of the set, sorted; an empty set gives an empty,
// non-nil slice.
func (s ScopeSet) List() []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(string(s), " ")
}

// Len returns the number of scopes in the set.
func (s ScopeSet) Len() int {
	if s == "" {
		return 0
	}
	return strings.Count(string(s), " ") + 1
}

// Grants reports whether some scope of the set grants required.
func (s ScopeSet) Grants(required string) bool {
	rest := string(s)
	for rest != "" {
		var g string
		g, rest, _ = strings.Cut(rest, " ")
		if ScopeGrants(g, required) {
			return true
		}
	}
	return false
}

// Missing returns the first of required that the set does not grant, and
// whether there is one. A set grants nothing that is not a valid scope.
func (s ScopeSet) Missing(required []string) (string, bool) {
	for _, r := range required {
		if !ValidScope(r) || !s.Grants(r) {
			return r, true
		}
	}
	return "", false
}

// ParseRequiredScopes reads a space-separated list of required scopes, as
// the X-Keyledger-Required-Scopes header carries it (several spaces or
// tabs between scopes are fine). It returns Invalid for a scope that is
// not valid or for more than MaxScopes of them.
func ParseRequiredScopes(list string) ([]string, error) {
	fields := strings.FieldsFunc(list, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(fields) > MaxScopes {
		return nil, Errorf(Invalid, "at most %d required scopes", MaxScopes)
	}
	for _, f := range fields {
		if !ValidScope(f) {
			return nil, Errorf(Invalid, "required scope %q is not a valid scope", truncate(f, MaxScopeLength))
		}
	}
	return fields, nil
}

// CompactMetadata checks a key's metadata and returns its compact
// encoding: a JSON object (of any values) of at most MaxMetadataBytes
// compact, "" for none (empty input, null or {}). Errors: Invalid for
// anything else, an object over the limit included. Metadata is shown to every
// service that validates the key and kept in the log for good: it is for
// labels (plan, tenant, service), never for personal data or secrets.
func CompactMetadata(raw []byte) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return "", Errorf(Invalid, "metadata must be a JSON object")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return "", Errorf(Invalid, "metadata must be a JSON object")
	}
	if out.Len() > MaxMetadataBytes {
		return "", Errorf(Invalid, "metadata must be at most %d bytes of JSON", MaxMetadataBytes)
	}
	if out.String() == "{}" {
		return "", nil
	}
	return out.String(), nil
}

// truncate cuts s to at most n bytes, for quoting input in errors.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
