// Command keyledger is the event-sourced API-key ledger: one binary whose
// subcommands run the ledger API (serve) and validation nodes (validator).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyledger/keyledger/internal/natsproc"
)

func main() {
	// A nats-server node of `keyledger bench --only failover` is this
	// binary started again: it runs here and never returns.
	natsproc.Main()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code: 0 on
// success (and for help, printed on stdout), 2 for usage errors (printed
// with a hint at the command's help on stderr), a command's own code
// (exitError), 1 for anything else.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		args = []string{"version"}
	}
	err := dispatch(ctx, "", args, stdio{in: os.Stdin, out: stdout, err: stderr})
	if err == nil {
		return 0
	}
	path := ""
	var cmdErr *commandError
	if errors.As(err, &cmdErr) {
		path = cmdErr.path
	}
	var help helpError
	var exit exitError
	switch {
	case errors.As(err, &help):
		fmt.Fprint(stdout, help.text)
		return 0
	case errors.As(err, &exit):
		fmt.Fprintf(stderr, "%s: %v\n", commandName(path), err)
		return exit.code
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", commandName(path), err, commandName(path))
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", commandName(path), err)
		return 1
	}
}
