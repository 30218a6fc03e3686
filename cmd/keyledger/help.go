package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"
)

// commandDoc is the help of one command.
type commandDoc struct {
	purpose string   // one line; also what its group lists
	usage   string   // the usage line(s), after "Usage: "
	about   string   // optional: what it does, in more words
	example string   // at least one runnable command line
	hidden  []string // flags help does not show
}

// docs describes every command by its path ("" is keyledger itself).
var docs = map[string]commandDoc{
	"": {
		purpose: "an event-sourced API-key ledger on NATS JetStream",
		usage:   "keyledger <command> [<subcommand>] [flags]\n       keyledger --version",
		example: "keyledger serve\n" +
			"keyledger admin users list\n" +
			"keyledger help audit verify",
	},
	"serve": {
		purpose: "run the ledger HTTP API (embedded NATS by default)",
		usage:   "keyledger serve [flags]",
		about: `Runs the ledger's HTTP API over the event log: with an embedded NATS server
(data under --data-dir, listening on loopback) unless --nats-url names an
existing server or cluster. Runs until SIGINT or SIGTERM, then shuts down
gracefully.

Who may register (POST /users) is --registration: open on a loopback
--http-addr without --trusted-proxy (nobody else can reach it), else
verified by default, which mails a link through --smtp-url and refuses to
start without one; invite and closed need no mail server.

With --oidc-issuer, --oidc-client-id and --oidc-client-secret-file, users
also log in through an OpenID provider (GET /oidc/login): a first login
with a verified address creates the account (not with --registration
closed; with invite only for --oidc-allowed-domains), and an address that
belongs to an account links to it once its password confirms (POST
/oidc/link).`,
		example: "keyledger serve --data-dir ./data --http-addr 127.0.0.1:8080\n" +
			"KEYLEDGER_NATS_URL=nats://nats-1:4222 KEYLEDGER_REPLICAS=3 keyledger serve\n" +
			"keyledger serve --oidc-issuer https://accounts.google.com --oidc-client-id ID --oidc-client-secret-file oidc-secret --oidc-allowed-domains example.com --public-url https://keys.example.com",
	},
	"validator": {
		purpose: "run a validation node that follows the event log",
		usage:   "keyledger validator [flags]",
		about: `Follows the event log and validates API keys locally on /validate, with
/healthz and /readyz beside it and /metrics on a loopback listener of its
own (--metrics-addr). Answers 503 rather than trust a stale view once the
log has been out of reach for --max-staleness. Behind a forward-auth proxy,
name it with --trusted-proxy for signed requests.`,
		example: "keyledger validator --nats-url nats://127.0.0.1:4222 --nats-creds data/creds/validator.creds --http-addr 127.0.0.1:8081\n" +
			`keyledger validator --ledger-key "$(keyledger audit pubkey)"`,
	},
	"init": {
		purpose: "write a NATS cluster's keys, server config includes and role credentials",
		usage:   "keyledger init [--out DIR] [--routes HOST:PORT,...] [--force]",
		about: `Writes what a NATS cluster running keyledger needs (docs/deployment.md):
  keys/              operator and account nkey seeds, every role's credentials
                     and the route password; keep them, back them up
  nats/auth.conf     the operator and account JWTs (memory resolver), for
                     every NATS server's config to include
  nats/cluster.conf  route user, password and authenticated routes (--routes)
  ROLE/ROLE.creds    operator, ledger, validator and auditor credentials, one
                     directory each, to mount in that role's service only
Files are mode 0600. A second run reuses keys/ and writes the same files; a
file that would change is refused without --force. To rotate, remove what
to replace from keys/ and run it again with --force.`,
		example: "keyledger init --out deploy/secrets --routes nats-1:6222,nats-2:6222,nats-3:6222",
	},
	"setup": {
		purpose: "create the event stream and its buckets on a NATS cluster, for serve",
		usage:   "keyledger setup --nats-url URLS --nats-creds OPERATOR.creds [--replicas N] [flags]",
		about: `Creates the event stream and the idempotency and nonce buckets on the NATS
cluster serve will use, as serve would configure them (give it the same
--stream, --replicas, size limits, --idempotency-ttl and --signature-window
as serve), or brings them up to date; run again, it changes only what
differs. It needs the operator's credentials and writes no event: serve then
runs with the ledger's credentials, which may not create or change a stream,
and writes the genesis itself.`,
		example: "keyledger setup --nats-url nats://nats-1:4222 --nats-creds secrets/operator/operator.creds --replicas 3",
	},
	"cert": {
		purpose: "create a private key and a CSR or a self-signed certificate",
		usage:   "keyledger cert <command> [flags]",
		example: `keyledger cert selfsigned --subject "/CN=localhost"`,
	},
	"cert csr": {
		purpose: "create a private key and a certificate signing request",
		usage:   "keyledger cert csr --subject SUBJECT [flags]",
		about: `Create a private key and a certificate signing request (CSR) to send to a
certificate authority; the equivalent of
  openssl req -new -nodes -newkey rsa:2048 -keyout private.key -out request.csr

The key is written unencrypted (PKCS#8 PEM, file mode 0600). Existing files
are never replaced without --force. A CN that names a host (an IP address,
"localhost" or a DNS name with a dot) is also added as a subject alternative
name, since browsers look only at those.`,
		example: `keyledger cert csr --subject "/C=DE/O=Example GmbH/CN=api.example.com" \
  --dns api.example.com --dns www.example.com --key-out private.key --out request.csr`,
	},
	"cert selfsigned": {
		purpose: "create a private key and a self-signed TLS server certificate",
		usage:   "keyledger cert selfsigned [flags]",
		about: `Create a private key and a self-signed TLS server certificate; the equivalent of
  openssl req -x509 -nodes -days 365 -newkey rsa:2048 -keyout private.key -out certificate.crt

The key is written unencrypted (PKCS#8 PEM, file mode 0600). Existing files
are never replaced without --force. The certificate is valid for --days from
now, for serverAuth, and is not a CA. Its subject alternative names are the
--dns and --ip values or, without them, localhost, 127.0.0.1 and ::1; a CN
that names a host is always added. Clients trust it with e.g.
curl --cacert certificate.crt.`,
		example: `keyledger cert selfsigned --subject "/O=Example/CN=keyledger.internal" \
  --dns keyledger.internal --ip 10.0.0.5 --key-type ecdsa --days 90
keyledger serve --tls-cert certificate.crt --tls-key private.key`,
	},
	"audit": {
		purpose: "verify, replay and query the event log",
		usage:   "keyledger audit <command> [flags]",
		about: `Read the event log back, straight from NATS; nothing here writes.

Exit codes: 0 success (verify: the log is intact), 1 verify found problems
or state found nothing, 2 usage error, 3 the log could not be read.`,
		example: "keyledger audit verify\n" +
			"KEYLEDGER_NATS_URL=nats://nats-1:4222 keyledger audit replay --format table",
	},
	"audit verify": {
		purpose: "check signatures, hash chains, sequence gaps and signed checkpoints",
		usage:   "keyledger audit verify [flags]",
		about: `Walk the whole log and check every message: nothing missing (sequence
gaps), nothing forged or altered (ledger signatures), nothing dropped or
reordered (each aggregate's hash chain), every signed checkpoint's Merkle
root, and that each event recorded as an admin's act keeps a request
signed by that admin's key, active there, for the route that causes it.
Keep the last checkpoint it prints and pass it as --expect next
time: a log rewritten or cut short since is then caught too.`,
		example: "keyledger audit verify\n" +
			"keyledger audit verify --expect 1200:9f86d0... --json",
	},
	"audit replay": {
		purpose: "print events, filtered, as JSON Lines or a table (--follow tails)",
		usage:   "keyledger audit replay [flags]",
		about: `Print events from the log in order: stream sequence, time, type,
aggregate, actor and data. JSON Lines by default, a table with
--format table. Long replays show progress on stderr when it is a terminal.`,
		example: "keyledger audit replay --user usr_01J... --since 2026-11-01T00:00:00Z --format table\n" +
			"keyledger audit replay --type key.revoked --follow",
	},
	"audit state": {
		purpose: "reconstruct a key or a user as of a time or a stream sequence",
		usage:   "keyledger audit state (--key K | --user U) [--at T | --at-seq N] [flags]",
		about: `Reconstruct a key or a user as it was at time T or just after stream
sequence N, from the log alone, with the same fold the projections use.`,
		example: "keyledger audit state --key ak_01J... --at 2026-11-20T12:00:00Z",
	},
	"audit trust-root": {
		purpose: "print the fingerprint of the log's genesis, to pin it elsewhere",
		usage:   "keyledger audit trust-root [flags]",
		about: `Print the trust root: "sha256:" and the hex SHA-256 of the log's genesis
message (the exact bytes its signature covers: subject and data). Validation
nodes and auditors pin it with --trust-root FINGERPRINT|FILE and then refuse a
log that starts from any other genesis. Read it where you trust the log (or
from serve's start-up log line) and copy it out of band.`,
		example: "keyledger audit trust-root > trust-root.txt\n" +
			"keyledger validator --trust-root trust-root.txt",
	},
	"audit pubkey": {
		purpose: "print the ledger's public signing key, to pin it elsewhere",
		usage:   "keyledger audit pubkey [--signing-key FILE | --from-stream]",
		about: `Print the ledger's public signing key (unpadded base64url), which auditors
and validation nodes pin (--ledger-key): they then accept only a log whose
genesis that key signed, instead of whichever genesis the stream holds. By
default it reads the local serve's key file.`,
		example: "keyledger audit pubkey\n" +
			`keyledger validator --ledger-key "$(keyledger audit pubkey)"`,
	},
	"admin": {
		purpose: "revoke keys, disable users, enrol admins: requests signed with your admin key",
		usage:   "keyledger admin <keygen|keys|users|teams|admin-keys|ledger-keys> [command] [flags]",
		about: `Act on the ledger as an admin. keys, users, teams and admin-keys send requests to
serve's admin API (--url) signed with your own admin key (--key, RFC 9421,
tag keyledger-admin-v1); serve verifies them against the admin keys the log
enrolled, records your admin as the actor (admin:<name>) and keeps the
signature in the events. They need neither the ledger's signing key nor
NATS credentials. The first admin key is enrolled by serve
--bootstrap-admin FILE.pub; every other by an admin (admin-keys enroll).
ledger-keys acts on the log's trust with the ledger's signing key.

Exit codes: 0 success, 1 the command was refused (not found, conflict, bad
signature, ...), 2 usage error, 3 serve or the log could not be reached, 4
in force but not confirmed by every live validation node (--wait-nodes), 5
the log did not verify (integrity).`,
		example: `keyledger admin keys revoke ak_01J... --reason "leaked in a public repo"`,
	},
	"admin keygen": {
		purpose: "make an admin key pair",
		usage:   "keyledger admin keygen [--out admin.key]",
		about: `Write a new Ed25519 admin private key to --out (PKCS#8 PEM, mode 0600; never
overwrites) and its public key to --out.pub, and print the key id. Give the
.pub file to serve --bootstrap-admin (the first admin) or to an admin who
enrols it (keyledger admin admin-keys enroll).`,
		example: "keyledger admin keygen --out ~/.keyledger/admin.key",
	},
	"admin admin-keys": {
		purpose: "list, enrol and revoke the admin keys",
		usage:   "keyledger admin admin-keys <command> [flags]",
		about:   "Exit codes: as for every admin command (keyledger admin --help).",
		example: "keyledger admin admin-keys list",
	},
	"admin admin-keys list": {
		purpose: "list every admin key, its admin and who enrolled it",
		usage:   "keyledger admin admin-keys list [flags]",
		example: "keyledger admin admin-keys list --json",
	},
	"admin admin-keys enroll": {
		purpose: "enrol an admin key (a new admin, or one more key of one)",
		usage:   "keyledger admin admin-keys enroll <admin_name> --pub FILE.pub [--reason TEXT] [flags]",
		example: `keyledger admin admin-keys enroll bob --pub bob.key.pub --reason "new on-call"`,
	},
	"admin admin-keys revoke": {
		purpose: "revoke an admin key for good",
		usage:   "keyledger admin admin-keys revoke <key_id> --reason TEXT [flags]",
		example: `keyledger admin admin-keys revoke q0bOmm3iQ1tU --reason "laptop lost"`,
	},
	"admin usage": {
		purpose: "list the busiest API keys: valid and refused validations within a window, from the nodes' usage reports",
		usage:   "keyledger admin usage [--window 24h] [--top 20] [flags]",
		example: "keyledger admin usage --window 24h --top 20",
	},
	"admin keys": {
		purpose: "list any user's API keys; revoke, disable, enable, rescope or top up any of them",
		usage:   "keyledger admin keys <command> [flags]",
		about:   "Exit codes: as for every admin command (keyledger admin --help).",
		example: "keyledger admin keys list --status active",
	},
	"admin keys list": {
		purpose: "list API keys, of every user or of one",
		usage:   "keyledger admin keys list [--user U] [--status active,revoked,expired,disabled] [flags]",
		example: "keyledger admin keys list --status active",
	},
	"admin keys revoke": {
		purpose: "revoke any user's key at once, on every validation node",
		usage:   "keyledger admin keys revoke <api_key> --reason TEXT [flags]",
		example: `keyledger admin keys revoke ak_01J... --reason "leaked in a public repo"`,
	},
	"admin keys disable": {
		purpose: "pause any user's key on every validation node until it is enabled",
		usage:   "keyledger admin keys disable <api_key> --reason TEXT [flags]",
		about:   "The key is refused everywhere (401) until enabled; a grace period of its previous secret ends.",
		example: `keyledger admin keys disable ak_01J... --reason "suspicious traffic"`,
	},
	"admin keys enable": {
		purpose: "resume a disabled key",
		usage:   "keyledger admin keys enable <api_key> [--reason TEXT] [flags]",
		example: `keyledger admin keys enable ak_01J... --reason "false alarm"`,
	},
	"admin keys set-scopes": {
		purpose: "replace the scopes of any user's key",
		usage:   "keyledger admin keys set-scopes <api_key> --scopes LIST [flags]",
		about: `LIST is comma- or space-separated; "" leaves the key without scopes (it still
validates but grants no scope). In force on every validation node once the
command returns.`,
		example: `keyledger admin keys set-scopes ak_01J... --scopes orders:read,billing:read`,
	},
	"admin keys add-credits": {
		purpose: "top up the credits of any user's key",
		usage:   "keyledger admin keys add-credits <api_key> <n> [--reason TEXT] [flags]",
		about: `Adds n credits (1 to 1000000000000) to those the key has left: a
key.credits_added event, recorded with the admin as actor and the reason. A key
without credits, or a revoked one, is refused (exit 1). In force on every
validation node once the command returns.`,
		example: `keyledger admin keys add-credits ak_01J... 5000 --reason "goodwill after the outage"`,
	},
	"admin ledger-keys": {
		purpose: "list, add and retire the keys the log trusts to sign its events",
		usage:   "keyledger admin ledger-keys <command> [flags]",
		about: `The keys allowed to sign the log's events are themselves events in the log:
its genesis names the first, and adding or retiring one is an event signed by
a key trusted at that point (--signing-key). Every reader folds them; stream
metadata is never trusted. Rotation: add the new key, move serve to it,
retire the old one. Exit codes: as for every admin command.`,
		example: "keyledger admin ledger-keys list",
	},
	"admin ledger-keys list": {
		purpose: "list the ledger keys the log names, with the sequences they were added and retired at",
		usage:   "keyledger admin ledger-keys list [--ledger-key K] [flags]",
		example: "keyledger admin ledger-keys list --json",
	},
	"admin ledger-keys add": {
		purpose: "trust one more ledger signing key from now on",
		usage:   "keyledger admin ledger-keys add --key PUB|--key-file FILE --reason TEXT [flags]",
		about: `Append a ledger.key_added event, signed with the ledger key --signing-key
names (which must be trusted by the log), so that events signed by the new
key are accepted from its position on. --key takes the text form that
keyledger audit pubkey prints; --key-file a file holding it, or the new
key's PEM private key.`,
		example: `keyledger admin ledger-keys add --key-file new/ledger-ed25519.pem --reason "yearly rotation"`,
	},
	"admin ledger-keys retire": {
		purpose: "stop trusting a ledger signing key from now on",
		usage:   "keyledger admin ledger-keys retire <key_id> --reason TEXT [flags]",
		about: `Append a ledger.key_retired event: events the key signs after it are refused
by every reader. The last trusted key cannot be retired; a retired key is
never trusted again. The key id is the ID column of ledger-keys list.`,
		example: `keyledger admin ledger-keys retire Cimj-Zmd4aXx --reason "rotated out"`,
	},
	"admin users": {
		purpose: "list, create, disable and enable users, revoke all their keys",
		usage:   "keyledger admin users <command> [flags]",
		about:   "Exit codes: as for every admin command (keyledger admin --help).",
		example: "keyledger admin users list --json",
	},
	"admin teams": {
		purpose: "list teams, give one an owner, disable and enable teams",
		usage:   "keyledger admin teams <command> [flags]",
		about:   "Exit codes: as for every admin command (keyledger admin --help).",
		example: "keyledger admin teams list --json",
	},
	"admin teams list": {
		purpose: "list every team",
		usage:   "keyledger admin teams list [flags]",
		example: "keyledger admin teams list --json",
	},
	"admin teams transfer": {
		purpose: "make a user an owner of a team",
		usage:   "keyledger admin teams transfer <team_id> --owner USER_ID [--reason TEXT] [flags]",
		about: `Make a user an owner of a team (a member, if they were not one): how a team
whose owners left or were erased gets an owner again. Records
team.ownership_transferred with the signed request.`,
		example: `keyledger admin teams transfer tm_01J... --owner usr_01J... --reason "owner left"`,
	},
	"admin teams disable": {
		purpose: "stop every key of a team, on every node at once",
		usage:   "keyledger admin teams disable <team_id> --reason TEXT [flags]",
		about: `Disable a team: none of its keys validate, on every validation node, until it
is enabled again. Members keep their roles and their own keys.`,
		example: `keyledger admin teams disable tm_01J... --reason "abuse report"`,
	},
	"admin teams enable": {
		purpose: "let a disabled team's keys validate again",
		usage:   "keyledger admin teams enable <team_id> [--reason TEXT] [flags]",
		example: `keyledger admin teams enable tm_01J... --reason "cleared"`,
	},
	"admin users list": {
		purpose: "list every user",
		usage:   "keyledger admin users list [flags]",
		example: "keyledger admin users list --json",
	},
	"admin users create": {
		purpose: "register a user (an admin with --admin), password from stdin",
		usage:   "keyledger admin users create --email E [--admin] [flags]",
		about: `Register a user (an admin user, who may use the admin routes with a
session, with --admin). The password is read from the first line of
standard input.`,
		example: `printf '%s\n' 'a long and unguessable passphrase' | keyledger admin users create --email ops@example.com --admin`,
	},
	"admin users disable": {
		purpose: "lock a user out: login, sessions and keys stop working",
		usage:   "keyledger admin users disable <user_id> --reason TEXT [flags]",
		about: `Lock a user out: login fails, sessions are refused, and the user's keys stop
validating on every node (until enabled again).`,
		example: `keyledger admin users disable usr_01J... --reason "account compromised"`,
	},
	"admin users enable": {
		purpose: "let a disabled user back in",
		usage:   "keyledger admin users enable <user_id> [--reason TEXT] [flags]",
		example: `keyledger admin users enable usr_01J... --reason "cleared"`,
	},
	"admin users revoke-keys": {
		purpose: "revoke every active key of a user, one event per key",
		usage:   "keyledger admin users revoke-keys <user_id> --reason TEXT [flags]",
		example: `keyledger admin users revoke-keys usr_01J... --reason "offboarding"`,
	},
	"admin users revoke-sessions": {
		purpose: "end every session of a user, on every serve instance",
		usage:   "keyledger admin users revoke-sessions <user_id> --reason TEXT [flags]",
		about: `End every session token of a user issued so far (a stolen token, say), on
every serve instance and across restarts: records user.sessions_revoked.
The user logs in again to get a new one; their keys are not touched.`,
		example: `keyledger admin users revoke-sessions usr_01J... --reason "laptop stolen"`,
	},
	"admin users erase": {
		purpose: "erase a user's personal data for good, revoking their keys",
		usage:   "keyledger admin users erase <user_id> --reason TEXT [flags]",
		about: `Erase a user (a signed request only: it cannot be undone): record user.erased,
revoke every key of the user, and destroy the user's data key, so that the
email and password hash sealed in the log can no longer be opened by anyone.
The address may register again. Run it again if it fails half-way.`,
		example: `keyledger admin users erase usr_01J... --reason "erasure request 2026-12-06"`,
	},
	"admin integrity": {
		purpose: "show the log's trust root, newest checkpoint and serve's last verification of the log",
		usage:   "keyledger admin integrity [--verify] [flags]",
		about: `serve verifies the whole log as ` + "`keyledger audit verify`" + ` does every
--verify-interval (24h) and when an admin asks; this prints its last verdict
with the trust root's fingerprint and the newest signed checkpoint. With
--verify it starts a verification and waits for its verdict. Exit 5 when the
last verification found problems. This is serve checking itself: an
auditor's own ` + "`keyledger audit verify`" + ` trusts nothing serve says.`,
		example: "keyledger admin integrity --verify",
	},
	"admin nodes": {
		purpose: "list the validation nodes and serves heard from, and how far each applied the log",
		usage:   "keyledger admin nodes [flags]",
		about: `Every node announces itself (its name, version, applied stream sequence and
staleness) every second and right after applying the log. A node not heard
within serve's --node-liveness is shown as not live; ?wait=nodes on the
commands that take a key out of service waits for the live ones. LAG is how
many sequences a node is behind serve.`,
		example: "keyledger admin nodes --json",
	},
	"admin invitations": {
		purpose: "issue invitations to register (serve --registration invite)",
		usage:   "keyledger admin invitations <command> [flags]",
		about:   "Exit codes: as for every admin command (keyledger admin --help).",
		example: "keyledger admin invitations create --email new.hire@example.com",
	},
	"admin invitations create": {
		purpose: "issue a single-use invitation; prints its token once",
		usage:   "keyledger admin invitations create [--email E] [--expires-in 168h] [flags]",
		about: `Issues an invitation to register, for serve --registration invite. The token
goes to standard output, once: the log keeps only its hash. Hand it to the
person invited, who registers with POST /users {"email","password",
"invitation":"<token>"}. It works once, until it expires, and with --email
only for that address.`,
		example: "keyledger admin invitations create --email new.hire@example.com --expires-in 72h",
	},
	"healthcheck": {
		purpose: "probe /readyz or /healthz of a running serve or validator",
		usage:   "keyledger healthcheck [flags]",
		about: `Exit 0 on a 2xx answer, 1 otherwise: the container health check of an image
with no shell or curl (distroless).`,
		example: "keyledger healthcheck --url http://127.0.0.1:8081/readyz --timeout 2s",
	},
	"sign": {
		purpose: "print the headers of a request signed with an API key's secret",
		usage:   "keyledger sign --key ak_... [flags] URL",
		about: `Prints the headers of a signed request (RFC 9421, profile keyledger-v1) for
the given method, URL and body, one "Name: value" per line: the form curl
reads with -H @file. The secret is read from the environment variable
KEYLEDGER_API_SECRET or from --secret-file, never from the command line.
Send the body byte for byte as signed (curl --data-binary @file).`,
		example: `KEYLEDGER_API_SECRET=sk_... keyledger sign --key ak_... -X POST \
    --data-file body.json https://api.example.com/orders > sig.txt
curl -X POST -H @sig.txt --data-binary @body.json https://api.example.com/orders`,
	},
	"bench": {
		purpose: "measure throughput and latency against embedded servers, with baselines",
		usage:   "keyledger bench [flags]",
		about: `Runs every scenario against embedded servers in this process (temporary
directories, loopback only), each next to a baseline measured in the same
run, and prints absolute numbers and ratios with the machine's CPU count.

Scenarios: append, http-create, validate, validate-http, revocation,
replay, memory, failover.`,
		example: "keyledger bench                              # everything, about a minute on 2 cores\n" +
			"keyledger bench --only validate,revocation --scale 0.2 --json > bench.json",
		// For profiling the goals not met (docs/performance.md).
		hidden: []string{"cpuprofile"},
	},
	"version": {
		purpose: "print the version, VCS revision and Go version of this binary",
		usage:   "keyledger version\n       keyledger --version",
		example: "keyledger version",
	},
	"help": {
		purpose: "show the help of keyledger or of one of its commands",
		usage:   "keyledger help [<command> [<subcommand>]]",
		about:   "The same as keyledger <command> [<subcommand>] --help.",
		example: "keyledger help admin users create",
	},
}

// groupHelp is the help of a group: its subcommands with their purposes.
func groupHelp(path string) string {
	var b strings.Builder
	writeHead(&b, path)
	b.WriteString("\nCommands:\n")
	subs := groups[path]
	width := 0
	for _, s := range subs {
		width = max(width, len(s))
	}
	for _, s := range subs {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, s, docs[joinPath(path, s)].purpose)
	}
	writeExample(&b, path)
	fmt.Fprintf(&b, "\nRun '%s <command> --help' for its usage, an example and its flags.\n", commandName(path))
	if path == "" {
		b.WriteString(envNote)
	}
	return b.String()
}

const envNote = `Every flag of every command can also be set through the environment:
--nats-url is KEYLEDGER_NATS_URL, and so on; the command line wins.
`

// commandHelp is the help of a leaf command: purpose, usage, example and
// the flags of fs (nil: none).
func commandHelp(path string, fs *flag.FlagSet) string {
	var b strings.Builder
	writeHead(&b, path)
	writeExample(&b, path)
	if fs == nil {
		return b.String()
	}
	shown := newFlagSet(path)
	var onlyCommandLine []string
	fs.VisitAll(func(f *flag.Flag) {
		if slices.Contains(docs[path].hidden, f.Name) {
			return
		}
		shown.Var(f.Value, f.Name, f.Usage)
		// The default, not the value the environment may have set.
		shown.Lookup(f.Name).DefValue = f.DefValue
		if commandLineOnly(f) {
			onlyCommandLine = append(onlyCommandLine, "--"+f.Name)
		}
	})
	var first string // the flag the environment note shows
	visible := false
	shown.VisitAll(func(f *flag.Flag) {
		visible = true
		if (first == "" || f.Name == "nats-url") && !commandLineOnly(f) {
			first = f.Name
		}
	})
	if !visible {
		return b.String()
	}
	b.WriteString("\nFlags:\n")
	shown.SetOutput(&b)
	shown.PrintDefaults()
	shown.SetOutput(nil)
	if first != "" {
		fmt.Fprintf(&b, "\nEvery flag can also be set through the environment: --%s is\n%s, and so on; the command line wins.", first, envName(first))
	}
	if len(onlyCommandLine) > 0 {
		fmt.Fprintf(&b, " Only the command line sets %s.", strings.Join(onlyCommandLine, ", "))
	}
	b.WriteString("\n")
	return b.String()
}

// commandName is how the user types the command at path.
func commandName(path string) string {
	if path == "" {
		return "keyledger"
	}
	return "keyledger " + path
}

// writeHead writes a command's purpose, usage and description.
func writeHead(b *strings.Builder, path string) {
	d := docs[path]
	fmt.Fprintf(b, "%s: %s.\n\nUsage: %s\n", commandName(path), d.purpose, d.usage)
	if d.about != "" {
		fmt.Fprintf(b, "\n%s\n", d.about)
	}
}

func writeExample(b *strings.Builder, path string) {
	b.WriteString("\nExample:\n")
	for line := range strings.SplitSeq(docs[path].example, "\n") {
		fmt.Fprintf(b, "  %s\n", line)
	}
}
