package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/natsauth"
)

// adminFlags are what every admin command needs to act on the ledger.
type adminFlags struct {
	logFlags
	signingKey string
	name       string
	asJSON     bool
}

func (a *adminFlags) register(fs *flag.FlagSet) {
	a.logFlags.register(fs)
	fs.Lookup("nats-creds").Usage = "NATS credentials file (user JWT and NKey seed) (default creds/ledger.creds beside --signing-key, if it exists: what a local serve wrote)"
	a.defaultCreds = func() string {
		return filepath.Join(filepath.Dir(a.signingKey), "creds", string(natsauth.Ledger)+".creds")
	}
	fs.StringVar(&a.signingKey, "signing-key", filepath.Join("data", "ledger-ed25519.pem"), "the ledger's event signing key (admin commands write signed events)")
	def := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		def = u.Username
	}
	fs.StringVar(&a.name, "name", def, "who you are: recorded as actor admin:<name>")
	fs.BoolVar(&a.asJSON, "json", false, "print JSON instead of a table")
}

// open builds the ledger's use cases over NATS and waits until its read
// models have caught up with the log.
func (a *adminFlags) open(ctx context.Context) (*ledger.Service, func(), error) {
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
	l, err := app.OpenLedger(sctx, nc, app.LedgerConfig{Stream: a.stream, SigningKey: key, Logger: discardLogger()})
	if err != nil {
		nc.Close()
		return nil, nil, exitError{3, err}
	}
	if err := l.Projector.WaitReady(sctx); err != nil {
		l.Close()
		nc.Close()
		return nil, nil, exitError{3, fmt.Errorf("catch up with the log: %w", err)}
	}
	return l.Service, func() { l.Close(); nc.Close() }, nil
}

func (a *adminFlags) actor() string { return domain.AdminActor(a.name) }

// refused turns a use case's error into exit code 1 (or 3 when the log is
// out of reach).
func refused(err error) error {
	if domain.KindOf(err) == domain.Unavailable {
		return exitError{3, err}
	}
	return exitError{1, errors.New(domain.MessageOf(err))}
}

// runAdmin runs `keyledger admin keys|users <command>`.
func runAdmin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return dispatch(ctx, "admin", args, stdio{in: stdin, out: stdout, err: stderr})
}

// positional parses flags (environment, then command line) that may come
// before or after one positional argument (the id the command acts on).
func positional(fs *flag.FlagSet, args []string, what string) (string, error) {
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	envErr := applyEnv(fs)
	if err := parseCommandLine(fs, args); err != nil {
		return "", err
	}
	if id == "" && fs.NArg() >= 1 {
		// The id between flags: the flag package stops at it, so parse
		// what follows it too.
		id = fs.Arg(0)
		if err := parseCommandLine(fs, fs.Args()[1:]); err != nil {
			return "", err
		}
	}
	if envErr != nil {
		return "", envErr
	}
	if fs.NArg() > 0 {
		return "", usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	if id == "" {
		return "", usageError{fmt.Errorf("missing %s", what)}
	}
	return id, nil
}

func adminKeysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin keys list")
	var af adminFlags
	af.register(fs)
	userID := fs.String("user", "", "only this user's keys")
	status := fs.String("status", "", "only keys in these statuses (comma-separated: active, revoked, expired)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var statuses []domain.KeyStatus
	if *status != "" {
		for _, s := range strings.Split(*status, ",") {
			st := domain.KeyStatus(strings.TrimSpace(s))
			if st != domain.StatusActive && st != domain.StatusRevoked && st != domain.StatusExpired {
				return usageError{fmt.Errorf("--status %q: want active, revoked or expired", s)}
			}
			statuses = append(statuses, st)
		}
	}
	svc, closeFn, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	keys, err := svc.AdminListKeys(*userID, statuses)
	if err != nil {
		return refused(err)
	}
	now := svc.Now()
	if af.asJSON {
		out := make([]map[string]any, len(keys))
		for i, k := range keys {
			out[i] = map[string]any{"api_key": k.APIKey, "user_id": k.UserID, "name": k.Name,
				"status": k.StatusAt(now), "created_at": k.CreatedAt, "expires_at": optTime(k.ExpiresAt),
				"revoked_at": optTime(k.RevokedAt)}
		}
		return json.NewEncoder(stdout).Encode(map[string]any{"keys": out})
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "API KEY\tUSER\tSTATUS\tNAME\tCREATED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.APIKey, k.UserID, k.StatusAt(now), k.Name, k.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func adminKeysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin keys revoke")
	var af adminFlags
	af.register(fs)
	reason := fs.String("reason", "", "why (recorded in the event)")
	apiKey, err := positional(fs, args, "api key")
	if err != nil {
		return err
	}
	if *reason == "" {
		return usageError{errors.New("--reason is required")}
	}
	svc, closeFn, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := svc.AdminRevokeKey(ctx, ledger.AdminRevokeKey{Actor: af.actor(), APIKey: apiKey, Reason: *reason}); err != nil {
		return refused(err)
	}
	fmt.Fprintf(stdout, "revoked %s\n", apiKey)
	return nil
}

func adminUsersList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin users list")
	var af adminFlags
	af.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	svc, closeFn, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	users := svc.ListUsers()
	if af.asJSON {
		out := make([]map[string]any, len(users))
		for i, u := range users {
			out[i] = map[string]any{"id": u.ID, "email": u.Email, "role": u.Role, "disabled": u.Disabled, "created_at": u.CreatedAt}
		}
		return json.NewEncoder(stdout).Encode(map[string]any{"users": out})
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tEMAIL\tROLE\tSTATUS\tCREATED")
	for _, u := range users {
		status := "active"
		if u.Disabled {
			status = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Role, status, u.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func adminUsersCreate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin users create")
	var af adminFlags
	af.register(fs)
	email := fs.String("email", "", "the user's email address")
	var isAdmin cmdLineBool
	fs.Var(&isAdmin, "admin", "give the user the admin role (command line only: a stray KEYLEDGER_ADMIN must not make an admin)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *email == "" {
		return usageError{errors.New("--email is required")}
	}
	if isTerminal(stderr) {
		fmt.Fprint(stderr, "password: ")
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return usageError{errors.New("no password on standard input")}
	}
	password := strings.TrimRight(line, "\r\n")
	role := domain.RoleUser
	if isAdmin {
		role = domain.RoleAdmin
	}
	svc, closeFn, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	u, err := svc.CreateUser(ctx, ledger.CreateUser{Actor: af.actor(), Email: *email, Password: password, Role: role})
	if err != nil {
		return refused(err)
	}
	fmt.Fprintf(stdout, "created %s %s (%s)\n", u.ID, u.Email, u.Role)
	return nil
}

func adminUsersAct(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin users " + verb)
	var af adminFlags
	af.register(fs)
	reason := fs.String("reason", "", "why (recorded in the events)")
	userID, err := positional(fs, args, "user id")
	if err != nil {
		return err
	}
	if *reason == "" && verb != "enable" {
		return usageError{errors.New("--reason is required")}
	}
	svc, closeFn, err := af.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	switch verb {
	case "disable":
		err = svc.DisableUser(ctx, ledger.DisableUser{Actor: af.actor(), UserID: userID, Reason: *reason})
	case "enable":
		err = svc.EnableUser(ctx, ledger.EnableUser{Actor: af.actor(), UserID: userID, Reason: *reason})
	default:
		var revoked []string
		revoked, err = svc.RevokeUserKeys(ctx, ledger.RevokeUserKeys{Actor: af.actor(), UserID: userID, Reason: *reason})
		for _, k := range revoked {
			fmt.Fprintf(stdout, "revoked %s\n", k)
		}
		if err == nil {
			fmt.Fprintf(stdout, "%d keys revoked\n", len(revoked))
		}
	}
	if err != nil {
		return refused(err)
	}
	if verb != "revoke-keys" {
		fmt.Fprintf(stdout, "%sd %s\n", verb, userID)
	}
	return nil
}
