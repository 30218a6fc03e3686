package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/keyledger/keyledger/client"
)

// adminIntegrity: keyledger admin integrity [--verify] [--json]. Exit 5
// when the last verification found problems.
func adminIntegrity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin integrity")
	var af apiFlags
	af.register(fs)
	verify := fs.Bool("verify", false, "start a verification of the whole log, wait for its verdict and print it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if *verify {
		if err := api.do(ctx, "POST", "/admin/integrity/verify", nil, &raw); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "verifying the log...")
	}
	var st client.Integrity
	for {
		if err := api.do(ctx, "GET", "/admin/integrity", nil, &raw); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return err
		}
		if !*verify || !st.Verify.Running {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if af.asJSON {
		fmt.Fprintln(stdout, string(raw))
	} else {
		printIntegrity(stdout, st)
	}
	if st.Verify.State == "failed" {
		return exitError{5, fmt.Errorf("the log did not verify: %d problem(s)", st.Verify.ProblemCount)}
	}
	return nil
}

func printIntegrity(w io.Writer, st client.Integrity) {
	if st.TrustRoot != nil {
		fmt.Fprintf(w, "trust root: %s (genesis at %d)\n", st.TrustRoot.Fingerprint, st.TrustRoot.Seq)
	} else {
		fmt.Fprintln(w, "trust root: none")
	}
	switch {
	case st.Checkpoint != nil:
		c := st.Checkpoint
		fmt.Fprintf(w, "newest checkpoint: size %d at %d, %s, root %s\n", c.Size, c.Seq, c.Time.UTC().Format(time.RFC3339), c.Root)
	case st.CheckpointError != "":
		fmt.Fprintf(w, "newest checkpoint: unreadable: %s\n", st.CheckpointError)
	default:
		fmt.Fprintln(w, "newest checkpoint: none")
	}
	v := st.Verify
	fmt.Fprintf(w, "verification: %s", v.State)
	if v.FinishedAt != nil {
		fmt.Fprintf(w, " at %s (%d messages up to %d, %.1fs)", v.FinishedAt.UTC().Format(time.RFC3339), v.Messages, v.LastSeq, v.Seconds)
	}
	if v.Running {
		fmt.Fprint(w, ", another one running")
	}
	fmt.Fprintln(w)
	if v.Error != "" {
		fmt.Fprintf(w, "error: %s\n", v.Error)
	}
	for _, p := range v.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
}
