package projections

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
)

var updateModelsSample = flag.Bool("update", false, "rewrite testdata/models-snapshot-v1.bin")

// modelsT0 is when the test history starts.
var modelsT0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// modelsHistory is a log, as a slice of events read back from it, that
// uses every event type the models fold and every part they keep. It is
// the same on every call: the frozen sample is built from its first
// modelsSampleEvents events, so new events go at its end.
type modelsHistory struct {
	t        testing.TB
	events   []domain.Event
	versions map[string]uint64
	random   *rand.ChaCha8 // seals personal data the same way every time
	erasures []string      // users erased, in log order
}

// testID is a well-formed id with prefix, the same for the same i.
func testID(prefix string, i int) string {
	var u ulid.ULID
	u[0], u[1], u[13], u[14], u[15] = 1, byte(len(prefix)), byte(i>>16), byte(i>>8), byte(i)
	return prefix + u.String()
}

var (
	modelsEmailKey = []byte("models test email key, 32 bytes!")
	modelsDataKey  = []byte("models test data key,  32 bytes!")
	modelsIDKey    = []byte("models test identity key 32 byte")
)

// add appends an event of aggregate after its last one, and returns it
// (to change before the next add).
func (h *modelsHistory) add(aggregate, actor string, d domain.EventData) *domain.Event {
	stream := d.EventType()[:strings.IndexByte(d.EventType(), '.')] + "." + aggregate // versions count per category
	h.versions[stream]++
	seq := uint64(len(h.events) + 1)
	h.events = append(h.events, domain.Event{ID: fmt.Sprintf("event-%d", seq), Type: d.EventType(),
		Schema: domain.SchemaFor(d), Aggregate: aggregate, Version: h.versions[stream],
		Time: modelsT0.Add(time.Duration(seq) * time.Minute), Actor: actor, Data: d, Sequence: seq,
		Hash: sha256.Sum256(binary.BigEndian.AppendUint64(nil, seq))})
	return &h.events[len(h.events)-1]
}

func (h *modelsHistory) seal(userID, typ string, schema int, email string) domain.Sealed {
	s, err := domain.SealPersonal(modelsDataKey, userID, typ, schema,
		domain.Personal{Email: email, PasswordHash: "$argon2id$hash-of-" + userID}, h.random)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *modelsHistory) register(userID, email string, role domain.Role) {
	h.add(domain.EmailAggregate(modelsEmailKey, email), userID, domain.EmailReserved{UserID: userID})
	h.add(userID, userID, domain.UserRegistered{Role: role,
		Personal: h.seal(userID, domain.TypeUserRegistered, domain.UserRegisteredSchema, email)})
}

func (h *modelsHistory) erase(userID string) {
	h.add(userID, "admin:root", domain.UserErased{Reason: "asked to"})
	h.erasures = append(h.erasures, userID)
}

// adminKey is the test admin key pair of seed.
func adminKey(seed byte) (domain.PublicKey, ed25519.PrivateKey) {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	priv := ed25519.NewKeyFromSeed(s)
	return domain.PublicKey(priv.Public().(ed25519.PublicKey)), priv
}

// adminRequest is a kept admin request signed by priv.
func adminRequest(pub domain.PublicKey, priv ed25519.PrivateKey) *domain.SignedRequest {
	id := domain.AdminKeyID(pub)
	input := `("@method" "@target-uri");created=1;expires=2;keyid="` + id + `";nonce="0123456789abcdef";alg="ed25519";tag="keyledger-admin-v1"`
	base := `"@method": POST` + "\n" + `"@target-uri": http://x/admin/admin-keys` + "\n" + `"@signature-params": ` + input
	return &domain.SignedRequest{KeyID: id, Input: input, Base: base, Signature: ed25519.Sign(priv, []byte(base))}
}

func newModelsHistory(t testing.TB) *modelsHistory {
	h := &modelsHistory{t: t, versions: map[string]uint64{}, random: rand.NewChaCha8([32]byte{1})}
	at := func(m int) *time.Time { v := modelsT0.Add(time.Duration(m) * time.Minute); return &v }
	u := func(i int) string { return testID(domain.UserIDPrefix, i) }
	key := func(i int) string { return testID(domain.APIKeyPrefix, i) }
	team1, team2 := testID(domain.TeamIDPrefix, 1), testID(domain.TeamIDPrefix, 2)
	sa1, sa2 := testID(domain.ServiceAccountIDPrefix, 1), testID(domain.ServiceAccountIDPrefix, 2)
	tmi := func(i int) string { return testID(domain.TeamInvitationIDPrefix, i) }
	inv1, inv2 := testID(domain.InvitationIDPrefix, 1), testID(domain.InvitationIDPrefix, 2)
	idn1 := domain.IdentityAggregate(modelsIDKey, "https://idp.example", "subject-1")
	idn2 := domain.IdentityAggregate(modelsIDKey, "https://idp.example", "subject-2")
	rootPub, rootPriv := adminKey(1)
	root2Pub, _ := adminKey(2)
	opsPub, opsPriv := adminKey(3)

	// Admins: the bootstrap, then enrolments and a revocation signed by
	// admins.
	h.add("root", domain.ActorBootstrap, domain.AdminKeyEnrolled{Key: rootPub})
	h.add("ops", domain.AdminActor("root"), domain.AdminKeyEnrolled{Key: opsPub, Reason: "on call"}).Request = adminRequest(rootPub, rootPriv)
	h.add("root", domain.AdminActor("root"), domain.AdminKeyEnrolled{Key: root2Pub}).Request = adminRequest(rootPub, rootPriv)

	// Users: sealed and legacy registrations, an admin.
	h.register(u(1), "one@example.com", "")
	h.add(domain.LegacyEmailAggregate("two@example.com"), u(2), domain.EmailReserved{UserID: u(2)})
	h.add(u(2), u(2), domain.UserRegistered{Email: "two@example.com", PasswordHash: "$argon2id$legacy"}).Schema = 1
	h.register(u(3), "three@example.com", domain.RoleAdmin)
	h.register(u(4), "four@example.com", "")

	// Sign-up: verifications and invitations.
	h.add(u(1), "system", domain.VerificationRequested{TokenHash: domain.Hash{1}, ExpiresAt: *at(60)})
	h.add(inv1, "admin:root", domain.InvitationIssued{TokenHash: domain.Hash{2}, EmailBinding: &domain.Hash{3}, ExpiresAt: *at(600)})
	h.add(inv2, "admin:root", domain.InvitationIssued{TokenHash: domain.Hash{4}, ExpiresAt: *at(600)})
	h.add(u(4), "system", domain.VerificationRequested{TokenHash: domain.Hash{5}, ExpiresAt: *at(60)})
	h.add(u(1), u(1), domain.VerificationCompleted{})

	// Identities.
	h.add(idn1, u(4), domain.IdentityLinked{UserID: u(4)})
	h.add(idn2, u(1), domain.IdentityLinked{UserID: u(1)})
	h.add(idn2, u(2), domain.IdentityLinked{UserID: u(2)}) // held by a user who is not erased: stays u(1)'s

	// Keys: plain, scoped with metadata and expiry, limited.
	h.add(key(1), u(1), domain.KeyCreated{UserID: u(1), Name: "plain", SecretHash: domain.Hash{11}, PublicKey: domain.PublicKey{11}})
	h.add(key(2), u(1), domain.KeyCreated{UserID: u(1), Name: "scoped", SecretHash: domain.Hash{12}, PublicKey: domain.PublicKey{12},
		SignedOnly: true, ExpiresAt: at(90), Scopes: []string{"read", "write:*"}, Metadata: []byte(`{"tier": "gold"}`)})
	h.add(key(3), u(1), domain.KeyCreated{UserID: u(1), Name: "limited", SecretHash: domain.Hash{13},
		RateLimit: &domain.RateLimit{Limit: 10, Window: domain.Period(time.Minute)},
		Credits:   &domain.Credits{Remaining: 100, Refill: &domain.Refill{Amount: 50, Interval: domain.Period(time.Hour)}}})
	h.add(key(4), u(2), domain.KeyCreated{UserID: u(2), Name: "legacy user's", SecretHash: domain.Hash{14}})
	h.add(key(5), u(2), domain.KeyCreated{UserID: u(2), SecretHash: domain.Hash{15}})

	// Sessions, roles, state of users.
	h.add(u(1), u(1), domain.UserSessionEnded{TokenID: "token-a", ExpiresAt: *at(200)})
	h.add(u(1), u(1), domain.UserSessionEnded{TokenID: "token-b", ExpiresAt: *at(40)})
	h.add(u(2), "admin:root", domain.UserDisabled{Reason: "abuse"})

	// Teams.
	h.add(team1, u(1), domain.TeamCreated{Name: "team one", Owner: u(1)})
	h.add(team1, u(1), domain.TeamInvitationIssued{Invitation: tmi(1), Role: domain.TeamDeveloper, TokenHash: domain.Hash{21}, ExpiresAt: *at(500)})
	h.add(team1, u(2), domain.TeamMemberJoined{UserID: u(2), Role: domain.TeamDeveloper, Invitation: tmi(1)})
	h.add(team1, u(1), domain.TeamInvitationIssued{Invitation: tmi(2), Role: domain.TeamViewer, TokenHash: domain.Hash{22}, ExpiresAt: *at(45)})
	h.add(team1, u(1), domain.TeamServiceAccountCreated{ServiceAccount: sa1, Name: "ci"})
	h.add(key(6), u(1), domain.KeyCreated{UserID: u(1), Name: "team key", SecretHash: domain.Hash{16}, TeamID: team1,
		Scopes: []string{"deploy"}})
	h.add(key(7), u(1), domain.KeyCreated{UserID: u(1), Name: "ci key", SecretHash: domain.Hash{17}, TeamID: team1, ServiceAccount: sa1,
		RateLimit: &domain.RateLimit{Limit: 5, Window: domain.Period(time.Second)}})
	h.add(team2, u(2), domain.TeamCreated{Name: "team two", Owner: u(2)})
	h.add(key(8), u(2), domain.KeyCreated{UserID: u(2), Name: "team two key", SecretHash: domain.Hash{18}, TeamID: team2})

	// Keys change.
	h.add(key(3), u(1), domain.KeyCreditsAdded{Add: 25, Reason: "bonus"})
	h.add(key(4), u(2), domain.KeySecretRegenerated{SecretHash: domain.Hash{24}, PublicKey: domain.PublicKey{24}, PreviousExpiresAt: at(400)})
	h.add(key(4), u(2), domain.KeyRenamed{Name: "renamed"})
	h.add(key(4), u(2), domain.KeyScopesChanged{Scopes: []string{"admin"}})
	h.add(key(4), u(2), domain.KeyMetadataChanged{Metadata: []byte(`{"a":1}`)})
	h.add(key(4), u(2), domain.KeyExpiryChanged{ExpiresAt: at(1000)})
	h.add(key(5), u(2), domain.KeyDisabled{})
	h.add(key(1), u(1), domain.KeyRevoked{})

	// The admins act; a revoked admin key.
	h.add("root", domain.AdminActor("ops"), domain.AdminKeyRevoked{Key: root2Pub, Reason: "lost"}).Request = adminRequest(opsPub, opsPriv)

	// An erasure, and what it frees: the address, the identity.
	h.erase(u(4))
	h.add(domain.EmailAggregate(modelsEmailKey, "four@example.com"), u(5), domain.EmailReserved{UserID: u(5)})
	h.add(u(5), u(5), domain.UserRegistered{Personal: h.seal(u(5), domain.TypeUserRegistered, domain.UserRegisteredSchema, "four@example.com")})
	h.add(domain.EmailAggregate(modelsEmailKey, "one@example.com"), u(5), domain.EmailReserved{UserID: u(5)}) // u(1) holds it
	h.add(idn1, u(5), domain.IdentityLinked{UserID: u(5)})
	h.add(inv1, u(5), domain.InvitationUsed{UserID: u(5)})

	// More of users, teams and keys after the erasure.
	h.add(u(1), u(1), domain.UserSessionsRevoked{Reason: "logout everywhere"})
	h.add(u(1), u(1), domain.UserSessionEnded{TokenID: "token-c", ExpiresAt: *at(300)})
	h.add(u(1), u(1), domain.UserPasswordChanged{Personal: h.seal(u(1), domain.TypeUserPasswordChanged, 1, "one@example.com")})
	h.add(u(1), u(1), domain.UserSessionEnded{TokenID: "token-d", ExpiresAt: *at(300)})
	h.add(u(2), "admin:root", domain.UserEnabled{Reason: "appeal"})
	h.add(u(3), "admin:root", domain.UserDisabled{Reason: "left"})
	h.add(team2, u(2), domain.TeamInvitationIssued{Invitation: tmi(3), Role: domain.TeamAdmin, TokenHash: domain.Hash{23}, ExpiresAt: *at(900)})
	h.add(team2, u(1), domain.TeamMemberJoined{UserID: u(1), Role: domain.TeamAdmin, Invitation: tmi(3)})
	h.add(team1, u(1), domain.TeamInvitationIssued{Invitation: tmi(4), Role: domain.TeamAdmin, TokenHash: domain.Hash{24}, ExpiresAt: *at(900)}) // tmi(2) expired
	h.add(team1, u(1), domain.TeamMemberRoleChanged{UserID: u(2), Role: domain.TeamAdmin})
	h.add(team1, u(1), domain.TeamServiceAccountDisabled{ServiceAccount: sa1, Reason: "rotating"})
	h.add(team1, u(1), domain.TeamServiceAccountEnabled{ServiceAccount: sa1})
	h.add(team1, u(1), domain.TeamServiceAccountCreated{ServiceAccount: sa2, Name: "old"})
	h.add(team1, u(1), domain.TeamServiceAccountDeleted{ServiceAccount: sa2})
	h.add(team1, u(1), domain.TeamMemberRemoved{UserID: u(2), Reason: "moved"})
	h.add(team1, "admin:root", domain.TeamDisabled{Reason: "audit"})
	h.add(team1, "admin:root", domain.TeamEnabled{})
	h.add(team1, "admin:root", domain.TeamOwnershipTransferred{UserID: u(3), Reason: "u1 left"})
	h.add(key(3), u(1), domain.KeyRateLimitChanged{RateLimit: &domain.RateLimit{Limit: 100, Window: domain.Period(time.Hour)}})
	h.add(key(3), u(1), domain.KeyCreditsChanged{Credits: &domain.Credits{Remaining: 7}})
	h.add(key(5), u(2), domain.KeyEnabled{})
	h.add(key(6), u(1), domain.KeyDisabled{})
	h.add(key(7), u(1), domain.KeyRevoked{})
	h.add(key(9), u(5), domain.KeyCreated{UserID: u(5), SecretHash: domain.Hash{19}})
	h.add(key(2), u(1), domain.KeyRateLimitChanged{})
	h.add(u(1), u(1), domain.UserSessionEnded{TokenID: "token-e", ExpiresAt: *at(400)})
	h.erase(u(5))
	return h
}

// applyTo applies events to every model, in the projector's order.
func applyTo(t testing.TB, m Models, events []domain.Event) {
	t.Helper()
	for _, e := range events {
		for _, model := range m.List() {
			if err := model.Apply(e); err != nil {
				t.Fatalf("apply %s %s v%d (seq %d): %v", e.Type, e.Aggregate, e.Version, e.Sequence, err)
			}
		}
	}
}

// dumpKey prints a key, what its pointers point to included.
func dumpKey(k domain.Key) string {
	rl, cr := k.RateLimit, k.Credits
	k.RateLimit, k.Credits = nil, nil
	s := fmt.Sprintf("%+v", k)
	if rl != nil {
		s += fmt.Sprintf(" rate=%+v", *rl)
	}
	if cr != nil {
		c := *cr
		c.Refill = nil
		s += fmt.Sprintf(" credits=%+v", c)
		if cr.Refill != nil {
			s += fmt.Sprintf(" refill=%+v", *cr.Refill)
		}
	}
	return s
}

// dumpModels prints everything the models hold, maps sorted (fmt sorts
// them, and prints a nil map as an empty one), pointers followed.
func dumpModels(m Models) string {
	var b strings.Builder
	keys := make(map[string]string, len(m.Keys.keys))
	for id, e := range m.Keys.keys {
		keys[id] = fmt.Sprintf("%s seq=%d", dumpKey(e.key), e.seq)
	}
	fmt.Fprintf(&b, "keys %v\nby user %v\nby team %v\n", keys, m.Keys.byUser, m.Keys.byTeam)
	users := make(map[string]domain.User, len(m.Users.byID))
	for id, u := range m.Users.byID {
		users[id] = *u
	}
	fmt.Fprintf(&b, "users %+v\nseqs %v\nemails %+v\n", users, m.Users.seqs, m.Users.emails)
	admins := make(map[string]domain.Admin, len(m.Admins.byName))
	for name, a := range m.Admins.byName {
		admins[name] = *a
	}
	fmt.Fprintf(&b, "admins %+v\nseqs %v\nkey ids %v\nknown %v\nactive %d\n", admins, m.Admins.seqs, m.Admins.keys,
		m.Admins.known, m.Admins.active)
	fmt.Fprintf(&b, "verifications %+v\nseqs %v\n", m.Verifications.byID, m.Verifications.seqs)
	fmt.Fprintf(&b, "invitations %+v\nseqs %v\n", m.Invitations.byID, m.Invitations.seqs)
	fmt.Fprintf(&b, "identities %+v\n", m.Identities.byID)
	teams := make(map[string]teamEntry, len(m.Teams.teams))
	for id, e := range m.Teams.teams {
		teams[id] = *e
	}
	fmt.Fprintf(&b, "teams %+v\nby user %v\ninvitations %v\norder %v\n", teams, m.Teams.byUser, m.Teams.invitations,
		m.Teams.order)
	return b.String()
}

// modelProbes are the ids a history names, to ask the models about.
type modelProbes struct {
	users, keys, teams, emails, identities, verifications, invitations, admins, teamInvitations, adminKeyIDs []string
	adminKeys                                                                                                []domain.PublicKey
}

func probesOf(events []domain.Event) modelProbes {
	sets := map[string]map[string]bool{}
	add := func(kind, id string) {
		if sets[kind] == nil {
			sets[kind] = map[string]bool{"missing": true}
		}
		sets[kind][id] = true
	}
	var p modelProbes
	for _, e := range events {
		add(e.Category(), e.Aggregate)
		switch d := e.Data.(type) {
		case domain.KeyCreated:
			add(domain.CategoryUser, d.UserID)
		case domain.TeamInvitationIssued:
			add("team invitation", d.Invitation)
		case domain.TeamMemberJoined:
			add(domain.CategoryUser, d.UserID)
		case domain.TeamOwnershipTransferred:
			add(domain.CategoryUser, d.UserID)
		case domain.AdminKeyEnrolled:
			add("admin key id", domain.AdminKeyID(d.Key))
			p.adminKeys = append(p.adminKeys, d.Key)
		}
	}
	sorted := func(kind string) []string {
		out := make([]string, 0, len(sets[kind]))
		for id := range sets[kind] {
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}
	p.users, p.keys, p.teams = sorted(domain.CategoryUser), sorted(domain.CategoryKey), sorted(domain.CategoryTeam)
	p.emails, p.identities = sorted(domain.CategoryEmail), sorted(domain.CategoryIdentity)
	p.verifications, p.invitations = sorted(domain.CategoryVerification), sorted(domain.CategoryInvitation)
	p.admins, p.teamInvitations, p.adminKeyIDs = sorted(domain.CategoryAdmin), sorted("team invitation"), sorted("admin key id")
	p.adminKeys = append(p.adminKeys, domain.PublicKey{0xee})
	return p
}

// answers asks the models every query of their public API about p's ids.
func answers(t testing.TB, m Models, p modelProbes) string {
	t.Helper()
	var b strings.Builder
	pages := func(what string, list func(limit int, cursor string) ([]domain.Key, string, error)) {
		cursor := ""
		for range 1 << 20 {
			page, next, err := list(2, cursor)
			if err != nil {
				t.Fatalf("%s: cursor %q: %v", what, cursor, err)
			}
			fmt.Fprintf(&b, "%s page after %q:", what, cursor)
			for _, k := range page {
				fmt.Fprintf(&b, " %s", dumpKey(k))
			}
			fmt.Fprintf(&b, " next %q\n", next)
			if next == "" {
				return
			}
			cursor = next
		}
		t.Fatalf("%s: no last page", what)
	}
	fmt.Fprintf(&b, "keys %d\n", m.Keys.Len())
	for _, id := range p.keys {
		k, seq, ok := m.Keys.Get(id)
		fmt.Fprintf(&b, "key %s: %s %d %v\n", id, dumpKey(k), seq, ok)
	}
	for _, id := range p.users {
		fmt.Fprintf(&b, "user %s: active keys %d\n", id, m.Keys.ActiveCount(id))
		pages("keys of "+id, func(limit int, cursor string) ([]domain.Key, string, error) {
			return m.Keys.ListByUser(id, limit, cursor)
		})
		u, seq, ok := m.Users.Get(id)
		fmt.Fprintf(&b, "user %s: %+v %d %v\n", id, u, seq, ok)
		u, ok = m.Users.ByID(id)
		fmt.Fprintf(&b, "user %s by id: %+v %v\n", id, u, ok)
		v, seq := m.Verifications.Get(id)
		fmt.Fprintf(&b, "verification of %s: %+v %d pending %v\n", id, v, seq, m.Verifications.Pending(id))
		fmt.Fprintf(&b, "teams of %s: %+v\n", id, m.Teams.OfUser(id))
	}
	list := m.Users.List()
	slices.SortFunc(list, func(a, b domain.User) int { return strings.Compare(a.ID, b.ID) })
	fmt.Fprintf(&b, "users %+v\n", list)
	for _, agg := range p.emails {
		state, seq, holder := m.Users.Reservation(agg)
		u, ok := m.Users.ByEmailKey(agg)
		fmt.Fprintf(&b, "email %s: %+v %d %q, by email %s %v\n", agg, state, seq, holder, u.ID, ok)
	}
	u, ok := m.Users.ByEmailKey(p.emails...)
	fmt.Fprintf(&b, "by any email: %s %v\n", u.ID, ok)
	for _, name := range p.admins {
		a, seq, ok := m.Admins.Get(name)
		fmt.Fprintf(&b, "admin %s: %+v %d %v\n", name, a, seq, ok)
	}
	for _, id := range p.adminKeyIDs {
		name, key, ok := m.Admins.Lookup(id)
		fmt.Fprintf(&b, "admin key %s: %s %x %v\n", id, name, key, ok)
	}
	for _, k := range p.adminKeys {
		name, ok := m.Admins.KeyOwner(k)
		fmt.Fprintf(&b, "admin key %x: owner %s %v\n", k, name, ok)
	}
	fmt.Fprintf(&b, "admin keys active %d, admins %+v\n", m.Admins.ActiveKeys(), m.Admins.List())
	for _, id := range p.invitations {
		i, seq := m.Invitations.Get(id)
		fmt.Fprintf(&b, "invitation %s: %+v %d\n", id, i, seq)
	}
	for _, agg := range p.identities {
		state, seq, holder := m.Identities.Get(agg)
		fmt.Fprintf(&b, "identity %s: %+v %d %q\n", agg, state, seq, holder)
	}
	for _, id := range p.teams {
		team, seq, ok := m.Teams.Get(id)
		fmt.Fprintf(&b, "team %s: %+v %d %v, active keys %d\n", id, team, seq, ok, m.Keys.TeamActiveCount(id))
		pages("keys of "+id, func(limit int, cursor string) ([]domain.Key, string, error) {
			return m.Keys.ListByTeam(id, limit, cursor)
		})
	}
	for _, id := range p.teamInvitations {
		fmt.Fprintf(&b, "team invitation %s: team %q\n", id, m.Teams.ByInvitation(id))
	}
	fmt.Fprintf(&b, "teams %+v\n", m.Teams.All())
	return b.String()
}

// roundTrip writes m's snapshot and reads it back with the options given.
func roundTrip(t testing.TB, m Models, opts ...UsersOption) Models {
	t.Helper()
	got, err := ReadModelsSnapshot(m.AppendSnapshot(nil), opts...)
	if err != nil {
		t.Fatalf("ReadModelsSnapshot: %v", err)
	}
	return got
}

// TestModelsSnapshot_Agreement: models read from a snapshot taken after
// any event of a history hold what the originals held, answer every query
// as they do, and, fed the rest of the history, end where models fed the
// whole history from the start end: the same state, the same answers, the
// same erasures reported.
func TestModelsSnapshot_Agreement(t *testing.T) {
	h := newModelsHistory(t)
	probes := probesOf(h.events)
	var erasedFull []string
	full := NewModels(OnErase(func(id string) { erasedFull = append(erasedFull, id) }))
	applyTo(t, full, h.events)
	if !slices.Equal(erasedFull, h.erasures) {
		t.Fatalf("erasures reported from the start: got %v, want %v", erasedFull, h.erasures)
	}
	wantDump, wantAnswers := dumpModels(full), answers(t, full, probes)
	checkCoverage(t, full)

	for cut := range len(h.events) + 1 {
		before := NewModels()
		applyTo(t, before, h.events[:cut])
		var erased []string
		got := roundTrip(t, before, OnErase(func(id string) { erased = append(erased, id) }))
		if d, w := dumpModels(got), dumpModels(before); d != w {
			t.Fatalf("after %d events: read back:\n%s\nwant:\n%s", cut, d, w)
		}
		if a, w := answers(t, got, probes), answers(t, before, probes); a != w {
			t.Fatalf("after %d events: read back answers:\n%s\nwant:\n%s", cut, a, w)
		}
		applyTo(t, got, h.events[cut:])
		if d := dumpModels(got); d != wantDump {
			t.Fatalf("snapshot after %d events, then the rest:\n%s\nwant:\n%s", cut, d, wantDump)
		}
		if a := answers(t, got, probes); a != wantAnswers {
			t.Fatalf("snapshot after %d events, then the rest: answers\n%s\nwant:\n%s", cut, a, wantAnswers)
		}
		var wantErased []string
		for _, e := range h.events[cut:] {
			if e.Type == domain.TypeUserErased {
				wantErased = append(wantErased, e.Aggregate)
			}
		}
		if !slices.Equal(erased, wantErased) {
			t.Fatalf("snapshot after %d events: OnErase got %v, want %v", cut, erased, wantErased)
		}
	}
}

// checkCoverage fails unless the models of the whole history hold every
// kind of thing the codec writes, so that the agreement means something.
func checkCoverage(t *testing.T, m Models) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range m.Keys.keys {
		k := e.key
		seen["signed only"] = seen["signed only"] || k.SignedOnly
		seen["expiry"] = seen["expiry"] || !k.ExpiresAt.IsZero()
		seen["regenerated"] = seen["regenerated"] || !k.SecretRegeneratedAt.IsZero()
		seen["previous secret"] = seen["previous secret"] || !k.PreviousExpiresAt.IsZero()
		seen["revoked"] = seen["revoked"] || !k.RevokedAt.IsZero()
		seen["disabled key"] = seen["disabled key"] || !k.DisabledAt.IsZero()
		seen["scopes"] = seen["scopes"] || k.Scopes != ""
		seen["metadata"] = seen["metadata"] || k.Metadata != ""
		seen["rate limit"] = seen["rate limit"] || k.RateLimit != nil
		seen["credits"] = seen["credits"] || k.Credits != nil
		seen["credits without refill"] = seen["credits without refill"] || (k.Credits != nil && k.Credits.Refill == nil)
		seen["service account key"] = seen["service account key"] || k.ServiceAccount != ""
	}
	for _, u := range m.Users.byID {
		seen["ended sessions"] = seen["ended sessions"] || len(u.EndedSessions) > 1
		seen["sealed"] = seen["sealed"] || u.Personal != ""
		seen["legacy"] = seen["legacy"] || u.PasswordHash != ""
		seen["erased"] = seen["erased"] || u.Erased
		seen["disabled user"] = seen["disabled user"] || (u.Disabled && !u.Erased)
		seen["admin role"] = seen["admin role"] || u.Role == domain.RoleAdmin
	}
	for _, e := range m.Teams.teams {
		seen["members"] = seen["members"] || len(e.team.Members) > 1
		seen["open invitations"] = seen["open invitations"] || len(e.team.Invitations) > 0
		seen["service accounts"] = seen["service accounts"] || len(e.team.ServiceAccounts) > 1
	}
	seen["teams of users"] = len(m.Teams.byUser) > 1
	seen["revoked admin key"] = m.Admins.active < len(m.Admins.keys)
	seen["used invitation"] = m.Invitations.byID[testID(domain.InvitationIDPrefix, 1)].UsedBy != ""
	seen["pending verification"] = m.Verifications.byID[testID(domain.UserIDPrefix, 4)].Pending
	seen["team keys"] = len(m.Keys.byTeam) > 1
	for what, ok := range seen {
		if !ok {
			t.Errorf("the test history has no %s", what)
		}
	}
}

// TestModelsSnapshot_TeamGoesOn: a team read back with no open invitation
// and no other member (empty maps) takes invitations, members and service
// accounts: Team.Apply writes into clones of its maps, which a nil map
// read back would make panic.
func TestModelsSnapshot_TeamGoesOn(t *testing.T) {
	team, owner, joiner := testID(domain.TeamIDPrefix, 7), testID(domain.UserIDPrefix, 7), testID(domain.UserIDPrefix, 8)
	ev := func(v uint64, d domain.EventData) domain.Event {
		return domain.Event{Type: d.EventType(), Schema: 1, Aggregate: team, Version: v, Time: modelsT0, Actor: owner,
			Data: d, Sequence: v, Hash: domain.Hash{byte(v)}}
	}
	m := NewModels()
	applyTo(t, m, []domain.Event{ev(1, domain.TeamCreated{Name: "alone", Owner: owner})})
	got := roundTrip(t, m)
	inv := testID(domain.TeamInvitationIDPrefix, 7)
	applyTo(t, got, []domain.Event{
		ev(2, domain.TeamInvitationIssued{Invitation: inv, Role: domain.TeamViewer, ExpiresAt: modelsT0.Add(time.Hour)}),
		ev(3, domain.TeamMemberJoined{UserID: joiner, Role: domain.TeamViewer, Invitation: inv}),
		ev(4, domain.TeamServiceAccountCreated{ServiceAccount: testID(domain.ServiceAccountIDPrefix, 7), Name: "bot"}),
	})
	if teams := got.Teams.OfUser(joiner); len(teams) != 1 || teams[0].ID != team {
		t.Errorf("teams of the joiner: got %+v", teams)
	}
	if tm, _, _ := got.Teams.Get(team); len(tm.ServiceAccounts) != 1 || len(tm.Members) != 2 {
		t.Errorf("team after the events: got %+v", tm)
	}

	// A team with no member left takes an owner again.
	applyTo(t, got, []domain.Event{ev(5, domain.TeamMemberRemoved{UserID: owner}), ev(6, domain.TeamMemberRemoved{UserID: joiner})})
	got = roundTrip(t, got)
	applyTo(t, got, []domain.Event{ev(7, domain.TeamOwnershipTransferred{UserID: joiner})})
	if teams := got.Teams.OfUser(joiner); len(teams) != 1 || teams[0].Members[joiner].Role != domain.TeamOwner {
		t.Errorf("teams of the new owner: got %+v", teams)
	}
}

// TestModelsSnapshot_WhileServing: a snapshot is written while the
// models answer queries (and, outside Projector.Freeze, even while they
// apply events): each model is copied under its own lock, so the race
// detector finds nothing and each model read back is whole.
func TestModelsSnapshot_WhileServing(t *testing.T) {
	h := newModelsHistory(t)
	probes := probesOf(h.events)
	m := NewModels()
	half := len(h.events) / 2
	applyTo(t, m, h.events[:half])
	applied := make(chan error, 1)
	go func() {
		for _, e := range h.events[half:] {
			for _, model := range m.List() {
				if err := model.Apply(e); err != nil {
					applied <- fmt.Errorf("apply %s %s: %w", e.Type, e.Aggregate, err)
					return
				}
			}
		}
		applied <- nil
	}()
	queried := make(chan int, 1)
	go func() {
		n := 0
		for range 5 {
			for _, id := range probes.users {
				n += m.Keys.ActiveCount(id) + len(m.Teams.OfUser(id))
				_, _, _ = m.Users.Get(id)
			}
			for _, id := range probes.adminKeyIDs {
				_, _, _ = m.Admins.Lookup(id)
			}
			n += len(m.Teams.All())
		}
		queried <- n
	}()
	for range 5 {
		if _, err := ReadModelsSnapshot(m.AppendSnapshot(nil)); err != nil {
			t.Fatalf("a snapshot written while serving: %v", err)
		}
	}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	if n := <-queried; n == 0 {
		t.Fatal("the queries found nothing")
	}
	if d, w := dumpModels(roundTrip(t, m)), dumpModels(m); d != w {
		t.Fatalf("read back:\n%s\nwant:\n%s", d, w)
	}
}

// TestModelsSnapshot_KnowsEveryField: the codec writes every field of the
// types it carries. A failure here means a field was added: write it in
// the codec (models_snapshot.go), bump ModelsSnapshotVersion, and count it.
func TestModelsSnapshot_KnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		typ   reflect.Type
		known int
	}{
		{reflect.TypeFor[domain.Key](), keyFields},
		{reflect.TypeFor[domain.RateLimit](), rateLimitFields},
		{reflect.TypeFor[domain.CreditPolicy](), creditPolicyFields},
		{reflect.TypeFor[domain.Refill](), refillFields},
		{reflect.TypeFor[domain.User](), userFields},
		{reflect.TypeFor[domain.Admin](), adminFields},
		{reflect.TypeFor[domain.AdminKey](), adminKeyFields},
		{reflect.TypeFor[domain.Verification](), verificationFields},
		{reflect.TypeFor[domain.Invitation](), invitationFields},
		{reflect.TypeFor[domain.Team](), teamFields},
		{reflect.TypeFor[domain.Member](), memberFields},
		{reflect.TypeFor[domain.TeamInvitation](), teamInvitationFields},
		{reflect.TypeFor[domain.ServiceAccount](), serviceAccountFields},
		{reflect.TypeFor[domain.Reservation](), reservationFields},
		{reflect.TypeFor[Keys](), keysModelFields},
		{reflect.TypeFor[keyEntry](), keyEntryFields},
		{reflect.TypeFor[Users](), usersModelFields},
		{reflect.TypeFor[reservation](), reservationEntryFields},
		{reflect.TypeFor[Admins](), adminsModelFields},
		{reflect.TypeFor[Verifications](), verificationsModelFields},
		{reflect.TypeFor[Invitations](), invitationsModelFields},
		{reflect.TypeFor[Identities](), identitiesModelFields},
		{reflect.TypeFor[Teams](), teamsModelFields},
		{reflect.TypeFor[teamEntry](), teamEntryFields},
	} {
		if got := c.typ.NumField(); got != c.known {
			t.Errorf("%s has %d fields, the models snapshot knows %d: write the new field in models_snapshot.go "+
				"(AppendSnapshot and ReadModelsSnapshot), count it there and bump ModelsSnapshotVersion", c.typ, got, c.known)
		}
	}
}

// modelsSample is the frozen snapshot of format version 1 of the first
// modelsSampleEvents events of the test history (add events to the
// history after them).
var modelsSample = filepath.Join("testdata", "models-snapshot-v1.bin")

const modelsSampleEvents = 78

// TestModelsSnapshot_Version1: the frozen snapshot of format version 1
// still reads, as the models of the test history. A change to the format
// needs a new version (and a sample of it), never a change to this one.
func TestModelsSnapshot_Version1(t *testing.T) {
	m := NewModels()
	applyTo(t, m, newModelsHistory(t).events[:modelsSampleEvents])
	if *updateModelsSample {
		if err := os.WriteFile(modelsSample, m.AppendSnapshot(nil), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(modelsSample)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadModelsSnapshot(b)
	if err != nil {
		t.Fatalf("the version 1 sample: %v", err)
	}
	if d, w := dumpModels(got), dumpModels(m); d != w {
		t.Fatalf("the version 1 sample reads as:\n%s\nwant:\n%s", d, w)
	}
	if again := m.AppendSnapshot(nil); len(again) != len(b) {
		t.Errorf("AppendSnapshot writes %d bytes, the version 1 sample has %d: a format change needs a new version",
			len(again), len(b))
	}
}

// refused fails unless b is refused with ErrMalformedSnapshot, and returns
// the error.
func refused(t *testing.T, what string, b []byte) error {
	t.Helper()
	_, err := ReadModelsSnapshot(b)
	if !errors.Is(err, ErrMalformedSnapshot) {
		t.Errorf("%s: got %v, want ErrMalformedSnapshot", what, err)
	}
	return err
}

// TestReadModelsSnapshot_Malformed: truncations at every length, trailing
// bytes, other magics and versions, counts the input cannot hold and bad
// values are refused, never a panic.
func TestReadModelsSnapshot_Malformed(t *testing.T) {
	m := NewModels()
	applyTo(t, m, newModelsHistory(t).events)
	b := m.AppendSnapshot(nil)
	for n := range len(b) {
		if _, err := ReadModelsSnapshot(b[:n]); !errors.Is(err, ErrMalformedSnapshot) {
			t.Fatalf("truncated to %d of %d bytes: got %v, want ErrMalformedSnapshot", n, len(b), err)
		}
	}
	refused(t, "a trailing byte", append(slices.Clone(b), 0))
	refused(t, "another magic", append([]byte("KLSNAP\x00\x01"), b[8:]...))
	for _, v := range []uint16{0, 2, 0xffff} {
		c := slices.Clone(b)
		binary.BigEndian.PutUint16(c[8:], v)
		if err := refused(t, fmt.Sprintf("version %d", v), c); err != nil && !strings.Contains(err.Error(), "version") {
			t.Errorf("version %d: got %v, want it to name the version", v, err)
		}
	}
	header := []byte(modelsMagic + "\x00\x01")
	huge := binary.AppendUvarint(nil, 1<<62)
	refused(t, "a huge key count", append(slices.Clone(header), huge...))
	refused(t, "a key count beyond the input", append(slices.Clone(header), append(binary.AppendUvarint(nil, 3), make([]byte, 300)...)...))
	empty := NewModels().AppendSnapshot(nil)
	if _, err := ReadModelsSnapshot(empty); err != nil {
		t.Fatalf("empty models: %v", err)
	}
	// The users' count is the 4th byte after the header (no keys, no lists).
	c := slices.Clone(empty)
	c = append(c[:len(header)+3], append(huge, c[len(header)+4:]...)...)
	refused(t, "a huge user count", c)
	refused(t, "a bad count varint", append(slices.Clone(header), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))

	// One key, then bytes changed where its flag and time are.
	one := NewModels()
	apiKey, user := testID(domain.APIKeyPrefix, 1), testID(domain.UserIDPrefix, 1)
	applyTo(t, one, []domain.Event{{Type: domain.TypeKeyCreated, Schema: domain.KeyPolicySchema, Aggregate: apiKey, Version: 1,
		Time: modelsT0, Actor: user, Data: domain.KeyCreated{UserID: user, Name: "n", SecretHash: domain.Hash{1}}, Sequence: 1}})
	ob := one.AppendSnapshot(nil)
	signedOnly := len(header) + 3 + len(appendString(nil, apiKey)) + len(appendString(nil, user)) + len(appendString(nil, "n")) + 64
	created := signedOnly + 1
	limits := created + 13 + 4 + 2 + 33 // after created, four zero times, no scopes nor metadata, the previous secret
	if ob[signedOnly] != 0 || ob[created] != 1 || ob[limits] != 0 || binary.BigEndian.Uint64(ob[limits+3:]) != 1 {
		t.Fatalf("the key's layout moved: flag %d, time tag %d, limits %d, version %d", ob[signedOnly], ob[created],
			ob[limits], binary.BigEndian.Uint64(ob[limits+3:]))
	}
	for what, change := range map[string]func(c []byte){
		"a flag of 2":              func(c []byte) { c[signedOnly] = 2 },
		"a time tag of 2":          func(c []byte) { c[created] = 2 },
		"a second of 1e9 ns":       func(c []byte) { binary.BigEndian.PutUint32(c[created+9:], 1e9) },
		"a list of no keys":        func(c []byte) { c[len(header)+2] = 0 },
		"two users' lists":         func(c []byte) { c[len(header)+1] = 2 },
		"limits flags 0x08":        func(c []byte) { c[limits] = 0x08 },
		"a refill without credits": func(c []byte) { c[limits] = limRefill },
	} {
		c := slices.Clone(ob)
		change(c)
		refused(t, what, c)
	}
}

// TestReadModelsSnapshot_Inconsistent: a snapshot whose parts disagree is
// refused: an admin key count of zero beside an active key would let a
// writer with the ledger's key enrol a "bootstrap" admin; a key id, a
// user's team or an open invitation naming nothing would make queries
// fail; a key in the wrong list or twice, a team twice, too many ended
// sessions.
func TestReadModelsSnapshot_Inconsistent(t *testing.T) {
	for what, spoil := range map[string]func(m Models){
		"no active admin key beside one": func(m Models) { m.Admins.active = 0 },
		"an admin key id of nobody":      func(m Models) { m.Admins.keys["key-of-nobody"] = "nobody" },
		"an admin key id moved":          func(m Models) { m.Admins.keys[domain.AdminKeyID(mustAdminKey(1))] = "ops" },
		"a known admin key moved":        func(m Models) { m.Admins.known[mustAdminKey(1)] = "ops" },
		"a user in a team that is not": func(m Models) {
			m.Teams.byUser["user-x"] = []string{"team-x"}
		},
		"a user in no team": func(m Models) { m.Teams.byUser["user-x"] = []string{} },
		"a user in a team not a member": func(m Models) {
			m.Teams.byUser["user-x"] = []string{m.Teams.order[0]}
		},
		"a member not in the team's list": func(m Models) {
			delete(m.Teams.byUser, testID(domain.UserIDPrefix, 3))
		},
		"a member in a team twice": func(m Models) {
			user := testID(domain.UserIDPrefix, 1)
			m.Teams.byUser[user] = []string{m.Teams.byUser[user][0], m.Teams.byUser[user][0]} // in place of the other
		},
		"a list of no keys": func(m Models) { m.Keys.byUser["user-x"] = []string{} },
		"a team's key in a user's list": func(m Models) {
			m.Keys.keys[m.Keys.byUser[testID(domain.UserIDPrefix, 1)][0]].key.TeamID = "team-x"
		},
		"an invitation to a team that is not": func(m Models) {
			m.Teams.invitations["tmi-x"] = "team-x"
		},
		"a team twice": func(m Models) { m.Teams.order = append(m.Teams.order, m.Teams.order[0]) },
		"a key in the wrong list": func(m Models) {
			for owner, ids := range m.Keys.byTeam {
				m.Keys.byUser[owner] = ids
				delete(m.Keys.byTeam, owner)
				return
			}
		},
		"a key in two lists": func(m Models) {
			for owner, ids := range m.Keys.byUser {
				m.Keys.byUser[owner+"-copy"] = ids
				return
			}
		},
		"a key of another user in a user's list": func(m Models) {
			one, two := testID(domain.UserIDPrefix, 1), testID(domain.UserIDPrefix, 2)
			m.Keys.byUser[one] = append(slices.Clone(m.Keys.byUser[one]), m.Keys.byUser[two][0])
			m.Keys.byUser[two] = m.Keys.byUser[two][1:]
		},
		"a key twice in a list": func(m Models) {
			ids := slices.Clone(m.Keys.byUser[testID(domain.UserIDPrefix, 1)])
			ids[1] = ids[0]
			m.Keys.byUser[testID(domain.UserIDPrefix, 1)] = ids
		},
		"a key in no list": func(m Models) {
			two := testID(domain.UserIDPrefix, 2)
			m.Keys.byUser[two] = m.Keys.byUser[two][1:]
		},
		"too many ended sessions": func(m Models) {
			u := m.Users.byID[testID(domain.UserIDPrefix, 1)]
			u.EndedSessions = map[string]time.Time{}
			for i := range domain.MaxEndedSessions + 1 {
				u.EndedSessions[fmt.Sprint("token-", i)] = modelsT0
			}
		},
	} {
		m := NewModels()
		applyTo(t, m, newModelsHistory(t).events)
		if _, err := ReadModelsSnapshot(m.AppendSnapshot(nil)); err != nil {
			t.Fatalf("%s: before: %v", what, err)
		}
		spoil(m)
		refused(t, what, m.AppendSnapshot(nil))
	}
}

func mustAdminKey(seed byte) domain.PublicKey {
	pub, _ := adminKey(seed)
	return pub
}

// FuzzReadModelsSnapshot: a snapshot's bytes are untrusted until
// verified. ReadModelsSnapshot never panics; what it accepts answers
// every query without failing, and writes a snapshot that reads back to
// the same models.
func FuzzReadModelsSnapshot(f *testing.F) {
	m := NewModels()
	applyTo(f, m, newModelsHistory(f).events)
	b := m.AppendSnapshot(nil)
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(NewModels().AppendSnapshot(nil))
	f.Add([]byte{})
	f.Add([]byte(modelsMagic + "\x00\x01"))
	f.Add(append([]byte(modelsMagic+"\x00\x01"), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f))
	f.Add([]byte("garbage, not a snapshot at all"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadModelsSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedSnapshot) {
				t.Fatalf("got %v, want ErrMalformedSnapshot", err)
			}
			return
		}
		var p modelProbes
		for k := range m.Admins.known {
			p.adminKeys = append(p.adminKeys, k)
		}
		for id := range m.Keys.keys {
			p.keys = append(p.keys, id)
		}
		for _, lists := range []map[string][]string{m.Keys.byUser, m.Teams.byUser} {
			for id := range lists {
				p.users = append(p.users, id)
			}
		}
		for id := range m.Keys.byTeam {
			p.teams = append(p.teams, id)
		}
		p.teams = append(p.teams, m.Teams.order...)
		for id := range m.Admins.keys {
			p.adminKeyIDs = append(p.adminKeyIDs, id)
		}
		for id := range m.Teams.invitations {
			p.teamInvitations = append(p.teamInvitations, id)
		}
		_ = answers(t, m, p) // fails on a query that cannot be answered
		again, err := ReadModelsSnapshot(m.AppendSnapshot(nil))
		if err != nil {
			t.Fatalf("the snapshot of what was read: %v", err)
		}
		if d, w := dumpModels(again), dumpModels(m); d != w {
			t.Fatalf("read back:\n%s\nwant:\n%s", d, w)
		}
	})
}

// benchModels are models of n keys: users with three keys each, every
// tenth key a team's, a hundred teams of ten members.
func benchModels(b *testing.B, n int) Models {
	m := NewModels()
	seq := uint64(0)
	apply := func(agg string, v uint64, d domain.EventData) {
		seq++
		e := domain.Event{Type: d.EventType(), Schema: domain.SchemaFor(d), Aggregate: agg, Version: v,
			Time: modelsT0.Add(time.Duration(seq) * time.Second), Actor: "system", Data: d, Sequence: seq,
			Hash: domain.Hash{byte(seq), byte(seq >> 8), byte(seq >> 16)}}
		for _, model := range m.List() {
			if err := model.Apply(e); err != nil {
				b.Fatal(err)
			}
		}
	}
	users := n / 3
	sealed := domain.Sealed(bytes.Repeat([]byte{0xa5}, 124)) // an address and a password hash, sealed
	for i := range users {
		id := testID(domain.UserIDPrefix, i)
		apply(domain.EmailAggregate(modelsEmailKey, fmt.Sprint("user", i, "@example.com")), 1, domain.EmailReserved{UserID: id})
		apply(id, 1, domain.UserRegistered{Personal: sealed})
	}
	teams := 100
	for i := range teams {
		id := testID(domain.TeamIDPrefix, i)
		apply(id, 1, domain.TeamCreated{Name: fmt.Sprint("team ", i), Owner: testID(domain.UserIDPrefix, i*10)})
		for j := 1; j < 10; j++ {
			inv := testID(domain.TeamInvitationIDPrefix, i*10+j)
			apply(id, uint64(2*j), domain.TeamInvitationIssued{Invitation: inv, Role: domain.TeamDeveloper,
				ExpiresAt: modelsT0.Add(1000 * time.Hour)})
			apply(id, uint64(2*j+1), domain.TeamMemberJoined{UserID: testID(domain.UserIDPrefix, i*10+j),
				Role: domain.TeamDeveloper, Invitation: inv})
		}
	}
	for i := range n {
		c := domain.KeyCreated{UserID: testID(domain.UserIDPrefix, (i/3)%users), Name: fmt.Sprint("key ", i),
			SecretHash: sha256.Sum256([]byte(fmt.Sprint(i))), PublicKey: domain.PublicKey{byte(i), byte(i >> 8)},
			Scopes: []string{"read", "write"}}
		if i%10 == 0 {
			c.TeamID = testID(domain.TeamIDPrefix, i%teams)
		}
		if i%7 == 0 {
			c.RateLimit = &domain.RateLimit{Limit: 100, Window: domain.Period(time.Minute)}
		}
		apply(testID(domain.APIKeyPrefix, i), 1, c)
	}
	return m
}

// BenchmarkModelsSnapshot: writing and reading the models of 100,000
// keys (what serve does to save and to start), per key.
func BenchmarkModelsSnapshot(b *testing.B) {
	const n = 100_000
	m := benchModels(b, n)
	snap := m.AppendSnapshot(nil)
	b.Run("Encode", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = m.AppendSnapshot(nil)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
		b.ReportMetric(float64(len(buf))/n, "B/key")
	})
	b.Run("Decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := ReadModelsSnapshot(snap); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
		b.ReportMetric(float64(len(snap))/n, "B/key")
	})
}
