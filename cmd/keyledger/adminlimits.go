package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/keyledger/keyledger/domain"
)

// adminKeysAddCredits tops up any user's key: keyledger admin keys
// add-credits <api_key> <n> [--reason TEXT]. The top-up is an event,
// recorded with the admin as actor and the signed request kept.
func adminKeysAddCredits(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("admin keys add-credits")
	var af apiFlags
	af.register(fs)
	reason := fs.String("reason", "", "why (recorded in the event)")
	pos, err := positionals(fs, args, "api key", "number of credits")
	if err != nil {
		return err
	}
	apiKey := pos[0]
	n, err := strconv.ParseUint(pos[1], 10, 64)
	if err != nil || n < 1 || n > domain.MaxCredits {
		return usageError{fmt.Errorf("the number of credits must be a whole number from 1 to %d", uint64(domain.MaxCredits))}
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	body := map[string]any{"add": n}
	if *reason != "" {
		body["reason"] = *reason
	}
	var out struct {
		Credits *struct {
			Remaining uint64 `json:"remaining"`
		} `json:"credits"`
	}
	if err := api.do(ctx, "POST", "/admin/keys/"+url.PathEscape(apiKey)+"/credits", body, &out); err != nil {
		return err
	}
	if out.Credits == nil {
		return exitError{3, fmt.Errorf("the server answered the top-up of %s without its credits", apiKey)}
	}
	fmt.Fprintf(stdout, "added %d credits to %s: %d remaining\n", n, apiKey, out.Credits.Remaining)
	return nil
}

// positionals parses flags and exactly len(what) arguments, which may
// come before, between or after the flags (after a "--", everything is an
// argument). A missing or extra argument is a usage error.
func positionals(fs *flag.FlagSet, args []string, what ...string) ([]string, error) {
	envErr := applyEnv(fs)
	var out []string
	for {
		if err := parseCommandLine(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		out = append(out, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if envErr != nil {
		return nil, envErr
	}
	if len(out) > len(what) {
		return nil, usageError{fmt.Errorf("unexpected arguments: %v", out[len(what):])}
	}
	if len(out) < len(what) {
		return nil, usageError{fmt.Errorf("missing %s", what[len(out)])}
	}
	return out, nil
}
