package main

import (
	"errors"
	"testing"
)

// TestPositional_KeyIDStartingWithDash: a key id is twelve base64url
// characters, and about one in thirty-two starts with '-'; first, it is
// the id, not an unknown flag (after flags it needs "--", as anywhere).
// Flags keep working, and an unknown flag is still refused.
func TestPositional_KeyIDStartingWithDash(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-meJifq6U1CC", "--reason", "rotated"},
		{"--reason", "rotated", "--", "-meJifq6U1CC"},
	} {
		fs := newFlagSet("admin ledger-keys retire")
		reason := fs.String("reason", "", "why")
		id, err := positional(fs, args, "key id")
		if err != nil || id != "-meJifq6U1CC" || *reason != "rotated" {
			t.Errorf("%q: got id %q, reason %q, err %v; want -meJifq6U1CC and rotated", args, id, *reason, err)
		}
	}
	fs := newFlagSet("admin ledger-keys retire")
	fs.String("reason", "", "why")
	var usage usageError
	if _, err := positional(fs, []string{"-resaon", "x", "q0bOmm3iQ1tU"}, "key id"); !errors.As(err, &usage) {
		t.Errorf("unknown flag: got %v, want a usage error", err)
	}
}
