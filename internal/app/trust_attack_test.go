package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/audit"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/datakeys"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
	"github.com/keyledger/keyledger/validator"
)

// The attacks of the trust-root issue, run as the attacker would: a NATS
// server without authentication, on which the attacker has every
// JetStream right (here: a client of the test server, doing what
// `nats stream edit` and `nats pub` do), and serve, validation nodes and
// the auditor on it.

// metadataSigningKeys is the stream metadata entry that readers trusted
// before trust came from the log.
const metadataSigningKeys = "keyledger_signing_keys"

type trustEnv struct {
	srv       *server.Server
	ts        *apptest.Server
	ledgerPub ed25519.PublicKey
	ledger    ed25519.PrivateKey
	js        jetstream.JetStream
	attacker  ed25519.PrivateKey
}

// startTrustEnv starts a NATS server without authentication and serve on it.
func startTrustEnv(t *testing.T) *trustEnv {
	t.Helper()
	srv := natstest.RunServer(t)
	dir := t.TempDir()
	logs := &apptest.SyncBuffer{}
	s := &app.Server{
		Config: app.ServeConfig{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSURL: srv.ClientURL(),
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: -1},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	ts := &apptest.Server{Server: s, Base: "http://" + s.HTTPAddr(), Logs: logs}
	t.Cleanup(func() { ts.Stop(t) })
	natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
	key, err := auth.LoadOrCreateSigningKey(filepath.Join(dir, "ledger-ed25519.pem"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	return &trustEnv{srv: srv, ts: ts, ledger: key, ledgerPub: key.Public().(ed25519.PublicKey), js: js,
		attacker: testkeys.Key("attacker")}
}

// setMetadata does what `nats stream edit KEYLEDGER --metadata` does.
func (e *trustEnv) setMetadata(t *testing.T, keys ...ed25519.PublicKey) {
	t.Helper()
	ctx := context.Background()
	stream, err := e.js.Stream(ctx, eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	var list []string
	for _, k := range keys {
		list = append(list, eventstore.EncodePublicKey(k))
	}
	if cfg.Metadata == nil {
		cfg.Metadata = map[string]string{}
	}
	cfg.Metadata[metadataSigningKeys] = strings.Join(list, ",")
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("the attacker edits the stream's metadata: %v", err)
	}
}

// forge publishes events signed with the attacker's key, each on its own
// aggregate's subject, and returns their sequences.
func (e *trustEnv) forge(t *testing.T, events ...domain.Event) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, ev := range events {
		if ev.ID == "" {
			ev.ID = ulid.Make().String()
		}
		data, err := domain.EncodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(fmt.Sprintf("keyledger.%s.%s", ev.Category(), ev.Aggregate))
		m.Data = data
		sum := sha256.Sum256(data)
		m.Header.Set(eventstore.HeaderHash, hex.EncodeToString(sum[:])) // as the ledger writes it
		eventstore.Sign(e.attacker, m)
		ack, err := e.js.PublishMsg(context.Background(), m)
		if err != nil {
			t.Fatalf("the attacker publishes %s: %v", ev.Type, err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

// forgedKey makes a key.created for owner, with a secret the attacker knows.
func forgedKey(t *testing.T, owner string) (domain.Event, apptest.CreatedKey) {
	t.Helper()
	apiKey := domain.APIKeyPrefix + ulid.Make().String()
	secret, err := domain.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := secret.PublicKey(apiKey)
	if err != nil {
		t.Fatal(err)
	}
	e := domain.Event{Type: domain.TypeKeyCreated, Schema: domain.KeyPolicySchema, Aggregate: apiKey,
		Version: 1, Time: time.Now().UTC(), Actor: owner,
		Data: domain.KeyCreated{UserID: owner, Name: "forged", SecretHash: secret.Hash(), PublicKey: pub}}
	return e, apptest.CreatedKey{Key: apiKey, Secret: secret.Reveal()}
}

// forgedAdmin makes a user.registered with the admin role and its email
// reservation.
func (e *trustEnv) forgedAdmin(t *testing.T, email string) []domain.Event {
	t.Helper()
	hash, err := e.ts.Passwords().Hash(apptest.Password)
	if err != nil {
		t.Fatal(err)
	}
	// The attacker has the run of the NATS server: they make the user's
	// data key and read the email hash key as the ledger would.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys, err := datakeys.Open(ctx, natstest.Connect(t, e.srv))
	if err != nil {
		t.Fatal(err)
	}
	userID := domain.UserIDPrefix + ulid.Make().String()
	dataKey, err := keys.Create(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	emailKey, err := keys.EmailKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := domain.SealPersonal(dataKey, userID, domain.TypeUserRegistered, domain.UserRegisteredSchema,
		domain.Personal{Email: email, PasswordHash: hash}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	events, err := domain.Register(domain.RegisterUser{UserID: userID, EmailKey: domain.EmailAggregate(emailKey, email),
		Personal: sealed, Role: domain.RoleAdmin}, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func (e *trustEnv) head(t *testing.T) uint64 {
	t.Helper()
	stream, err := e.js.Stream(context.Background(), eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// openValidator opens a validation node on the log, caught up to the head.
func (e *trustEnv) openValidator(t *testing.T, opts ...validator.Option) *validator.Validator {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := validator.Open(ctx, natstest.Connect(t, e.srv), nil, opts...)
	if err != nil {
		t.Fatalf("validator.Open: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// validOn reports whether key validates on v once v has applied the log
// up to the head.
func (e *trustEnv) validOn(t *testing.T, v *validator.Validator, key apptest.CreatedKey) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.WaitFor(ctx, e.head(t)); err != nil {
		t.Fatalf("validator WaitFor: %v", err)
	}
	natstest.Eventually(t, 30*time.Second, func() bool { return v.Status().Ready }, "validator ready")
	_, err := v.Validate(ctx, key.Key, key.Secret)
	if err != nil {
		t.Logf("validate %s: %v", key.Key, err)
	}
	return err == nil
}

func (e *trustEnv) verify(t *testing.T, opts ...eventstore.Option) audit.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := eventstore.New(ctx, natstest.Connect(t, e.srv), append(opts, eventstore.ReadOnly())...)
	if err != nil {
		t.Fatalf("audit: open the log: %v", err)
	}
	r, err := audit.Verify(ctx, store, nil, nil)
	if err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	return r
}

// TestTrustAttack_ForgedSigner: the attacker adds their key to the stream's
// metadata and publishes a key for a victim and an admin of their own.
// Neither is believed by serve, by validators started before or after,
// and audit verify names both; then (laundering) the checkpoint writer does
// not vouch for them, and a pinned validator started after the checkpoint
// does not accept the forged key.
func TestTrustAttack_ForgedSigner(t *testing.T) {
	t.Parallel()
	e := startTrustEnv(t)
	victim := e.ts.Register(t, "victim@example.com", apptest.Password)
	token := e.ts.Login(t, "victim@example.com", apptest.Password)
	genuine := e.ts.CreateKey(t, token, `{"name":"genuine"}`)
	before := e.openValidator(t)

	e.setMetadata(t, e.ledgerPub, e.attacker.Public().(ed25519.PublicKey))
	keyEvent, forged := forgedKey(t, victim)
	forgedSeqs := e.forge(t, append([]domain.Event{keyEvent}, e.forgedAdmin(t, "mallory@example.com")...)...)
	// A command after the forgery: once it answers, serve's projections
	// have seen the forged events.
	e.ts.CreateKey(t, token, `{"name":"after"}`)

	if got := e.ts.Validate(t, forged); got != http.StatusUnauthorized {
		t.Errorf("serve: the forged key validates (%d), want 401", got)
	}
	if got := e.ts.Do(t, "POST", "/sessions", `{"email":"mallory@example.com","password":"`+apptest.Password+`"}`).Status; got != http.StatusUnauthorized {
		t.Errorf("serve: the forged admin logs in (%d), want 401", got)
	}
	if got := e.ts.Validate(t, genuine); got != http.StatusOK {
		t.Errorf("serve: the genuine key got %d, want 200", got)
	}
	after := e.openValidator(t)
	for name, v := range map[string]*validator.Validator{"started before": before, "started after": after} {
		if e.validOn(t, v, forged) {
			t.Errorf("validator %s the attack: the forged key validates", name)
		}
		if !e.validOn(t, v, genuine) {
			t.Errorf("validator %s the attack: the genuine key does not validate", name)
		}
	}
	r := e.verify(t)
	for _, seq := range forgedSeqs {
		if !slices.ContainsFunc(r.Problems, func(p audit.Problem) bool {
			return p.Seq == seq && strings.Contains(p.What, "not written by the ledger")
		}) {
			t.Errorf("audit verify: no problem named forged sequence %d; got %v", seq, r.Problems)
		}
	}

	t.Run("Laundering", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		store, err := eventstore.New(ctx, natstest.Connect(t, e.srv), eventstore.WithSigningKey(e.ledger))
		if err != nil {
			t.Fatal(err)
		}
		w, err := checkpoint.Start(ctx, store, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if err := w.WaitFor(ctx, e.head(t)); err != nil {
			t.Fatal(err)
		}
		cp, err := w.WriteNow(ctx)
		if err != nil {
			t.Fatalf("WriteNow: %v", err)
		}
		foreign := cp.Data.(domain.LogCheckpoint).Foreign
		for _, seq := range forgedSeqs {
			if !slices.Contains(foreign, seq) {
				t.Errorf("the checkpoint vouches for forged sequence %d: it names only %v as foreign", seq, foreign)
			}
		}
		pinned := e.openValidator(t, validator.WithTrustedKeys(e.ledgerPub))
		if e.validOn(t, pinned, forged) {
			t.Error("a pinned validator started after the checkpoint accepts the forged key")
		}
		if !e.validOn(t, pinned, genuine) {
			t.Error("a pinned validator started after the checkpoint refuses the genuine key")
		}
	})
}

// TestTrustAttack_ReplacedSigner: the attacker replaces the metadata's keys
// with their own alone and publishes one message. The ledger's own events
// keep being applied: a revocation is in force on serve and on every
// validation node, started before or after.
func TestTrustAttack_ReplacedSigner(t *testing.T) {
	t.Parallel()
	e := startTrustEnv(t)
	victim := e.ts.Register(t, "victim@example.com", apptest.Password)
	token := e.ts.Login(t, "victim@example.com", apptest.Password)
	leaked := e.ts.CreateKey(t, token, `{"name":"leaked"}`)
	before := e.openValidator(t)
	if !e.validOn(t, before, leaked) {
		t.Fatal("before the attack: the key does not validate")
	}

	e.setMetadata(t, e.attacker.Public().(ed25519.PublicKey))
	keyEvent, _ := forgedKey(t, victim)
	e.forge(t, keyEvent)

	apptest.WantStatus(t, e.ts.Do(t, "DELETE", "/api-keys/"+leaked.Key, "", "Authorization", "Bearer "+token), http.StatusNoContent)
	if got := e.ts.Validate(t, leaked); got != http.StatusUnauthorized {
		t.Errorf("serve: the revoked key got %d, want 401", got)
	}
	after := e.openValidator(t)
	for name, v := range map[string]*validator.Validator{"started before": before, "started after": after} {
		if e.validOn(t, v, leaked) {
			t.Errorf("validator %s the attack: the revoked key still validates", name)
		}
	}
}

// TestTrust_KeyRotation: a second serve with a new key is refused until
// the old key adds it; once the new key retired the old one, events the
// old key signs are refused by serve's projections, validation nodes and
// audit verify, and a ledger with the old key no longer opens.
func TestTrust_KeyRotation(t *testing.T) {
	t.Parallel()
	e := startTrustEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	victim := e.ts.Register(t, "victim@example.com", apptest.Password)
	before := e.openValidator(t)

	dir2 := t.TempDir()
	serve2 := &app.Server{Config: app.ServeConfig{DataDir: dir2, HTTPAddr: "127.0.0.1:0", NATSURL: e.srv.ClientURL(),
		Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: -1}}
	err := serve2.Open(ctx)
	if err == nil || !strings.Contains(err.Error(), "ledger-keys add") {
		t.Fatalf("serve with a key the log does not trust: got %v, want a refusal naming ledger-keys add", err)
	}
	serve2.Close(ctx) // as keyledger serve does after a failed Open: frees the data directory
	k2, err := auth.LoadOrCreateSigningKey(filepath.Join(dir2, "ledger-ed25519.pem"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := eventstore.New(ctx, natstest.Connect(t, e.srv), eventstore.WithSigningKey(e.ledger))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.AddLedgerKey(ctx, k2.Public().(ed25519.PublicKey), "rotation", "admin:root"); err != nil {
		t.Fatalf("AddLedgerKey: %v", err)
	}
	serve2 = &app.Server{Config: serve2.Config}
	if err := serve2.Open(ctx); err != nil {
		t.Fatalf("serve with the added key: %v", err)
	}
	ts2 := &apptest.Server{Server: serve2, Base: "http://" + serve2.HTTPAddr()}
	t.Cleanup(func() { ts2.Stop(t) })
	natstest.Eventually(t, 10*time.Second, serve2.Ready, "second serve ready")
	token2 := ts2.Login(t, "victim@example.com", apptest.Password) // its own session key
	byK2 := ts2.CreateKey(t, token2, `{"name":"signed by the new key"}`)

	newer, err := eventstore.New(ctx, natstest.Connect(t, e.srv), eventstore.WithSigningKey(k2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newer.RetireLedgerKey(ctx, eventstore.KeyID(e.ledgerPub), "rotated out", "admin:root"); err != nil {
		t.Fatalf("RetireLedgerKey: %v", err)
	}
	if _, err := newer.RetireLedgerKey(ctx, eventstore.KeyID(k2.Public().(ed25519.PublicKey)), "the last one", "admin:root"); domain.KindOf(err) != domain.Invalid {
		t.Fatalf("retiring the last trusted key: got %v, want invalid", err)
	}
	// The old key, still held by a ledger that did not stop, signs a key.
	ev, late := forgedKey(t, victim)
	seqs, err := old.Append(ctx, eventstore.Pending{Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	ts2.CreateKey(t, token2, `{"name":"after"}`) // serve2's projections are past it

	if got := ts2.Validate(t, late); got != http.StatusUnauthorized {
		t.Errorf("serve: a key signed by the retired key got %d, want 401", got)
	}
	if got := ts2.Validate(t, byK2); got != http.StatusOK {
		t.Errorf("serve: a key signed by the new key got %d, want 200", got)
	}
	after := e.openValidator(t)
	pinned := e.openValidator(t, validator.WithTrustedKeys(e.ledgerPub))
	for name, v := range map[string]*validator.Validator{"before": before, "after": after, "pinned": pinned} {
		if e.validOn(t, v, late) {
			t.Errorf("validator %s: a key signed by the retired key validates", name)
		}
		if !e.validOn(t, v, byK2) {
			t.Errorf("validator %s: a key signed by the new key does not validate", name)
		}
	}
	r := e.verify(t)
	if !slices.ContainsFunc(r.Problems, func(p audit.Problem) bool { return p.Seq == seqs[0] }) {
		t.Errorf("audit verify: no problem names sequence %d, signed by the retired key; got %v", seqs[0], r.Problems)
	}
	if _, err := eventstore.New(ctx, natstest.Connect(t, e.srv), eventstore.WithSigningKey(e.ledger)); !errors.Is(err, eventstore.ErrUntrustedSigningKey) {
		t.Errorf("a ledger with the retired key: got %v, want ErrUntrustedSigningKey", err)
	}
}
