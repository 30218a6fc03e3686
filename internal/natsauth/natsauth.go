// Package natsauth gives the embedded NATS server of `keyledger serve`
// decentralised authentication: an operator, an account for keyledger and
// one user per role, each with the least permissions its role needs. The
// keys and the role credentials live in a directory of the data dir, made
// on first start and reused afterwards; the credentials are standard NATS
// .creds files (user JWT and nkey seed), which nats.UserCredentials and the
// stock `nats --creds` CLI read.
//
// The roles, for a stream S (subjects keyledger.>, buckets S_IDEMPOTENCY,
// S_NONCES, S_ADMIN_NONCES, S_USER_KEYS and S_LIMITS):
//   - operator: everything in the account: creates and updates the stream
//     and the buckets. serve connects with it in embedded mode.
//   - ledger: publishes events, reads the streams of the account but the
//     admin nonce bucket (info, direct and message get), follows the log
//     with consumers, writes the idempotency, nonce, limits and user keys
//     buckets, and adds keys to the admin nonce bucket (no reading it);
//     it cannot create, change,
//     seal, purge or delete a stream, nor delete a message, but one of
//     S_USER_KEYS (a user's data key, destroyed on erasure). The admin
//     commands use it.
//   - validator: reads the log (stream info, ordered consumers, direct and
//     message get), reads and writes the nonce and limits buckets (rate
//     limit tokens and credits leased with compare-and-set: a stolen
//     validator credential can loosen or tighten any key's limits, see
//     internal/limits), and publishes heartbeats
//     (keyledger_fleet.*, which the ledger role hears); nothing else, never the
//     admin nonce bucket, and it cannot read S_USER_KEYS.
//   - auditor: reads the log and the usage stream (S_USAGE); nothing
//     else. It cannot read S_USER_KEYS nor S_LIMITS.
//
// The validator also publishes its usage reports to the usage stream's
// subjects (keyledger_usage.>). The ledger's JWT has no room left for
// reading the usage stream within the CONNECT line: serve folds usage
// over the operator's connection of its embedded server.
package natsauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Role is a set of NATS permissions.
type Role string

// The roles.
const (
	Operator  Role = "operator"
	Ledger    Role = "ledger"
	Validator Role = "validator"
	Auditor   Role = "auditor"
)

// Roles lists every role.
var Roles = []Role{Operator, Ledger, Validator, Auditor}

// SubjectPrefix is the first token of the log's subjects.
const SubjectPrefix = "keyledger"

// FleetSubjects are the subjects of the nodes' heartbeats
// (internal/fleet.SubjectAll): core NATS, outside the log's subjects.
const FleetSubjects = "keyledger_fleet.*"

// AccountName is the name given to keyledger's account in its JWT.
const AccountName = "KEYLEDGER"

// readerPayload caps what a read-only role may publish at once: JetStream
// API requests and nonces are small.
const readerPayload = 64 * 1024

// Auth is the operator, the accounts and the role credentials kept in one
// directory. Its methods are safe for concurrent use once Open returns.
type Auth struct {
	dir        string
	stream     string
	operator   *jwt.OperatorClaims
	opJWT      string
	accountPub string
	accountJWT string
	systemPub  string
	systemJWT  string
}

// Open loads the keys and credentials in dir, or creates those missing
// (dir mode 0700, files 0600), for the stream named stream. A role's
// credentials file, once written, is reused as it is: the same file keeps
// working across restarts. One whose permissions an earlier version wrote
// is signed again for the same user with this version's (see ensureCreds).
func Open(dir, stream string) (*Auth, error) {
	if stream == "" {
		return nil, errors.New("natsauth: empty stream name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("credentials directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("credentials directory: %w", err)
	}
	opKP, err := loadOrCreateSeed(filepath.Join(dir, "operator.nk"), nkeys.CreateOperator, nkeys.PrefixByteOperator)
	if err != nil {
		return nil, err
	}
	accKP, err := loadOrCreateSeed(filepath.Join(dir, "account.nk"), nkeys.CreateAccount, nkeys.PrefixByteAccount)
	if err != nil {
		return nil, err
	}
	sysKP, err := loadOrCreateSeed(filepath.Join(dir, "system-account.nk"), nkeys.CreateAccount, nkeys.PrefixByteAccount)
	if err != nil {
		return nil, err
	}
	a := &Auth{dir: dir, stream: stream}
	opPub, _ := opKP.PublicKey()
	a.accountPub, _ = accKP.PublicKey()
	a.systemPub, _ = sysKP.PublicKey()

	// The operator and account JWTs are signed afresh at every start from
	// the persisted keys: only the users' JWTs, in the .creds files, must
	// stay the same.
	op := jwt.NewOperatorClaims(opPub)
	op.Name = "keyledger"
	op.SystemAccount = a.systemPub
	opJWT, err := op.Encode(opKP)
	if err != nil {
		return nil, fmt.Errorf("operator JWT: %w", err)
	}
	a.opJWT = opJWT
	if a.operator, err = jwt.DecodeOperatorClaims(opJWT); err != nil {
		return nil, fmt.Errorf("operator JWT: %w", err)
	}
	acc := jwt.NewAccountClaims(a.accountPub)
	acc.Name = AccountName
	// JetStream on, without account-wide caps: each stream and bucket has
	// its own limits (see the server's flags).
	acc.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit,
		Streams: jwt.NoLimit, Consumer: jwt.NoLimit}
	if a.accountJWT, err = acc.Encode(opKP); err != nil {
		return nil, fmt.Errorf("account JWT: %w", err)
	}
	sys := jwt.NewAccountClaims(a.systemPub)
	sys.Name = "SYS"
	if a.systemJWT, err = sys.Encode(opKP); err != nil {
		return nil, fmt.Errorf("system account JWT: %w", err)
	}
	for _, r := range Roles {
		if err := a.ensureCreds(r, accKP); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Dir returns the directory of the keys and credentials.
func (a *Auth) Dir() string { return a.dir }

// CredsFile returns the path of a role's credentials file.
func (a *Auth) CredsFile(r Role) string { return filepath.Join(a.dir, string(r)+".creds") }

// AccountPublicKey returns the public key of keyledger's account, which is
// also the name of its directory in JetStream's store.
func (a *Auth) AccountPublicKey() string { return a.accountPub }

// Configure makes a server's options trust the operator and resolve its
// two accounts from memory. Every client must then present a user JWT
// signed by keyledger's account.
func (a *Auth) Configure(o *server.Options) error {
	r := &server.MemAccResolver{}
	if err := r.Store(a.accountPub, a.accountJWT); err != nil {
		return err
	}
	if err := r.Store(a.systemPub, a.systemJWT); err != nil {
		return err
	}
	o.TrustedOperators = []*jwt.OperatorClaims{a.operator}
	o.AccountResolver = r
	o.SystemAccount = a.systemPub
	return nil
}

// ServerConfig returns the part of a nats-server configuration file that
// makes a server trust the operator and resolve its two accounts from the
// JWTs inlined in it (a memory resolver preloaded with them): what `nsc
// generate config --mem-resolver` writes. Each call signs nothing anew:
// the JWTs are those Open made. It holds no secret, only public keys and
// signed claims; a server that includes it requires a user JWT of
// keyledger's account from every client.
func (a *Auth) ServerConfig() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# keyledger's NATS operator and accounts (written by keyledger init).\n")
	fmt.Fprintf(&b, "# Every client must present a user JWT signed by the %s account.\n", AccountName)
	fmt.Fprintf(&b, "operator: %q\n", a.opJWT)
	fmt.Fprintf(&b, "system_account: %s\n", a.systemPub)
	fmt.Fprintf(&b, "resolver: MEMORY\n")
	fmt.Fprintf(&b, "resolver_preload: {\n")
	fmt.Fprintf(&b, "  # %s\n  %s: %q\n", AccountName, a.accountPub, a.accountJWT)
	fmt.Fprintf(&b, "  # SYS\n  %s: %q\n", a.systemPub, a.systemJWT)
	fmt.Fprintf(&b, "}\n")
	return b.Bytes()
}

// IsServerConfig reports whether data is a ServerConfig of these keys (of
// any signing time): the operator's system account and keyledger's
// account both named in it.
func (a *Auth) IsServerConfig(data []byte) bool {
	return bytes.Contains(data, []byte("system_account: "+a.systemPub+"\n")) &&
		bytes.Contains(data, []byte("\n  "+a.accountPub+": "))
}

// RouteUser is the user name cluster routes authenticate as.
const RouteUser = "route"

// RouteConfig returns the body of a nats-server cluster block's route
// authentication: the user and password every node requires from the
// routes that reach it, and routes to every node of nodes (host:port of
// their cluster listeners) presenting them.
func RouteConfig(password string, nodes []string) ([]byte, error) {
	if len(password) < 16 || strings.ContainsAny(password, "\"\\ \t\n@:/") {
		return nil, errors.New("natsauth: the route password must be at least 16 characters with no quote, backslash, space, @, : or /")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Route authentication of keyledger's NATS cluster (written by keyledger init).\n")
	fmt.Fprintf(&b, "authorization {\n  user: %s\n  password: %q\n}\n", RouteUser, password)
	fmt.Fprintf(&b, "routes: [\n")
	for _, n := range nodes {
		host, port, err := net.SplitHostPort(n)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("natsauth: route %q: want host:port", n)
		}
		u := url.URL{Scheme: "nats-route", User: url.UserPassword(RouteUser, password), Host: net.JoinHostPort(host, port)}
		fmt.Fprintf(&b, "  %q\n", u.String())
	}
	fmt.Fprintf(&b, "]\n")
	return b.Bytes(), nil
}

// AdoptGlobalStore moves the JetStream data an unauthenticated server kept
// in its global account ($G) under keyledger's account, once, so that a
// data dir written before authentication keeps its log. storeDir is the
// server's store directory (JetStream's data is in its jetstream/
// subdirectory). It reports whether it moved anything.
func (a *Auth) AdoptGlobalStore(storeDir string) (bool, error) {
	js := filepath.Join(storeDir, "jetstream")
	from, to := filepath.Join(js, server.DEFAULT_GLOBAL_ACCOUNT), filepath.Join(js, a.accountPub)
	if _, err := os.Stat(from); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if _, err := os.Stat(to); err == nil {
		return false, fmt.Errorf("both %s and %s exist: move the one to keep by hand", from, to)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.Rename(from, to); err != nil {
		return false, fmt.Errorf("adopt the unauthenticated store: %w", err)
	}
	return true, nil
}

// Permissions returns what a role may publish and subscribe to, for the
// stream named stream.
func Permissions(r Role, stream string) jwt.Permissions {
	var p jwt.Permissions
	// Replies to JetStream API requests and consumers' deliveries come to
	// the client's inbox.
	p.Sub.Allow.Add("_INBOX.>")
	idem, nonces, adminNonces := "KV_"+stream+"_IDEMPOTENCY", "KV_"+stream+"_NONCES", stream+"_ADMIN_NONCES"
	switch r {
	case Operator:
		p.Pub.Allow.Add(">")
		p.Sub.Allow.Add(">")
	case Ledger:
		p.Pub.Allow.Add(SubjectPrefix + ".>")
		// The ledger reads every stream of its account (info, direct
		// and message get: token wildcards, four entries instead of
		// four per bucket, keep its JWT within the CONNECT line), follows
		// the log with consumers, and writes its buckets one by one.
		p.Pub.Allow.Add(readAnyStream()...)
		p.Pub.Allow.Add(consumeStream(stream)...)
		for _, b := range []string{idem, nonces, limitsStream(stream)} {
			p.Pub.Allow.Add("$KV." + b[len("KV_"):] + ".>")
		}
		// Admin nonces: bind to the bucket and add keys (one token, a
		// hash), nothing else; no reading, no consumers.
		p.Pub.Allow.Add("$KV." + adminNonces + ".*")
		p.Pub.Deny.Add("$JS.API.DIRECT.GET.KV_"+adminNonces, "$JS.API.DIRECT.GET.KV_"+adminNonces+".>",
			"$JS.API.STREAM.MSG.GET.KV_"+adminNonces)
		p.Pub.Deny.Add(changeStream()...)
		ledgerUserKeys(&p, stream)
		ledgerSnapshots(&p, stream)
		// serve announces its projector and hears every node's
		// heartbeats (internal/fleet).
		p.Pub.Allow.Add(FleetSubjects)
		p.Sub.Allow.Add(FleetSubjects)
		// serve publishes its own /validate's usage reports and folds
		// every node's (internal/usage).
		p.Pub.Allow.Add(UsageSubjects)
		p.Pub.Allow.Add(readUsage(stream)...)
	case Validator:
		p.Pub.Allow.Add(FleetSubjects)
		p.Pub.Allow.Add(readStream(stream)...)
		p.Pub.Allow.Add(useBucket(nonces)...)
		// Limits: bind, get the last message of a key (direct get by
		// subject), write keys; three entries.
		ls := limitsStream(stream)
		p.Pub.Allow.Add("$JS.API.STREAM.INFO."+ls, "$JS.API.DIRECT.GET."+ls+".>", "$KV."+ls[len("KV_"):]+".>")
		p.Pub.Allow.Add(UsageSubjects)
		p.Pub.Allow.Add(readSnapshots(stream)...)
		p.Pub.Deny.Add(SubjectPrefix + ".>")
		p.Pub.Deny.Add(changeStream()...)
		p.Pub.Deny.Add(bucketAPI(adminNonces)...)
		denyUserKeys(&p, stream)
	case Auditor:
		p.Pub.Allow.Add(readStream(stream)...)
		p.Pub.Allow.Add(readSnapshots(stream)...)
		p.Pub.Allow.Add(readUsage(stream)...)
		p.Pub.Deny.Add(UsageSubjects)
		p.Pub.Deny.Add(SubjectPrefix + ".>")
		p.Pub.Deny.Add(changeStream()...)
		p.Pub.Deny.Add(bucketAPI(adminNonces)...)
		denyUserKeys(&p, stream)
		denyBucket(&p, limitsStream(stream)[len("KV_"):])
	}
	return p
}

// UsageSubjects are the subjects of the usage stream (<stream>_USAGE,
// see internal/usage), outside the log's: the validation nodes publish
// their usage reports there, and may publish nothing else outside the
// JetStream API.
const UsageSubjects = "keyledger_usage.>"

// readUsage are the JetStream API subjects that read the usage stream
// with an ordered consumer: token wildcards over the consumer requests
// (create, info, delete, next), two entries to keep the user JWT within
// the control line; none names the stream alone, so neither stream info
// nor a change to the stream is allowed by them.
func readUsage(stream string) []string {
	u := stream + "_USAGE"
	return []string{"$JS.API.*.*." + u + ".>", "$JS.API.*.*.*." + u + ".>"}
}

// userKeysStream is the stream of the bucket of per-user data keys
// (internal/datakeys).
func userKeysStream(stream string) string { return "KV_" + stream + "_USER_KEYS" }

// ledgerUserKeys lets the ledger read and write the data keys and erase
// one: the one message delete it may do, on that bucket alone. A deny
// outranks an allow in NATS, so the blanket deny of message deletes is
// narrowed to the log and the other buckets for this role.
func ledgerUserKeys(p *jwt.Permissions, stream string) {
	b := userKeysStream(stream)
	p.Pub.Allow.Add("$KV." + b[len("KV_"):] + ".>")
	p.Pub.Allow.Add("$JS.API.STREAM.MSG.DELETE." + b)
	p.Pub.Deny.Remove("$JS.API.STREAM.MSG.DELETE.>")
	for _, s := range []string{stream, "KV_" + stream + "_IDEMPOTENCY", "KV_" + stream + "_NONCES", "KV_" + stream + "_ADMIN_NONCES", limitsStream(stream)} {
		p.Pub.Deny.Add("$JS.API.STREAM.MSG.DELETE." + s)
	}
}

// snapshotsStream is the stream of the object store bucket of signed
// snapshots of the validation lookup (internal/snapshot).
func snapshotsStream(stream string) string { return "OBJ_" + stream + "_SNAPSHOTS" }

// readSnapshots are the JetStream API subjects that read the snapshot
// bucket: token wildcards over every request naming its stream (its info,
// message and direct gets, ordered consumers), four entries to keep the
// user JWT within the CONNECT line. The blanket denials of changeStream
// (purge, delete, update) outrank them, and no allow lets the role
// publish to the bucket's own subjects ($O.<bucket>.>): readers cannot
// write, replace or delete a snapshot.
func readSnapshots(stream string) []string {
	b := snapshotsStream(stream)
	return []string{"$JS.API.*.*." + b, "$JS.API.*.*." + b + ".>", "$JS.API.*.*.*." + b, "$JS.API.*.*.*." + b + ".>"}
}

// ledgerSnapshots lets the ledger write snapshots (the bucket's own
// subjects), list and read them with consumers, and delete old ones,
// which purges their chunks: the one purge it may do, on that bucket
// alone. A deny outranks an allow in NATS, so the blanket deny of purges
// is lifted for this role; its allow list names no other stream's purge
// (the JWT has no room left for a deny per stream).
func ledgerSnapshots(p *jwt.Permissions, stream string) {
	b := snapshotsStream(stream)
	p.Pub.Allow.Add("$O."+b[len("OBJ_"):]+".>", "$JS.API.*.*."+b+".>", "$JS.API.*.*.*."+b+".>",
		"$JS.API.STREAM.PURGE."+b)
	p.Pub.Deny.Remove("$JS.API.STREAM.PURGE.>")
}

// denyUserKeys keeps a reader out of the data keys: they decrypt personal
// data, which no validation node or auditor needs.
func denyUserKeys(p *jwt.Permissions, stream string) {
	denyBucket(p, userKeysStream(stream)[len("KV_"):])
}

// denyBucket keeps a role out of a bucket: no request naming its stream,
// no write and no subscription to its subjects.
func denyBucket(p *jwt.Permissions, bucket string) {
	p.Pub.Deny.Add(bucketAPI(bucket)...)
	p.Sub.Deny.Add("$KV." + bucket + ".>")
}

// limitsStream is the stream of the bucket of rate limit tokens and
// credits the validation nodes share (internal/limits).
func limitsStream(stream string) string { return "KV_" + stream + "_LIMITS" }

// readAnyStream are the JetStream API subjects that read any stream of the
// account: its info, and single messages (direct or message get).
func readAnyStream() []string {
	return []string{
		"$JS.API.STREAM.INFO.*",
		"$JS.API.STREAM.MSG.GET.*",
		"$JS.API.DIRECT.GET.*",
		"$JS.API.DIRECT.GET.*.>",
	}
}

// consumeStream are the JetStream API subjects of ordered (ephemeral)
// consumers of a stream.
func consumeStream(stream string) []string {
	return []string{
		"$JS.API.CONSUMER.CREATE." + stream,
		"$JS.API.CONSUMER.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.DELETE." + stream + ".>",
		"$JS.API.CONSUMER.INFO." + stream + ".>",
		"$JS.API.CONSUMER.MSG.NEXT." + stream + ".>",
	}
}

// useBucket are the subjects that get, create, update and delete keys of
// the bucket whose stream is stream (KV_<bucket>): bind (stream info),
// get (direct or message get) and the bucket's own subjects. No consumers:
// nothing watches or lists a bucket, and every subject here is part of a
// user JWT, which with the CONNECT line must stay under the server's
// 4 KiB control line limit.
func useBucket(stream string) []string {
	return []string{
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
		"$KV." + stream[len("KV_"):] + ".>",
	}
}

// readStream are the JetStream API subjects that read a stream: its info,
// ordered (ephemeral) consumers, and single messages.
func readStream(stream string) []string {
	return append([]string{
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
	}, consumeStream(stream)...)
}

// bucketAPI are the subjects that read or write a bucket, denied outright
// to the roles that have no business with it (the allow lists leave them
// out already; see changeStream).
// The subjects are token wildcards over every JetStream API request that
// names the bucket's stream (STREAM.INFO, DIRECT.GET, CONSUMER.*,
// STREAM.MSG.GET, ...): four entries instead of one per request keep the
// user JWT within the CONNECT line's 4 KiB limit.
func bucketAPI(bucket string) []string {
	b := "KV_" + bucket
	return []string{"$JS.API.*.*." + b, "$JS.API.*.*." + b + ".>", "$JS.API.*.*.*." + b, "$KV." + bucket + ".>"}
}

// changeStream are the JetStream API subjects that create, change or
// destroy streams or their messages, denied outright to every role but the
// operator (an allow list already leaves them out: the deny list states
// the intent and survives a careless addition to it).
func changeStream() []string {
	return []string{
		"$JS.API.STREAM.CREATE.>",
		"$JS.API.STREAM.UPDATE.>",
		"$JS.API.STREAM.DELETE.>",
		"$JS.API.STREAM.PURGE.>",
		"$JS.API.STREAM.MSG.DELETE.>",
		"$JS.API.STREAM.RESTORE.>",
		"$JS.API.STREAM.SNAPSHOT.>",
		"$JS.API.ACCOUNT.>",
		"$JS.API.META.>",
		"$JS.API.SERVER.>",
	}
}

// ensureCreds writes a role's credentials file unless it exists; an
// existing one must be a user of this account, and is signed again if it
// grants other permissions than the role's now.
func (a *Auth) ensureCreds(r Role, accKP nkeys.KeyPair) error {
	path := a.CredsFile(r)
	b, err := os.ReadFile(path)
	if err == nil {
		tok, err := jwt.ParseDecoratedJWT(b)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		uc, err := jwt.DecodeUserClaims(tok)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if uc.Issuer != a.accountPub {
			return fmt.Errorf("%s: issued by account %s, not this data dir's %s", path, uc.Issuer, a.accountPub)
		}
		if samePermissions(uc, a.claims(r, uc.Subject)) {
			return nil
		}
		// Written by an earlier version with other permissions (a bucket
		// added since): the same user, its JWT signed again with this
		// version's permissions, so that copies of the file keep
		// connecting and the new one may do what this version needs.
		ukp, err := jwt.ParseDecoratedUserNKey(b)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if pub, _ := ukp.PublicKey(); pub != uc.Subject {
			return fmt.Errorf("%s: the seed is not the JWT's user", path)
		}
		creds, err := a.issue(r, ukp, accKP)
		if err != nil {
			return err
		}
		return replace(path, creds)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	ukp, err := nkeys.CreateUser()
	if err != nil {
		return err
	}
	creds, err := a.issue(r, ukp, accKP)
	if err != nil {
		return err
	}
	return writeNew(path, creds)
}

// claims are the JWT claims of the role's user upub.
func (a *Auth) claims(r Role, upub string) *jwt.UserClaims {
	uc := jwt.NewUserClaims(upub)
	uc.Name = string(r)
	uc.Permissions = Permissions(r, a.stream)
	if r == Validator || r == Auditor {
		uc.Limits.Payload = readerPayload
	}
	return uc
}

// issue returns the credentials file of the role's user ukp.
func (a *Auth) issue(r Role, ukp, accKP nkeys.KeyPair) ([]byte, error) {
	upub, err := ukp.PublicKey()
	if err != nil {
		return nil, err
	}
	useed, err := ukp.Seed()
	if err != nil {
		return nil, err
	}
	tok, err := a.claims(r, upub).Encode(accKP)
	if err != nil {
		return nil, fmt.Errorf("%s user JWT: %w", r, err)
	}
	return jwt.FormatUserConfig(tok, useed)
}

// samePermissions reports whether a user JWT grants what want does:
// the same permissions and limits.
func samePermissions(got, want *jwt.UserClaims) bool {
	g, err1 := json.Marshal([]any{got.Permissions, got.Limits})
	w, err2 := json.Marshal([]any{want.Permissions, want.Limits})
	return err1 == nil && err2 == nil && bytes.Equal(g, w)
}

// replace writes a secret file with mode 0600 over an existing one: a new
// file beside it, renamed over it, so a reader never sees half of it.
func replace(path string, data []byte) error {
	tmp := path + ".new"
	os.Remove(tmp)
	if err := writeNew(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// loadOrCreateSeed reads an nkey seed of the given kind, or creates one.
func loadOrCreateSeed(path string, create func() (nkeys.KeyPair, error), want nkeys.PrefixByte) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		kp, err := nkeys.FromSeed(bytes.TrimSpace(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pub, _ := kp.PublicKey()
		if nkeys.Prefix(pub) != want {
			return nil, fmt.Errorf("%s: not a %v key", path, want)
		}
		return kp, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	kp, err := create()
	if err != nil {
		return nil, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	if err := writeNew(path, append(seed, '\n')); err != nil {
		return nil, err
	}
	return kp, nil
}

// writeNew writes a secret file with mode 0600, failing if it exists.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
