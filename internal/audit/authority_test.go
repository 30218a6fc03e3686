package audit_test

import (
	"crypto/ed25519"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/httpsig"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// adminKey is an admin key pair for signing requests.
type adminKey struct {
	name string
	priv ed25519.PrivateKey
	pub  domain.PublicKey
	id   string
}

func newAdminKey(name string) adminKey {
	k := adminKey{name: name, priv: testkeys.Key("admin-" + name)}
	copy(k.pub[:], k.priv.Public().(ed25519.PublicKey))
	k.id = domain.AdminKeyID(k.pub)
	return k
}

func (k adminKey) actor() string { return domain.AdminActor(k.name) }

// sign returns the request method path body signed with k as an admin
// signs it, kept as serve keeps it once it has verified it.
func (k adminKey) sign(t *testing.T, method, path, body string) *domain.SignedRequest {
	t.Helper()
	req, err := http.NewRequest(method, "http://127.0.0.1:8080"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := httpsig.Sign(req, []byte(body), k.priv, httpsig.SignOptions{KeyID: k.id, Tag: httpsig.AdminTag}); err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	s, err := httpsig.ParseTagged(req, httpsig.AdminTag)
	if err != nil {
		t.Fatalf("ParseTagged: %v", err)
	}
	if err := s.CheckBody([]byte(body)); err != nil {
		t.Fatalf("CheckBody: %v", err)
	}
	return &domain.SignedRequest{KeyID: s.KeyID, Input: s.Input(), Signature: s.Bytes(), Base: string(s.Base())}
}

// adminLog is a log written by a real ledger where admins acted, as serve
// records their signed requests.
type adminLog struct {
	l                *ledgertest.Ledger
	ops, bob, tmp    adminKey
	u1, u2           domain.User
	k1, k2, k3, k4   string
	sessionAdmin     string // an admin user acting with a session
	revokeK1, disU2  *domain.SignedRequest
	revokeU1Keys     *domain.SignedRequest
	requestsVerified uint64
}

func newAdminLog(t *testing.T) *adminLog {
	t.Helper()
	nc := natstest.Connect(t, natstest.RunServer(t))
	l := ledgertest.New(t, nc, eventstore.WithMemoryStorage())
	ctx := ledgertest.Context(t)
	a := &adminLog{l: l, ops: newAdminKey("ops"), bob: newAdminKey("bob"), tmp: newAdminKey("tmp")}
	a.u1, a.u2 = l.Register(t), l.Register(t)
	key := func(u domain.User) string { k, _ := l.CreateKey(t, u.ID); return k.APIKey }
	a.k1, a.k2, a.k4, a.k3 = key(a.u1), key(a.u1), key(a.u1), key(a.u2)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	ok, err := l.Service.BootstrapAdmin(ctx, ledger.BootstrapAdmin{Name: "ops", Key: a.ops.pub})
	must("bootstrap", err)
	if !ok {
		t.Fatal("bootstrap enrolled nothing")
	}
	for _, k := range []adminKey{a.bob, a.tmp} {
		_, err := l.Service.EnrollAdminKey(ctx, ledger.EnrollAdminKey{Actor: a.ops.actor(), Name: k.name, Key: k.pub,
			Request: a.ops.sign(t, "POST", "/admin/admin-keys", `{"name":"`+k.name+`"}`)})
		must("enrol "+k.name, err)
	}
	a.revokeK1 = a.ops.sign(t, "DELETE", "/admin/keys/"+a.k1, "")
	must("revoke k1", l.Service.AdminRevokeKey(ctx, ledger.AdminRevokeKey{Actor: a.ops.actor(), APIKey: a.k1, Request: a.revokeK1}))
	a.disU2 = a.bob.sign(t, "POST", "/admin/users/"+a.u2.ID+"/disable", `{"reason":"compromised"}`)
	must("disable u2", l.Service.DisableUser(ctx, ledger.DisableUser{Actor: a.bob.actor(), UserID: a.u2.ID, Reason: "compromised", Request: a.disU2}))
	a.revokeU1Keys = a.ops.sign(t, "POST", "/admin/users/"+a.u1.ID+"/revoke-keys", "")
	revoked, err := l.Service.RevokeUserKeys(ctx, ledger.RevokeUserKeys{Actor: a.ops.actor(), UserID: a.u1.ID, Request: a.revokeU1Keys})
	must("revoke u1's keys", err)
	if len(revoked) != 2 {
		t.Fatalf("revoke-keys revoked %v, want k2 and k4", revoked)
	}
	admin, err := l.Service.CreateUser(ctx, ledger.CreateUser{Actor: a.tmp.actor(), Email: "root@example.com", Password: ledgertest.Password,
		Role: domain.RoleAdmin, Request: a.tmp.sign(t, "POST", "/admin/users", `{"email":"root@example.com","salt":"x"}`)})
	must("create an admin user", err)
	a.sessionAdmin = admin.ID
	must("enable u2 with a session", l.Service.EnableUser(ctx, ledger.EnableUser{Actor: domain.AdminActor(admin.ID), UserID: a.u2.ID}))
	must("revoke tmp's key", l.Service.RevokeAdminKey(ctx, ledger.RevokeAdminKey{Actor: a.bob.actor(), KeyID: a.tmp.id,
		Request: a.bob.sign(t, "DELETE", "/admin/admin-keys/"+a.tmp.id, "")}))
	// Two enrolments, revoke k1, disable u2, k2 and k4 revoked,
	// email.reserved and user.registered, tmp's key revoked.
	a.requestsVerified = 9
	return a
}

// forge appends an event to an aggregate as whoever holds the ledger's
// signing key can: signed, chained and in order, with any actor and any
// kept request. It returns the event's stream sequence.
func (a *adminLog) forge(t *testing.T, category, aggregate, actor string, data domain.EventData, req *domain.SignedRequest) uint64 {
	t.Helper()
	ctx := ledgertest.Context(t)
	events, last, err := a.l.Store.Load(ctx, category, aggregate)
	if err != nil {
		t.Fatalf("Load(%s %s): %v", category, aggregate, err)
	}
	e := domain.Event{Type: data.EventType(), Schema: domain.SchemaFor(data), Aggregate: aggregate, Version: 1,
		Time: time.Now().UTC(), Actor: actor, Data: data, Request: req}
	if n := len(events); n > 0 {
		e.Version, e.Prev = events[n-1].Version+1, events[n-1].Hash
	}
	seqs, err := a.l.Store.Append(ctx, eventstore.Pending{Event: e, ExpectedSeq: last})
	if err != nil {
		t.Fatalf("Append(%s): %v", e.Type, err)
	}
	return seqs[0]
}

// TestVerify_AdminRequests: a log where admins acted through signed
// requests (and an admin user with a session) verifies clean, and counts
// the kept requests it checked.
func TestVerify_AdminRequests(t *testing.T) {
	t.Parallel()
	a := newAdminLog(t)
	r := verify(t, a.l.Conn, nil)
	checkProblems(t, r)
	if r.AdminRequests != a.requestsVerified {
		t.Errorf("AdminRequests = %d, want %d", r.AdminRequests, a.requestsVerified)
	}
}

// TestVerify_AdminRequestAttacks: whoever holds the ledger's signing key
// can append events the ledger's signature vouches for, recorded as any
// admin's act. Without that admin's key they cannot make the kept request
// check out: audit verify names every such event.
func TestVerify_AdminRequestAttacks(t *testing.T) {
	t.Parallel()
	a := newAdminLog(t)
	mallory := newAdminKey("mallory") // never enrolled
	var wants []want
	attack := func(seq uint64, aggregate string, what ...string) {
		wants = append(wants, want{seq: seq, aggregate: aggregate, what: what})
	}
	revoked := domain.KeyRevoked{Reason: "forged"}
	disabled := domain.UserDisabled{Reason: "forged"}

	// (a) An admin's act with no request at all.
	attack(a.forge(t, domain.CategoryKey, a.k3, a.ops.actor(), revoked, nil), a.k3,
		"key.revoked is recorded as admin:ops's act but carries no kept request")
	// (b) A request signed by a key no admin ever had.
	attack(a.forge(t, domain.CategoryUser, a.u1.ID, a.ops.actor(), disabled,
		mallory.sign(t, "POST", "/admin/users/"+a.u1.ID+"/disable", "")), a.u1.ID,
		"never enrolled as an admin key", mallory.id)
	// (c) ops's request to revoke k1, copied and pointed at k3: the
	// signature no longer verifies.
	tampered := *a.revokeK1
	tampered.Base = strings.Replace(tampered.Base, a.k1, a.k3, 1)
	attack(a.forge(t, domain.CategoryKey, a.k3, a.ops.actor(), revoked, &tampered), a.k3,
		"does not verify with admin:ops's key", "bad signature")
	// ... and copied as it is: it asked for another key.
	copied := a.forge(t, domain.CategoryKey, a.k3, a.ops.actor(), revoked, a.revokeK1)
	attack(copied, a.k3, "keeps a request for DELETE /admin/keys/"+a.k1+", which does not cause it")
	attack(copied, a.k3, "the same signed request as sequence")
	// (d) A request signed by tmp's key after bob revoked it.
	attack(a.forge(t, domain.CategoryKey, a.k3, a.tmp.actor(), revoked,
		a.tmp.sign(t, "DELETE", "/admin/keys/"+a.k3, "")), a.k3,
		"admin key "+a.tmp.id+" of tmp, revoked before this event")
	// (e) bob's request, recorded as ops's act.
	attack(a.forge(t, domain.CategoryKey, a.k3, a.ops.actor(), revoked,
		a.bob.sign(t, "DELETE", "/admin/keys/"+a.k3, "")), a.k3,
		`recorded as "admin:ops"'s act, but its kept request was signed by admin:bob's key`)
	// (f) bob's disabling of u2, replayed after u2 was enabled again.
	attack(a.forge(t, domain.CategoryUser, a.u2.ID, a.bob.actor(), disabled, a.disU2), a.u2.ID,
		"the same signed request as sequence")
	// (g) ops's revoke-keys of u1, replayed on a key u1 created since.
	k5, _ := a.l.CreateKey(t, a.u1.ID)
	attack(a.forge(t, domain.CategoryKey, k5.APIKey, a.ops.actor(), revoked, a.revokeU1Keys), k5.APIKey,
		"keeps the revoke-keys request first kept at sequence", "but the key was created after it")
	// (h) A session of a user who is not an admin.
	attack(a.forge(t, domain.CategoryUser, a.u1.ID, domain.AdminActor(a.u1.ID), disabled, nil), a.u1.ID,
		"not an enabled admin user")
	// (i) A second bootstrap enrolment, and an admin event without a
	// request.
	attack(a.forge(t, domain.CategoryAdmin, "mallory", domain.ActorBootstrap, domain.AdminKeyEnrolled{Key: mallory.pub}, nil), "mallory",
		"a bootstrap enrolment (actor system:bootstrap) after 3 admin key enrolment(s)")
	attack(a.forge(t, domain.CategoryAdmin, "eve", a.ops.actor(), domain.AdminKeyEnrolled{Key: newAdminKey("eve").pub}, nil), "eve",
		`admin.key_enrolled by "admin:ops" carries no kept request`)

	// (j) A request ops really signed, to enrol bob's key for carol,
	// which serve refused: bob's key was enrolled before.
	attack(a.forge(t, domain.CategoryAdmin, "carol", a.ops.actor(), domain.AdminKeyEnrolled{Key: a.bob.pub},
		a.ops.sign(t, "POST", "/admin/admin-keys", `{"name":"carol"}`)), "carol",
		"the admin fold refuses it", "key enrolled before for bob")

	r := verify(t, a.l.Conn, nil)
	checkProblems(t, r, wants...)
	if r.AdminRequests != a.requestsVerified {
		t.Errorf("AdminRequests = %d, want %d: no forged event checks out", r.AdminRequests, a.requestsVerified)
	}
}
