package apptest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/audit"
	"github.com/keyledger/keyledger/internal/datakeys"
	"github.com/keyledger/keyledger/internal/natstest"
)

const (
	// loadAttempts bounds the requests of one logical command.
	loadAttempts = 10
	// loadAttemptTimeout bounds one request: above the ledger's own waits
	// (5s for JetStream, 10s for its projections), so that the server
	// answers rather than the client giving up.
	loadAttemptTimeout = 20 * time.Second
	// loadFirstBackoff and loadMaxBackoff pace the retries of a command.
	loadFirstBackoff = 20 * time.Millisecond
	loadMaxBackoff   = 500 * time.Millisecond
)

// idempotencyKeyCtx is the context key of the Idempotency-Key a request
// carries.
type idempotencyKeyCtx struct{}

// idempotencyTransport sets the Idempotency-Key header to the key in the
// request's context, so that the typed client's calls carry it: every
// attempt of one logical command sends the same key.
type idempotencyTransport struct{ base http.RoundTripper }

func (tr idempotencyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if key, ok := r.Context().Value(idempotencyKeyCtx{}).(string); ok {
		r = r.Clone(r.Context())
		r.Header.Set("Idempotency-Key", key)
	}
	return tr.base.RoundTrip(r)
}

// ackedKey is a key whose creation was acknowledged, with the secret the
// 201 gave.
type ackedKey struct {
	user   string
	secret string
}

// ackedSecret is an acknowledged regeneration of key.
type ackedSecret struct {
	key    string
	secret string
}

// loadUser is a user the load acts for.
type loadUser struct {
	id    string
	email string
	api   *client.Client // with the user's session
}

// loadWorker creates, regenerates and revokes keys of one user, one
// command at a time. Only its goroutine touches it, and it acts only on
// keys it created: no other writer races it for them.
type loadWorker struct {
	user   *loadUser
	active []string // keys it created (acknowledged) and has not tried to revoke
	n      int      // commands sent: picks the next kind
}

// ack is an acknowledged request: when it was sent and answered.
type ack struct{ sent, answered time.Time }

// command is one logical command and how it ended.
type command struct {
	start time.Time
	acked bool
}

// CommandLoad sends commands to a serve API from a few goroutines. Each
// logical command is sent up to loadAttempts times with one
// Idempotency-Key: again after a 5xx or a transport error, with backoff.
// The server need not honour the key, so a retry can store a second event
// of its own; the checks allow for that and never rely on the key.
//
// It records every request sent and every command acknowledged (2xx).
type CommandLoad struct {
	API        *client.Client // without a session
	workers    []*loadWorker
	Registrars int    // goroutines that register new users
	prefix     string // of the registrars' email addresses
	pace       time.Duration

	Mu sync.Mutex
	// Requests sent, by command.
	createAttempts   int
	revokeAttempts   map[string]int // by key
	regenAttempts    map[string]int // by key
	RegisterAttempts map[string]int // by normalised email
	// Acknowledged commands.
	created     map[string]ackedKey
	revoked     map[string]bool
	regenerated []ackedSecret
	Registered  map[string]string // user id -> email
	commands    []command
	acks        []ack
	emails      int // the registrars' counter
	unexpected  []string

	InFlight atomic.Int64 // requests sent and not yet answered
}

// NewCommandLoad returns a load against base (http://host:port) whose
// Registrars use addresses starting with prefix and whose goroutines send
// a command every pace.
func NewCommandLoad(t *testing.T, base, prefix string, pace time.Duration) *CommandLoad {
	t.Helper()
	transport := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(transport.CloseIdleConnections)
	api, err := client.New(base, client.WithHTTPClient(&http.Client{Transport: idempotencyTransport{transport}}))
	if err != nil {
		t.Fatal(err)
	}
	return &CommandLoad{API: api, prefix: prefix, pace: pace,
		revokeAttempts: map[string]int{}, regenAttempts: map[string]int{}, RegisterAttempts: map[string]int{},
		created: map[string]ackedKey{}, revoked: map[string]bool{}, Registered: map[string]string{}}
}

// AddUser registers a user and logs in, before the load runs.
func (l *CommandLoad) AddUser(t *testing.T, email string) *loadUser {
	t.Helper()
	ctx := t.Context()
	id, err := l.register(ctx, email)
	if err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	var s client.Session
	natstest.Eventually(t, 30*time.Second, func() bool {
		var err error
		if s, err = l.API.Login(ctx, email, Password); err != nil && !retryable(err) {
			t.Fatalf("login %s: %v", email, err)
		}
		return err == nil
	}, "login "+email)
	return &loadUser{id: id, email: email, api: l.API.WithSession(s.Token)}
}

// AddWorkers adds n workers acting for u.
func (l *CommandLoad) AddWorkers(u *loadUser, n int) {
	for range n {
		l.workers = append(l.workers, &loadWorker{user: u})
	}
}

// Run starts the workers and registrars; each sends a command every pace.
// stop makes them finish the command in hand and waits for them;
// cancelling ctx abandons it instead.
func (l *CommandLoad) Run(ctx context.Context) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	loop := func(step func()) {
		tick := time.NewTicker(l.pace)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-quit:
				return
			case <-tick.C:
				step()
			}
		}
	}
	for _, w := range l.workers {
		wg.Go(func() { loop(func() { l.step(ctx, w) }) })
	}
	for range l.Registrars {
		wg.Go(func() {
			loop(func() {
				l.Mu.Lock()
				l.emails++
				email := fmt.Sprintf("%s-%d@example.com", l.prefix, l.emails)
				l.Mu.Unlock()
				l.register(ctx, email)
			})
		})
	}
	return func() {
		close(quit)
		wg.Wait()
	}
}

// step sends w's next command: of every six, three creations, two
// regenerations and one revocation.
func (l *CommandLoad) step(ctx context.Context, w *loadWorker) {
	kind := w.n % 6
	w.n++
	switch {
	case len(w.active) == 0 || kind == 0 || kind == 1 || kind == 3:
		l.createKey(ctx, w)
	case kind == 4:
		key := w.active[0]
		w.active = w.active[1:]
		l.revokeKey(ctx, w.user, key)
	default:
		l.regenerate(ctx, w.user, w.active[w.n%len(w.active)])
	}
}

func (l *CommandLoad) createKey(ctx context.Context, w *loadWorker) {
	var k client.CreatedKey
	err := l.send(ctx, func() { l.createAttempts++ }, func(ctx context.Context) (err error) {
		k, err = w.user.api.CreateKey(ctx, client.CreateKeyRequest{Name: "load"})
		return err
	})
	l.settle(ctx, "create a key", err, func() {
		l.created[k.APIKey] = ackedKey{user: w.user.id, secret: k.Secret}
		w.active = append(w.active, k.APIKey)
	})
}

// CreateKeyFor creates a key for u as one of the load's commands, counted
// and checked like them, and returns it.
func (l *CommandLoad) CreateKeyFor(ctx context.Context, u *loadUser) (client.CreatedKey, error) {
	var k client.CreatedKey
	err := l.send(ctx, func() { l.createAttempts++ }, func(ctx context.Context) (err error) {
		k, err = u.api.CreateKey(ctx, client.CreateKeyRequest{Name: "load"})
		return err
	})
	l.settle(ctx, "create a key", err, func() { l.created[k.APIKey] = ackedKey{user: u.id, secret: k.Secret} })
	return k, err
}

// RevokeKeyFor revokes u's key as one of the load's commands and reports
// whether that was acknowledged.
func (l *CommandLoad) RevokeKeyFor(ctx context.Context, u *loadUser, key string) bool {
	l.revokeKey(ctx, u, key)
	l.Mu.Lock()
	defer l.Mu.Unlock()
	return l.revoked[key]
}

func (l *CommandLoad) revokeKey(ctx context.Context, u *loadUser, key string) {
	err := l.send(ctx, func() { l.revokeAttempts[key]++ }, func(ctx context.Context) error {
		return u.api.RevokeKey(ctx, key)
	})
	l.settle(ctx, "revoke "+key, err, func() { l.revoked[key] = true })
}

func (l *CommandLoad) regenerate(ctx context.Context, u *loadUser, key string) {
	var s client.RegeneratedSecret
	err := l.send(ctx, func() { l.regenAttempts[key]++ }, func(ctx context.Context) (err error) {
		s, err = u.api.RegenerateSecret(ctx, key)
		return err
	})
	l.settle(ctx, "regenerate "+key, err, func() {
		l.regenerated = append(l.regenerated, ackedSecret{key: key, secret: s.Secret})
	})
}

// register registers email and returns the user id. A 409 after a failed
// attempt is no surprise: that attempt may have been stored.
func (l *CommandLoad) register(ctx context.Context, email string) (string, error) {
	var u client.User
	attempts := 0
	err := l.send(ctx, func() { l.RegisterAttempts[email]++; attempts++ }, func(ctx context.Context) (err error) {
		u, err = l.API.Register(ctx, email, Password)
		return err
	})
	if client.IsConflict(err) && attempts > 1 {
		return "", err
	}
	l.settle(ctx, "register "+email, err, func() { l.Registered[u.ID] = email })
	return u.ID, err
}

// send runs one logical command: up to loadAttempts requests with one
// Idempotency-Key, counting each with count, retrying 5xx answers and
// transport errors. It returns the last request's error.
func (l *CommandLoad) send(ctx context.Context, count func(), request func(context.Context) error) error {
	ctx = context.WithValue(ctx, idempotencyKeyCtx{}, rand.Text())
	cmd := command{start: time.Now()}
	defer func() {
		l.Mu.Lock()
		l.commands = append(l.commands, cmd)
		l.Mu.Unlock()
	}()
	backoff := loadFirstBackoff
	var err error
	for range loadAttempts {
		l.Mu.Lock()
		count()
		l.Mu.Unlock()
		sent := time.Now()
		actx, cancel := context.WithTimeout(ctx, loadAttemptTimeout)
		l.InFlight.Add(1)
		err = request(actx)
		l.InFlight.Add(-1)
		cancel()
		if apiErr := (*client.Error)(nil); errors.As(err, &apiErr) && apiErr.Status >= 500 && apiErr.Status != http.StatusServiceUnavailable {
			// Retried like any 5xx, yet only 503 is an answer the
			// ledger gives on purpose.
			l.Mu.Lock()
			l.unexpected = append(l.unexpected, err.Error())
			l.Mu.Unlock()
		}
		if err == nil {
			cmd.acked = true
			l.Mu.Lock()
			l.acks = append(l.acks, ack{sent: sent, answered: time.Now()})
			l.Mu.Unlock()
			return nil
		}
		if ctx.Err() != nil || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, loadMaxBackoff)
	}
	return err
}

// settle records a command's outcome: acknowledged runs with l.mu held;
// an error other than an exhausted retry or an abandoned command is
// unexpected.
func (l *CommandLoad) settle(ctx context.Context, what string, err error, acknowledged func()) {
	l.Mu.Lock()
	defer l.Mu.Unlock()
	switch {
	case err == nil:
		acknowledged()
	case ctx.Err() != nil, retryable(err):
	default:
		l.unexpected = append(l.unexpected, fmt.Sprintf("%s: %v", what, err))
	}
}

// retryable reports whether a request may be sent again: the server
// answered 5xx, or that the same command's earlier attempt (one the load
// gave up waiting for) is still running, or no answer came.
func retryable(err error) bool {
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		return apiErr.Status >= 500 || apiErr.Code == client.CodeIdempotencyKeyInUse
	}
	return err != nil && !errors.Is(err, client.ErrNoSession)
}

// AckedSince returns how many requests sent at or after t were
// acknowledged.
func (l *CommandLoad) AckedSince(t time.Time) int {
	l.Mu.Lock()
	defer l.Mu.Unlock()
	n := 0
	for _, a := range l.acks {
		if !a.sent.Before(t) {
			n++
		}
	}
	return n
}

// LongestStall returns the longest time within [from, to) in which no
// request was acknowledged.
func (l *CommandLoad) LongestStall(from, to time.Time) time.Duration {
	l.Mu.Lock()
	var answered []time.Time
	for _, a := range l.acks {
		if a.answered.After(from) && a.answered.Before(to) {
			answered = append(answered, a.answered)
		}
	}
	l.Mu.Unlock()
	slices.SortFunc(answered, time.Time.Compare)
	var longest time.Duration
	last := from
	for _, at := range append(answered, to) {
		longest = max(longest, at.Sub(last))
		last = at
	}
	return longest
}

// Share returns how many logical commands started in [from, to) were
// acknowledged, and how many there were.
func (l *CommandLoad) Share(from, to time.Time) (acked, all int) {
	l.Mu.Lock()
	defer l.Mu.Unlock()
	for _, c := range l.commands {
		if !c.start.Before(from) && c.start.Before(to) {
			all++
			if c.acked {
				acked++
			}
		}
	}
	return acked, all
}

// RegisteredCount returns how many registrations were acknowledged.
func (l *CommandLoad) RegisteredCount() int {
	l.Mu.Lock()
	defer l.Mu.Unlock()
	return len(l.Registered)
}

// Summary describes the load for the test log.
func (l *CommandLoad) Summary() string {
	l.Mu.Lock()
	defer l.Mu.Unlock()
	acked := 0
	for _, c := range l.commands {
		if c.acked {
			acked++
		}
	}
	requests := l.createAttempts
	for _, m := range []map[string]int{l.revokeAttempts, l.regenAttempts, l.RegisterAttempts} {
		for _, n := range m {
			requests += n
		}
	}
	return fmt.Sprintf("%d commands in %d requests, %d acknowledged (%d keys created, %d revoked, %d regenerated, %d users registered)",
		len(l.commands), requests, acked, len(l.created), len(l.revoked), len(l.regenerated), len(l.Registered))
}

// LogFold is the whole log read fresh, decoded and folded with the
// domain's own Apply.
type LogFold struct {
	Head        uint64
	keys        map[string]*domain.Key
	keyOrder    []string // by the sequence of their key.created
	createdHash map[string]domain.Hash
	created     map[string]int
	revoked     map[string]int
	regenerated map[string][]domain.Hash
	keyActors   map[string][]string
	users       map[string]*domain.User
	// Registrations, each an email.reserved and a user.registered stored
	// as one batch.
	reservations map[string]domain.Event // by aggregate (the email's hash)
	// Registrations hold the user.registered events with the sealed email
	// and password hash opened into the clear fields.
	Registrations map[string]domain.Event // by user id
	problems      []string
	dataKeys      *datakeys.Store
	emailKey      []byte
}

// FoldLog reads the log on nc from its first message to its head through
// an ordered consumer of its own, verifies and decodes every message and
// folds it.
func FoldLog(t *testing.T, nc *nats.Conn) *LogFold {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	store, err := eventstore.New(ctx, nc, eventstore.ReadOnly())
	if err != nil {
		t.Fatalf("open the log: %v", err)
	}
	f := &LogFold{keys: map[string]*domain.Key{}, createdHash: map[string]domain.Hash{}, created: map[string]int{},
		revoked: map[string]int{}, regenerated: map[string][]domain.Hash{}, keyActors: map[string][]string{},
		users: map[string]*domain.User{}, reservations: map[string]domain.Event{}, Registrations: map[string]domain.Event{}}
	if f.Head, err = store.Head(ctx); err != nil {
		t.Fatalf("head of the log: %v", err)
	}
	// Opening personal data needs the data keys: nc must be the ledger's
	// or the operator's.
	if f.dataKeys, err = datakeys.Open(ctx, nc, datakeys.WithBucket(datakeys.BucketFor(store.StreamName()))); err != nil {
		t.Fatalf("open the user keys: %v", err)
	}
	if f.emailKey, err = f.dataKeys.EmailKey(ctx); err != nil {
		t.Fatalf("email hash key: %v", err)
	}
	msgs := make(chan eventstore.RawMessage, 256)
	sub, err := store.SubscribeRaw(ctx, 1, func(m eventstore.RawMessage) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	}, nil)
	if err != nil {
		t.Fatalf("read the log: %v", err)
	}
	defer sub.Stop()
	defer cancel() // before Stop: a handler blocked on msgs returns
	for seq := uint64(0); seq < f.Head; {
		var m eventstore.RawMessage
		select {
		case m = <-msgs:
		case <-ctx.Done():
			t.Fatalf("read the log: at sequence %d of %d: %v", seq, f.Head, ctx.Err())
		}
		if m.Seq <= seq {
			continue // redelivered after a reconnect
		}
		if m.Seq != seq+1 {
			f.problemf("sequence %d follows %d: messages are missing", m.Seq, seq)
		}
		seq = m.Seq
		e, err := store.Decode(ctx, m)
		if err != nil {
			f.problemf("sequence %d (%s): %v", m.Seq, m.Subject, err)
			continue
		}
		f.apply(ctx, e)
	}
	return f
}

func (f *LogFold) problemf(format string, args ...any) {
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func (f *LogFold) apply(ctx context.Context, e domain.Event) {
	switch e.Category() {
	case domain.CategoryKey:
		k := f.keys[e.Aggregate]
		if k == nil {
			k = &domain.Key{}
		}
		if err := k.Apply(e); err != nil {
			f.problemf("sequence %d: %v", e.Sequence, err)
			return
		}
		f.keys[e.Aggregate] = k
		f.keyActors[e.Aggregate] = append(f.keyActors[e.Aggregate], e.Actor)
		switch d := e.Data.(type) {
		case domain.KeyCreated:
			f.created[e.Aggregate]++
			f.createdHash[e.Aggregate] = d.SecretHash
			f.keyOrder = append(f.keyOrder, e.Aggregate)
		case domain.KeyRevoked:
			f.revoked[e.Aggregate]++
		case domain.KeySecretRegenerated:
			f.regenerated[e.Aggregate] = append(f.regenerated[e.Aggregate], d.SecretHash)
		}
	case domain.CategoryUser:
		u := f.users[e.Aggregate]
		if u == nil {
			u = &domain.User{}
		}
		if err := u.Apply(e); err != nil {
			f.problemf("sequence %d: %v", e.Sequence, err)
			return
		}
		f.users[e.Aggregate] = u
		if d, ok := e.Data.(domain.UserRegistered); ok {
			if d.Personal != "" {
				key, err := f.dataKeys.Get(ctx, e.Aggregate)
				if err != nil {
					f.problemf("sequence %d: data key of %s: %v", e.Sequence, e.Aggregate, err)
					return
				}
				p, err := domain.OpenPersonal(key, e.Aggregate, e.Type, e.Schema, d.Personal)
				if err != nil {
					f.problemf("sequence %d: %v", e.Sequence, err)
					return
				}
				d.Email, d.PasswordHash = p.Email, p.PasswordHash
				e.Data = d
			}
			f.Registrations[e.Aggregate] = e
		}
	case domain.CategoryEmail:
		if _, dup := f.reservations[e.Aggregate]; dup {
			f.problemf("sequence %d: a second reservation of %s", e.Sequence, e.Aggregate)
		}
		f.reservations[e.Aggregate] = e
	case domain.CategoryLog, domain.CategoryLedger:
		// Checkpoints and trust events: audit.Verify checks them.
	default:
		f.problemf("sequence %d: an event of type %s", e.Sequence, e.Type)
	}
}

// CheckLog holds the log against what the load sent and what it was told:
// every acknowledged command is in the log exactly once, and nothing is in
// the log that no request asked for.
func (l *CommandLoad) CheckLog(t *testing.T, f *LogFold) {
	t.Helper()
	l.Mu.Lock()
	defer l.Mu.Unlock()
	for _, p := range f.problems {
		t.Errorf("the log: %s", p)
	}
	for _, u := range l.unexpected {
		t.Errorf("unexpected answer: %s", u)
	}

	// Acknowledged means stored, once.
	for key, ack := range l.created {
		switch {
		case f.created[key] != 1:
			t.Errorf("acknowledged key %s: %d key.created events, want 1", key, f.created[key])
		case f.keys[key].UserID != ack.user:
			t.Errorf("acknowledged key %s: owner %s, want %s", key, f.keys[key].UserID, ack.user)
		case f.createdHash[key] != secretHash(t, ack.secret):
			t.Errorf("acknowledged key %s: key.created holds another secret than the 201 gave", key)
		}
	}
	for key := range l.revoked {
		if f.revoked[key] != 1 {
			t.Errorf("acknowledged revocation of %s: %d key.revoked events, want 1", key, f.revoked[key])
		}
	}
	for _, r := range l.regenerated {
		h := secretHash(t, r.secret)
		if n := countOf(f.regenerated[r.key], h); n != 1 {
			t.Errorf("acknowledged regeneration of %s: %d key.secret_regenerated events with its secret, want 1", r.key, n)
		}
	}
	for id, email := range l.Registered {
		e, ok := f.Registrations[id]
		if !ok {
			t.Errorf("acknowledged registration of %s: no user.registered for %s", email, id)
		} else if got := e.Data.(domain.UserRegistered).Email; got != email {
			t.Errorf("acknowledged registration of %s: user %s registered %s", email, id, got)
		}
	}

	// Nothing no client asked for.
	owners := map[string]bool{}
	for _, w := range l.workers {
		owners[w.user.id] = true
	}
	created := 0
	for key, n := range f.created {
		created += n
		if k := f.keys[key]; !owners[k.UserID] {
			t.Errorf("key %s in the log belongs to %s, for whom no client created keys", key, k.UserID)
		}
		for _, actor := range f.keyActors[key] {
			if actor != f.keys[key].UserID {
				t.Errorf("key %s: an event by %q, not its owner", key, actor)
			}
		}
	}
	if created > l.createAttempts {
		t.Errorf("%d key.created events, more than the %d create requests sent", created, l.createAttempts)
	}
	for key, n := range f.revoked {
		if l.revokeAttempts[key] == 0 {
			t.Errorf("key %s: %d key.revoked events, yet no revocation was requested", key, n)
		}
	}
	for key, hs := range f.regenerated {
		if len(hs) > l.regenAttempts[key] {
			t.Errorf("key %s: %d key.secret_regenerated events, more than the %d requests sent", key, len(hs), l.regenAttempts[key])
		}
	}
	emails := map[string]int{}
	for id, e := range f.Registrations {
		email := e.Data.(domain.UserRegistered).Email
		emails[email]++
		if l.RegisterAttempts[email] == 0 {
			t.Errorf("user %s registered %s, which no client tried to register", id, email)
		}
	}
	for email, n := range emails {
		if n > 1 {
			t.Errorf("%s registered %d times", email, n)
		}
	}

	// Registration is one atomic batch: neither half without the other,
	// and the two side by side in the log.
	for agg, r := range f.reservations {
		id := r.Data.(domain.EmailReserved).UserID
		u, ok := f.Registrations[id]
		switch {
		case !ok:
			t.Errorf("email.reserved %s (sequence %d) for %s, who has no user.registered", agg, r.Sequence, id)
		case domain.EmailAggregate(f.emailKey, u.Data.(domain.UserRegistered).Email) != agg:
			t.Errorf("email.reserved %s for %s, who registered another address", agg, id)
		case u.Sequence != r.Sequence+1 && r.Sequence != u.Sequence+1:
			t.Errorf("registration of %s: email.reserved at %d and user.registered at %d, not one batch", id, r.Sequence, u.Sequence)
		}
	}
	for id, u := range f.Registrations {
		agg := domain.EmailAggregate(f.emailKey, u.Data.(domain.UserRegistered).Email)
		if r, ok := f.reservations[agg]; !ok || r.Data.(domain.EmailReserved).UserID != id {
			t.Errorf("user.registered %s (sequence %d) without its email.reserved", id, u.Sequence)
		}
	}
}

// VerifyLog runs the auditor's verification over the whole log on nc:
// signatures, hash chains, no gaps, checkpoint roots.
func VerifyLog(t *testing.T, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	store, err := eventstore.New(ctx, nc, eventstore.ReadOnly())
	if err != nil {
		t.Fatalf("open the log: %v", err)
	}
	r, err := audit.Verify(ctx, store, nil, nil)
	if err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	for _, p := range r.Problems {
		t.Errorf("audit verify: %s", p)
	}
}

// CheckProjections holds serve's read models, through its API, against the
// fold: each user's listing (every page) is the fold's keys of that user,
// newest first, with the same statuses and times; /validate accepts an
// acknowledged secret exactly when the fold says it is the key's current
// one on an unrevoked key (a sample of each kind).
func (l *CommandLoad) CheckProjections(t *testing.T, f *LogFold) {
	t.Helper()
	ctx := t.Context()
	users := map[string]*loadUser{}
	for _, w := range l.workers {
		users[w.user.id] = w.user
	}
	for _, u := range users {
		var want []*domain.Key
		for _, key := range slices.Backward(f.keyOrder) {
			if k := f.keys[key]; k.UserID == u.id {
				want = append(want, k)
			}
		}
		var got []client.Key
		for k, err := range u.api.AllKeys(ctx, client.ListOptions{Limit: 200}) {
			if err != nil {
				t.Fatalf("list %s's keys: %v", u.email, err)
			}
			got = append(got, k)
		}
		if len(got) != len(want) {
			t.Errorf("%s: the listing has %d keys, the log %d", u.email, len(got), len(want))
		}
		for i := range min(len(got), len(want)) {
			if diff := keyDiff(got[i], want[i]); diff != "" {
				t.Errorf("%s: listing position %d: %s", u.email, i, diff)
				break
			}
		}
	}

	// The secrets the load was given, newest last: each key's creation
	// then its regenerations.
	type sample struct {
		key, secret string
		want        int
	}
	var valid, invalid []sample
	add := func(key, secret string) {
		k := f.keys[key]
		s := sample{key: key, secret: secret, want: http.StatusUnauthorized}
		if k != nil && !k.Revoked() && k.SecretHash == secretHash(t, secret) {
			s.want = http.StatusOK
			valid = append(valid, s)
		} else {
			invalid = append(invalid, s)
		}
	}
	l.Mu.Lock()
	keys := make([]string, 0, len(l.created))
	for key := range l.created {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		add(key, l.created[key].secret)
	}
	for _, r := range l.regenerated {
		add(r.key, r.secret)
	}
	l.Mu.Unlock()
	if len(valid) == 0 || len(invalid) == 0 {
		t.Fatalf("a sample needs secrets of both kinds: %d valid, %d not", len(valid), len(invalid))
	}
	for _, s := range append(Spread(valid, 25), Spread(invalid, 25)...) {
		got := http.StatusOK
		if _, err := l.API.Validate(ctx, s.key, s.secret, client.StyleAPIKeyHeaders); err != nil {
			var apiErr *client.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("validate %s: %v", s.key, err)
			}
			got = apiErr.Status
		}
		if got != s.want {
			t.Errorf("validate %s with an acknowledged secret: got %d, want %d", s.key, got, s.want)
		}
	}
}

// keyDiff describes how a listed key differs from the fold's, or "".
func keyDiff(got client.Key, want *domain.Key) string {
	status := client.StatusActive
	if want.Revoked() {
		status = client.StatusRevoked
	}
	switch {
	case got.APIKey != want.APIKey:
		return fmt.Sprintf("key %s, the log has %s", got.APIKey, want.APIKey)
	case got.Status != status:
		return fmt.Sprintf("%s: status %s, the log says %s", got.APIKey, got.Status, status)
	case got.Name != want.Name || !got.CreatedAt.Equal(want.CreatedAt):
		return fmt.Sprintf("%s: name %q created %v, the log says %q %v", got.APIKey, got.Name, got.CreatedAt, want.Name, want.CreatedAt)
	case !sameTime(got.RevokedAt, want.RevokedAt):
		return fmt.Sprintf("%s: revoked at %v, the log says %v", got.APIKey, got.RevokedAt, want.RevokedAt)
	case !sameTime(got.SecretRegeneratedAt, want.SecretRegeneratedAt):
		return fmt.Sprintf("%s: regenerated at %v, the log says %v", got.APIKey, got.SecretRegeneratedAt, want.SecretRegeneratedAt)
	}
	return ""
}

func sameTime(got *time.Time, want time.Time) bool {
	if got == nil {
		return want.IsZero()
	}
	return got.Equal(want)
}

// Spread returns up to n elements of s, evenly spaced.
func Spread[T any](s []T, n int) []T {
	if len(s) <= n {
		return s
	}
	out := make([]T, n)
	for i := range out {
		out[i] = s[i*len(s)/n]
	}
	return out
}

func countOf(hs []domain.Hash, h domain.Hash) int {
	n := 0
	for _, x := range hs {
		if x == h {
			n++
		}
	}
	return n
}

func secretHash(t *testing.T, secret string) domain.Hash {
	t.Helper()
	s, err := domain.ParseSecret(secret)
	if err != nil {
		t.Fatalf("a secret the API gave does not parse: %v", err)
	}
	return s.Hash()
}
