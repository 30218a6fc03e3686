package main

import (
	"crypto/ed25519"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/auth"
)

func TestAdmin_LedgerKeys(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	serveKey, err := auth.LoadOrCreateSigningKey(ts.Config.SigningKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	serveID := eventstore.KeyID(serveKey.Public().(ed25519.PublicKey))
	newFile := filepath.Join(t.TempDir(), "new-ed25519.pem")
	newKey, err := auth.LoadOrCreateSigningKey(newFile)
	if err != nil {
		t.Fatal(err)
	}
	newID := eventstore.KeyID(newKey.Public().(ed25519.PublicKey))

	out := mustAdmin(t, ts, "ledger-keys", "list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], serveID) ||
		!strings.Contains(lines[1], "trusted") || !strings.Contains(lines[1], "genesis") {
		t.Fatalf("list: got\n%s\nwant serve's key, trusted from the genesis", out)
	}
	out = mustAdmin(t, ts, "ledger-keys", "add", "--key-file", newFile, "--reason", "rotation")
	if !strings.Contains(out, "added ledger key "+newID) {
		t.Errorf("add: got %q, want the new key's id", out)
	}
	for name, c := range map[string]struct {
		args []string
		want int
	}{
		"AddAgain":       {[]string{"ledger-keys", "add", "--key", eventstore.EncodePublicKey(newKey.Public().(ed25519.PublicKey)), "--reason", "again"}, 1},
		"AddNoReason":    {[]string{"ledger-keys", "add", "--key-file", newFile}, 2},
		"AddBothSources": {[]string{"ledger-keys", "add", "--key-file", newFile, "--key", "x", "--reason", "r"}, 2},
		"RetireUnknown":  {[]string{"ledger-keys", "retire", "nosuchkeyid0", "--reason", "r"}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := adminCLI(t, ts, c.args...)
			wantExit(t, c.args, code, stdout, stderr, c.want)
		})
	}
	out = mustAdmin(t, ts, "ledger-keys", "retire", newID, "--reason", "changed our mind")
	if !strings.Contains(out, "retired ledger key "+newID) {
		t.Errorf("retire: got %q", out)
	}
	t.Run("RetireLastKey", func(t *testing.T) {
		args := []string{"ledger-keys", "retire", serveID, "--reason", "r"}
		code, stdout, stderr := adminCLI(t, ts, args...)
		wantExit(t, args, code, stdout, stderr, 1)
	})
	t.Run("ReAddRetired", func(t *testing.T) {
		args := []string{"ledger-keys", "add", "--key-file", newFile, "--reason", "back"}
		code, stdout, stderr := adminCLI(t, ts, args...)
		wantExit(t, args, code, stdout, stderr, 1)
	})
	var list struct {
		Genesis uint64 `json:"genesis_seq"`
		Keys    []struct {
			ID      string `json:"id"`
			Added   uint64 `json:"added_seq"`
			Retired uint64 `json:"retired_seq"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(mustAdmin(t, ts, "ledger-keys", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if list.Genesis != 1 || len(list.Keys) != 2 || list.Keys[0].ID != serveID || list.Keys[0].Retired != 0 ||
		list.Keys[1].ID != newID || list.Keys[1].Added == 0 || list.Keys[1].Retired <= list.Keys[1].Added {
		t.Errorf("list --json: got %+v, want serve's key from the genesis and the new one added, then retired", list)
	}
}
