// Command keyledger is the event-sourced API-key ledger: one binary whose
// subcommands run the ledger API (serve) and validation nodes (validator).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `keyledger: an event-sourced API-key ledger on NATS JetStream.

Usage:
  keyledger serve [flags]       run the ledger HTTP API (embedded NATS by default)
  keyledger validator [flags]   run a validation node that follows the event log
  keyledger cert <command>      create a key and a CSR (csr) or a self-signed certificate (selfsigned)
  keyledger audit <command>     verify, replay and query the event log (verify, replay, state, pubkey)
  keyledger admin <command>     revoke keys, disable users, bootstrap admins, straight against NATS
  keyledger healthcheck [flags] probe /readyz or /healthz of a running serve or validator (container health checks)
  keyledger sign [flags] URL    print the headers of a request signed with an API key's secret, for curl -H @file
  keyledger bench [flags]       measure throughput and latency against embedded servers, with baselines
  keyledger help                show this help

Run "keyledger <command> -h" for the flags of a command. Every flag of serve and
validator can also be set through an environment variable: --http-addr is
KEYLEDGER_HTTP_ADDR, and so on.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code: 0 on
// success, 2 for usage errors, 1 for anything else.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stderr)
	case "validator":
		err = runValidator(ctx, args[1:], stderr)
	case "cert":
		err = runCert(ctx, args[1:], stdout, stderr)
	case "audit":
		err = runAudit(ctx, args[1:], stdout, stderr)
	case "admin":
		err = runAdmin(ctx, args[1:], os.Stdin, stdout, stderr)
	case "healthcheck":
		err = runHealthcheck(ctx, args[1:], stdout, stderr)
	case "bench":
		err = runBench(ctx, args[1:], stdout, stderr)
	case "sign":
		err = runSign(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "keyledger: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var exit exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &exit):
		fmt.Fprintf(stderr, "keyledger %s: %v\n", args[0], err)
		return exit.code
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "keyledger %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "keyledger %s: %v\n", args[0], err)
		return 1
	}
}

// usageError is a bad flag or argument.
type usageError struct{ error }

// parseFlags applies KEYLEDGER_* environment variables to fs's flags, then
// the command line, which wins.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "KEYLEDGER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = usageError{fmt.Errorf("environment %s=%q: %w", name, v, err)}
			}
			// A repeatable flag's command-line values replace the
			// environment's rather than add to them.
			if e, ok := f.Value.(interface{ fromEnvironment() }); ok {
				e.fromEnvironment()
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	return parseArgs(fs, args)
}

// parseArgs parses the command line alone: for one-off commands such as
// cert, where a stray KEYLEDGER_FORCE in the environment must not decide
// whether a key file is overwritten.
func parseArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	return nil
}
