package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/natsauth"
)

// adminFlags are what the ledger-keys commands need: they act on the log's
// trust over NATS with the ledger's own signing key.
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

func (a *adminFlags) actor() string { return domain.AdminActor(a.name) }

// refused turns a use case's error into exit code 1 (or 3 when the log is
// out of reach).
func refused(err error) error {
	if domain.KindOf(err) == domain.Unavailable {
		return exitError{3, err}
	}
	return exitError{1, errors.New(domain.MessageOf(err))}
}

// keyIDLike reports whether arg, which starts with '-', is a key id
// (twelve base64url characters, as domain.LedgerKeyID and
// domain.AdminKeyID make, a quarter of which start with '-' or '_')
// rather than a flag of fs.
func keyIDLike(fs *flag.FlagSet, arg string) bool {
	if len(arg) != 12 || fs.Lookup(strings.TrimLeft(arg, "-")) != nil {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(arg)
	return err == nil
}

// runAdmin runs `keyledger admin keys|users <command>`.
func runAdmin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return dispatch(ctx, "admin", args, stdio{in: stdin, out: stdout, err: stderr})
}

// positional parses flags (environment, then command line) that may come
// before or after one positional argument (the id the command acts on).
func positional(fs *flag.FlagSet, args []string, what string) (string, error) {
	var id string
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || keyIDLike(fs, args[0])) {
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
	var af apiFlags
	af.register(fs)
	userID := fs.String("user", "", "only this user's keys")
	status := fs.String("status", "", "only keys in these statuses (comma-separated: active, revoked, expired, disabled)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, st := range strings.Split(*status, ",") {
		if st := domain.KeyStatus(strings.TrimSpace(st)); *status != "" && st != domain.StatusActive && st != domain.StatusRevoked &&
			st != domain.StatusExpired && st != domain.StatusDisabled {
			return usageError{fmt.Errorf("--status %q: want active, revoked, expired or disabled", st)}
		}
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *userID != "" {
		q.Set("user", *userID)
	}
	if *status != "" {
		q.Set("status", *status)
	}
	path := "/admin/keys"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var list struct {
		Keys []struct {
			APIKey    string    `json:"api_key"`
			UserID    string    `json:"user_id"`
			Name      string    `json:"name"`
			Status    string    `json:"status"`
			CreatedAt time.Time `json:"created_at"`
		} `json:"keys"`
	}
	return api.list(ctx, path, af.asJSON, stdout, &list, func(tw io.Writer) {
		fmt.Fprintln(tw, "API KEY\tUSER\tSTATUS\tNAME\tCREATED")
		for _, k := range list.Keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.APIKey, k.UserID, k.Status, k.Name, k.CreatedAt.Format(time.RFC3339))
		}
	})
}

func adminKeysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return adminDelete(ctx, args, stdout, "admin keys revoke", "api key", "/admin/keys/", "revoked %s\n", true)
}

// adminKeysAct pauses (verb "disable") or resumes ("enable") any user's
// key, recording the reason and the admin as actor.
func adminKeysAct(ctx context.Context, verb string, args []string, stdout io.Writer) error {
	fs := newFlagSet("admin keys " + verb)
	var af apiFlags
	af.register(fs)
	reason := fs.String("reason", "", "why (recorded in the event)")
	wait := new(bool)
	if verb == "disable" {
		registerWaitNodes(fs, wait)
	}
	apiKey, err := positional(fs, args, "api key")
	if err != nil {
		return err
	}
	if *reason == "" && verb == "disable" {
		return usageError{errors.New("--reason is required")}
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	var body any
	if *reason != "" {
		body = map[string]string{"reason": *reason}
	}
	if err := api.doWait(ctx, *wait, "POST", "/admin/keys/"+url.PathEscape(apiKey)+"/"+verb, body); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%sd %s\n", verb, apiKey)
	return nil
}

// adminKeysSetScopes replaces the scopes of any user's key, in force on
// every validation node once it answers.
func adminKeysSetScopes(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("admin keys set-scopes")
	var af apiFlags
	af.register(fs)
	scopes := fs.String("scopes", "", `the key's scopes from now on, comma- or space-separated ("" for none)`)
	apiKey, err := positional(fs, args, "api key")
	if err != nil {
		return err
	}
	set := []string{}
	for _, s := range strings.FieldsFunc(*scopes, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !domain.ValidScope(s) {
			return usageError{fmt.Errorf("--scopes: %q is not a scope (A-Z a-z 0-9 . _ : / - and an optional trailing *)", s)}
		}
		set = append(set, s)
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	var out struct {
		Scopes []string `json:"scopes"`
	}
	if err := api.do(ctx, "PATCH", "/admin/keys/"+url.PathEscape(apiKey), map[string][]string{"scopes": set}, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s scopes: %s\n", apiKey, strings.Join(out.Scopes, " "))
	return nil
}

// adminDelete is an admin command that deletes one thing with a reason:
// its one argument (what) names it under the route prefix, and done is
// printed with it once the ledger has answered.
func adminDelete(ctx context.Context, args []string, stdout io.Writer, path, what, prefix, done string, waitable bool) error {
	fs := newFlagSet(path)
	var af apiFlags
	af.register(fs)
	reason := fs.String("reason", "", "why (recorded in the event)")
	wait := new(bool)
	if waitable {
		registerWaitNodes(fs, wait)
	}
	id, err := positional(fs, args, what)
	if err != nil {
		return err
	}
	if *reason == "" {
		return usageError{errors.New("--reason is required")}
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	if err := api.doWait(ctx, *wait, "DELETE", prefix+url.PathEscape(id), map[string]string{"reason": *reason}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, done, id)
	return nil
}

type adminUser struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
}

func adminUsersList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin users list")
	var af apiFlags
	af.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	var list struct {
		Users []adminUser `json:"users"`
	}
	if err := api.do(ctx, "GET", "/admin/users", nil, &list); err != nil {
		return err
	}
	if af.asJSON {
		return json.NewEncoder(stdout).Encode(list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tEMAIL\tROLE\tSTATUS\tCREATED")
	for _, u := range list.Users {
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
	var af apiFlags
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
	api, err := af.open()
	if err != nil {
		return err
	}
	// The salt keeps the digest of the body, which serve keeps in the log
	// with the signature, from being a password hash.
	var salt [24]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return err
	}
	body := map[string]string{"email": *email, "password": password, "role": string(role),
		"salt": base64.RawURLEncoding.EncodeToString(salt[:])}
	var u adminUser
	if err := api.do(ctx, "POST", "/admin/users", body, &u); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s %s (%s)\n", u.ID, u.Email, u.Role)
	return nil
}

func adminUsersAct(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin users " + verb)
	var af apiFlags
	af.register(fs)
	reason := fs.String("reason", "", "why (recorded in the events)")
	userID, err := positional(fs, args, "user id")
	if err != nil {
		return err
	}
	if *reason == "" && verb != "enable" {
		return usageError{errors.New("--reason is required")}
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	path := "/admin/users/" + url.PathEscape(userID) + "/" + verb
	var body any
	if *reason != "" {
		body = map[string]string{"reason": *reason}
	}
	if verb != "revoke-keys" && verb != "erase" {
		if err := api.do(ctx, "POST", path, body, nil); err != nil {
			return err
		}
		if verb == "revoke-sessions" {
			fmt.Fprintf(stdout, "revoked the sessions of %s\n", userID)
			return nil
		}
		fmt.Fprintf(stdout, "%sd %s\n", verb, userID)
		return nil
	}
	var out struct {
		Revoked []string `json:"revoked"`
	}
	if err := api.do(ctx, "POST", path, body, &out); err != nil {
		return err
	}
	for _, k := range out.Revoked {
		fmt.Fprintf(stdout, "revoked %s\n", k)
	}
	fmt.Fprintf(stdout, "%d keys revoked\n", len(out.Revoked))
	if verb == "erase" {
		fmt.Fprintf(stdout, "erased %s\n", userID)
	}
	return nil
}

func adminAdminKeysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin admin-keys list")
	var af apiFlags
	af.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	var list struct {
		Keys []struct {
			KeyID      string    `json:"key_id"`
			Admin      string    `json:"admin"`
			Revoked    bool      `json:"revoked"`
			EnrolledAt time.Time `json:"enrolled_at"`
			EnrolledBy string    `json:"enrolled_by"`
		} `json:"admin_keys"`
	}
	return api.list(ctx, "/admin/admin-keys", af.asJSON, stdout, &list, func(tw io.Writer) {
		fmt.Fprintln(tw, "KEY ID\tADMIN\tSTATUS\tENROLLED BY\tENROLLED")
		for _, k := range list.Keys {
			status := "active"
			if k.Revoked {
				status = "revoked"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.KeyID, k.Admin, status, k.EnrolledBy, k.EnrolledAt.Format(time.RFC3339))
		}
	})
}

func adminAdminKeysEnroll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin admin-keys enroll")
	var af apiFlags
	af.register(fs)
	reason := fs.String("reason", "", "why (recorded in the event)")
	pubFile := fs.String("pub", "", "the new admin's public key file, as their keyledger admin keygen wrote it")
	name, err := positional(fs, args, "admin name")
	if err != nil {
		return err
	}
	if *pubFile == "" {
		return usageError{errors.New("--pub is required")}
	}
	pub, err := app.ReadAdminPublicKey(*pubFile)
	if err != nil {
		return exitError{2, fmt.Errorf("--pub: %w", err)}
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	var out struct {
		KeyID string `json:"key_id"`
	}
	text, _ := pub.MarshalText()
	if err := api.do(ctx, "POST", "/admin/admin-keys", map[string]string{"name": name, "key": string(text), "reason": *reason}, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrolled admin key %s for %s\n", out.KeyID, name)
	return nil
}

func adminAdminKeysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return adminDelete(ctx, args, stdout, "admin admin-keys revoke", "admin key id", "/admin/admin-keys/", "revoked admin key %s\n", false)
}

func adminUsage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin usage")
	var af apiFlags
	af.register(fs)
	window := fs.Duration("window", 24*time.Hour, "count the validations within this `duration` (at most 168h)")
	top := fs.Int("top", 20, "list this many keys (1 to 1000)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *window <= 0 || *window > 168*time.Hour {
		return usageError{fmt.Errorf("--window %v: want a duration up to 168h", *window)}
	}
	if *top < 1 || *top > 1000 {
		return usageError{fmt.Errorf("--top %d: want 1 to 1000", *top)}
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	q := url.Values{"window": {window.String()}, "top": {strconv.Itoa(*top)}}
	var list struct {
		Keys []struct {
			APIKey     string            `json:"api_key"`
			Valid      uint64            `json:"valid"`
			Refused    map[string]uint64 `json:"refused"`
			LastUsedAt *time.Time        `json:"last_used_at"`
		} `json:"keys"`
	}
	return api.list(ctx, "/admin/usage?"+q.Encode(), af.asJSON, stdout, &list, func(tw io.Writer) {
		fmt.Fprintln(tw, "API KEY\tVALID\tREFUSED\tLAST USED")
		for _, k := range list.Keys {
			var refused uint64
			for _, n := range k.Refused {
				refused += n
			}
			last := "-"
			if k.LastUsedAt != nil {
				last = k.LastUsedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", k.APIKey, k.Valid, refused, last)
		}
	})
}
