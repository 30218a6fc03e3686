package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// The command tree: groups name their subcommands in the order help lists
// them, leafCommand runs the rest, and docs (help.go) describes them all.
// A command's path is its words after "keyledger" ("admin users create");
// the root is "".

// groups are the commands that only choose a subcommand.
var groups = map[string][]string{
	"":                  {"serve", "validator", "init", "setup", "cert", "audit", "admin", "healthcheck", "sign", "bench", "version", "help"},
	"cert":              {"csr", "selfsigned"},
	"audit":             {"verify", "replay", "state", "pubkey", "trust-root"},
	"admin":             {"keygen", "keys", "users", "teams", "admin-keys", "ledger-keys", "invitations", "usage", "nodes", "integrity"},
	"admin invitations": {"create"},
	"admin admin-keys":  {"list", "enroll", "revoke"},
	"admin ledger-keys": {"list", "add", "retire"},
	"admin keys":        {"list", "revoke", "disable", "enable", "set-scopes", "add-credits"},
	"admin users":       {"list", "create", "disable", "enable", "revoke-keys", "revoke-sessions", "erase"},
	"admin teams":       {"list", "transfer", "disable", "enable"},
}

// stdio are a command's standard streams.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// leafCommand returns the function that runs the command at path, or nil.
func leafCommand(path string) func(context.Context, []string, stdio) error {
	switch path {
	case "serve":
		return func(ctx context.Context, args []string, s stdio) error { return runServe(ctx, args, s.err) }
	case "validator":
		return func(ctx context.Context, args []string, s stdio) error { return runValidator(ctx, args, s.err) }
	case "init":
		return func(ctx context.Context, args []string, s stdio) error { return runInit(ctx, args, s.out, s.err) }
	case "setup":
		return func(ctx context.Context, args []string, s stdio) error { return runSetup(ctx, args, s.out, s.err) }
	case "cert csr", "cert selfsigned":
		return func(ctx context.Context, args []string, s stdio) error {
			return runCertCommand(ctx, path == "cert selfsigned", args, s.out, s.err)
		}
	case "audit verify":
		return func(ctx context.Context, args []string, s stdio) error { return auditVerify(ctx, args, s.out, s.err) }
	case "audit replay":
		return func(ctx context.Context, args []string, s stdio) error { return auditReplay(ctx, args, s.out, s.err) }
	case "audit state":
		return func(ctx context.Context, args []string, s stdio) error { return auditState(ctx, args, s.out, s.err) }
	case "audit trust-root":
		return func(ctx context.Context, args []string, s stdio) error {
			return auditTrustRoot(ctx, args, s.out, s.err)
		}
	case "audit pubkey":
		return func(ctx context.Context, args []string, s stdio) error { return auditPubkey(ctx, args, s.out, s.err) }
	case "admin keygen":
		return func(ctx context.Context, args []string, s stdio) error { return adminKeygen(ctx, args, s.out, s.err) }
	case "admin admin-keys list":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminAdminKeysList(ctx, args, s.out, s.err)
		}
	case "admin admin-keys enroll":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminAdminKeysEnroll(ctx, args, s.out, s.err)
		}
	case "admin admin-keys revoke":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminAdminKeysRevoke(ctx, args, s.out, s.err)
		}
	case "admin usage":
		return func(ctx context.Context, args []string, s stdio) error { return adminUsage(ctx, args, s.out, s.err) }
	case "admin integrity":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminIntegrity(ctx, args, s.out, s.err)
		}
	case "admin nodes":
		return func(ctx context.Context, args []string, s stdio) error { return adminNodes(ctx, args, s.out) }
	case "admin keys list":
		return func(ctx context.Context, args []string, s stdio) error { return adminKeysList(ctx, args, s.out, s.err) }
	case "admin keys revoke":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminKeysRevoke(ctx, args, s.out, s.err)
		}
	case "admin keys disable", "admin keys enable":
		verb := strings.TrimPrefix(path, "admin keys ")
		return func(ctx context.Context, args []string, s stdio) error { return adminKeysAct(ctx, verb, args, s.out) }
	case "admin keys set-scopes":
		return func(ctx context.Context, args []string, s stdio) error { return adminKeysSetScopes(ctx, args, s.out) }
	case "admin keys add-credits":
		return func(ctx context.Context, args []string, s stdio) error { return adminKeysAddCredits(ctx, args, s.out) }
	case "admin ledger-keys list":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminLedgerKeysList(ctx, args, s.out, s.err)
		}
	case "admin ledger-keys add":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminLedgerKeysAdd(ctx, args, s.out, s.err)
		}
	case "admin ledger-keys retire":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminLedgerKeysRetire(ctx, args, s.out, s.err)
		}
	case "admin users list":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminUsersList(ctx, args, s.out, s.err)
		}
	case "admin users create":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminUsersCreate(ctx, args, s.in, s.out, s.err)
		}
	case "admin users disable", "admin users enable", "admin users revoke-keys", "admin users erase",
		"admin users revoke-sessions":
		verb := strings.TrimPrefix(path, "admin users ")
		return func(ctx context.Context, args []string, s stdio) error {
			return adminUsersAct(ctx, verb, args, s.out, s.err)
		}
	case "admin teams list":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminTeamsList(ctx, args, s.out, s.err)
		}
	case "admin teams transfer":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminTeamsTransfer(ctx, args, s.out, s.err)
		}
	case "admin teams disable", "admin teams enable":
		verb := strings.TrimPrefix(path, "admin teams ")
		return func(ctx context.Context, args []string, s stdio) error {
			return adminTeamsAct(ctx, verb, args, s.out, s.err)
		}
	case "admin invitations create":
		return func(ctx context.Context, args []string, s stdio) error {
			return adminInvitationsCreate(ctx, args, s.out, s.err)
		}
	case "healthcheck":
		return func(ctx context.Context, args []string, s stdio) error {
			return runHealthcheck(ctx, args, s.out, s.err)
		}
	case "sign":
		return func(ctx context.Context, args []string, s stdio) error { return runSign(ctx, args, s.out, s.err) }
	case "bench":
		return func(ctx context.Context, args []string, s stdio) error { return runBench(ctx, args, s.out, s.err) }
	case "version":
		return func(_ context.Context, args []string, s stdio) error { return runVersion(args, s.out) }
	case "help":
		return func(_ context.Context, args []string, _ stdio) error { return runHelp(args) }
	}
	return nil
}

// dispatch runs the command at path with args: a group picks its
// subcommand from args[0], a leaf runs. Errors come back as a
// *commandError naming the command that failed, for the hint run prints.
func dispatch(ctx context.Context, path string, args []string, s stdio) error {
	subs, isGroup := groups[path]
	if !isGroup {
		if err := leafCommand(path)(ctx, args, s); err != nil {
			return &commandError{path: path, err: err}
		}
		return nil
	}
	if len(args) == 0 {
		fmt.Fprint(s.err, groupHelp(path))
		fmt.Fprintln(s.err)
		return &commandError{path: path, err: usageError{fmt.Errorf("missing command (one of %s)", strings.Join(subs, ", "))}}
	}
	if !slices.Contains(subs, args[0]) {
		if isHelpArg(args[0]) {
			// "keyledger admin --help" and "keyledger admin help users".
			return &commandError{path: path, err: helpAt(path, args[1:])}
		}
		return &commandError{path: path, err: usageError{fmt.Errorf("unknown command %q (one of %s)", args[0], strings.Join(subs, ", "))}}
	}
	return dispatch(ctx, joinPath(path, args[0]), args[1:], s)
}

func joinPath(path, word string) string {
	if path == "" {
		return word
	}
	return path + " " + word
}

// isHelpArg reports whether a group's argument asks for its help.
func isHelpArg(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// runHelp runs `keyledger help [command...]`.
func runHelp(args []string) error {
	if len(args) == 1 && isHelpArg(args[0]) {
		return helpError{commandHelp("help", nil)}
	}
	return helpAt("", args)
}

// helpAt returns the help of the command that words name below path, as
// a helpError.
func helpAt(path string, words []string) error {
	for i, w := range words {
		subs, ok := groups[path]
		if !ok || !slices.Contains(subs, w) {
			return usageError{fmt.Errorf("no command %q", commandName(joinPath(path, strings.Join(words[i:], " "))))}
		}
		path = joinPath(path, w)
	}
	if _, ok := groups[path]; ok {
		return helpError{groupHelp(path)}
	}
	// A leaf returns its help, with its flags, when asked for it; it acts
	// on nothing before its flags are parsed.
	return leafCommand(path)(context.Background(), []string{"--help"}, stdio{in: strings.NewReader(""), out: io.Discard, err: io.Discard})
}

// commandError is an error of the command at path.
type commandError struct {
	path string
	err  error
}

func (e *commandError) Error() string { return e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// usageError is a bad command, flag, flag value or argument: exit code 2.
type usageError struct{ error }

// Unwrap returns the error, so that errors.Is and errors.As see through.
func (e usageError) Unwrap() error { return e.error }

// helpError is the help a command was asked for, with -h, -help or --help:
// run prints text on stdout and exits 0. It matches flag.ErrHelp.
type helpError struct{ text string }

func (helpError) Error() string        { return flag.ErrHelp.Error() }
func (helpError) Is(target error) bool { return target == flag.ErrHelp }

// envName is the environment variable of a flag: --nats-url is
// KEYLEDGER_NATS_URL.
func envName(flagName string) string {
	return "KEYLEDGER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// cmdLineBool is a boolean flag that only the command line sets: one whose
// stray KEYLEDGER_* variable could destroy data or grant trust (cert
// --force, admin users create --admin).
type cmdLineBool bool

func (b *cmdLineBool) String() string { return strconv.FormatBool(bool(*b)) }

// Set parses a boolean as the flag package's boolean flags do.
func (b *cmdLineBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("parse error")
	}
	*b = cmdLineBool(v)
	return nil
}

// IsBoolFlag lets --force stand without a value.
func (b *cmdLineBool) IsBoolFlag() bool { return true }

// Get returns the flag's value, for flag.Getter.
func (b *cmdLineBool) Get() any { return bool(*b) }

func commandLineOnly(f *flag.Flag) bool {
	_, ok := f.Value.(*cmdLineBool)
	return ok
}

// applyEnv sets fs's flags from KEYLEDGER_* environment variables, except
// those only the command line may set. A bad value is a usage error that
// names the variable.
func applyEnv(fs *flag.FlagSet) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if envErr != nil || commandLineOnly(f) {
			return
		}
		name := envName(f.Name)
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = usageError{fmt.Errorf("environment %s=%q: %w", name, v, err)}
			return
		}
		// A repeatable flag's command-line values replace the
		// environment's rather than add to them.
		if e, ok := f.Value.(interface{ fromEnvironment() }); ok {
			e.fromEnvironment()
		}
	})
	return envErr
}

// parseFlags applies KEYLEDGER_* environment variables to fs's flags, then
// the command line, which wins; it refuses arguments that are not flags.
// -h, -help and --help return a helpError with the command's help (fs's
// name is the command's path), even when a variable's value is bad.
func parseFlags(fs *flag.FlagSet, args []string) error {
	envErr := applyEnv(fs)
	err := parseArgs(fs, args)
	if envErr != nil && !errors.Is(err, flag.ErrHelp) {
		// A bad variable does not keep --help from helping.
		return envErr
	}
	return err
}

// parseArgs parses the command line alone and refuses arguments that are
// not flags.
func parseArgs(fs *flag.FlagSet, args []string) error {
	if err := parseCommandLine(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	return nil
}

// parseCommandLine parses flags up to the first argument that is none;
// the command prints nothing itself (run prints errors and help).
func parseCommandLine(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return helpError{commandHelp(fs.Name(), fs)}
		}
		return usageError{err}
	}
	return nil
}

// newFlagSet returns the flag set of the command at path.
func newFlagSet(path string) *flag.FlagSet {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
