package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/auth"
)

// openSigned opens the log as a writer signing with the ledger key
// --signing-key names (never one made up here): trust events must be
// signed by a key the log already trusts.
func (a *adminFlags) openSigned(ctx context.Context) (*eventstore.Store, func(), error) {
	if a.name == "" || strings.ContainsAny(a.name, " \t\n") {
		return nil, nil, usageError{fmt.Errorf("--name %q: one word, please", a.name)}
	}
	if _, err := os.Stat(a.signingKey); err != nil {
		return nil, nil, exitError{3, fmt.Errorf("the ledger's signing key: %w (use --signing-key)", err)}
	}
	key, err := auth.LoadOrCreateSigningKey(a.signingKey)
	if err != nil {
		return nil, nil, exitError{3, err}
	}
	nc, err := a.connect(ctx, "keyledger-admin")
	if err != nil {
		return nil, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	store, err := eventstore.New(sctx, nc, eventstore.WithStream(a.stream), eventstore.WithSigningKey(key))
	if err != nil {
		nc.Close()
		if errors.Is(err, eventstore.ErrUntrustedSigningKey) {
			return nil, nil, exitError{1, err}
		}
		return nil, nil, exitError{3, fmt.Errorf("open the log: %w", err)}
	}
	return store, nc.Close, nil
}

func adminLedgerKeysAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin ledger-keys add")
	var af adminFlags
	af.register(fs)
	keyText := fs.String("key", "", "the public key to trust (unpadded base64url, as keyledger audit pubkey prints it)")
	keyFile := fs.String("key-file", "", "read the public key to trust from this file (the text form, or the PEM private key it belongs to)")
	reason := fs.String("reason", "", "why (recorded in the event)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*keyText == "") == (*keyFile == "") {
		return usageError{errors.New("give exactly one of --key and --key-file")}
	}
	if *reason == "" {
		return usageError{errors.New("--reason is required")}
	}
	pub, err := readLedgerPublicKey(*keyText, *keyFile)
	if err != nil {
		return usageError{err}
	}
	store, closeFn, err := af.openSigned(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	seq, err := store.AddLedgerKey(ctx, pub, *reason, af.actor())
	if err != nil {
		return refused(err)
	}
	fmt.Fprintf(stdout, "added ledger key %s: trusted from sequence %d\n", eventstore.KeyID(pub), seq)
	return nil
}

// readLedgerPublicKey reads a ledger public key from its text form or from
// a file holding the text form or the PEM private key.
func readLedgerPublicKey(text, file string) (ed25519.PublicKey, error) {
	if text != "" {
		return eventstore.DecodePublicKey(text)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if k, err := eventstore.DecodePublicKey(string(b)); err == nil {
		return k, nil
	}
	if !strings.Contains(string(b), "PRIVATE KEY") {
		return nil, fmt.Errorf("%s: neither a ledger public key nor a PEM private key", file)
	}
	priv, err := auth.LoadOrCreateSigningKey(file)
	if err != nil {
		return nil, err
	}
	return priv.Public().(ed25519.PublicKey), nil
}

func adminLedgerKeysRetire(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin ledger-keys retire")
	var af adminFlags
	af.register(fs)
	reason := fs.String("reason", "", "why (recorded in the event)")
	id, err := positional(fs, args, "ledger key id")
	if err != nil {
		return err
	}
	if *reason == "" {
		return usageError{errors.New("--reason is required")}
	}
	store, closeFn, err := af.openSigned(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	seq, err := store.RetireLedgerKey(ctx, id, *reason, af.actor())
	if err != nil {
		return refused(err)
	}
	fmt.Fprintf(stdout, "retired ledger key %s: not trusted from sequence %d\n", id, seq)
	return nil
}

func adminLedgerKeysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin ledger-keys list")
	var af adminFlags
	af.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	store, closeFn, err := af.logFlags.open(ctx, "keyledger-admin")
	if err != nil {
		return err
	}
	defer closeFn()
	keys, genesis, err := store.LedgerKeys(ctx)
	if err != nil {
		return refused(err)
	}
	if af.asJSON {
		out := make([]map[string]any, len(keys))
		for i, k := range keys {
			out[i] = map[string]any{"id": k.ID, "key": eventstore.EncodePublicKey(k.Key[:]),
				"added_seq": k.Added, "retired_seq": k.Retired, "reason": k.Reason}
		}
		return json.NewEncoder(stdout).Encode(map[string]any{"genesis_seq": genesis, "keys": out})
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tADDED\tRETIRED\tKEY")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, keyStatus(k), seqText(k.Added, "genesis"), seqText(k.Retired, "-"),
			eventstore.EncodePublicKey(k.Key[:]))
	}
	return tw.Flush()
}

func keyStatus(k domain.TrustedKey) string {
	if k.Retired != 0 {
		return "retired"
	}
	return "trusted"
}

func seqText(seq uint64, zero string) string {
	if seq == 0 {
		return zero
	}
	return fmt.Sprint(seq)
}
