package domain_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sampleEvents holds one event of every type, with every field set.
func sampleEvents() []domain.Event {
	at := time.Date(2026, 11, 1, 10, 30, 15, 123456789, time.UTC)
	expires := time.Date(2027, 11, 1, 0, 0, 0, 0, time.UTC)
	email := "alice@example.com"
	return []domain.Event{
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2A", Type: domain.TypeUserRegistered, Schema: 2, Aggregate: alice,
			Version: 1, Time: at, Actor: alice,
			Data: domain.UserRegistered{Personal: sampleSealed(), Role: domain.RoleAdmin},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2B", Type: domain.TypeEmailReserved, Schema: 1,
			Aggregate: domain.LegacyEmailAggregate(email), Version: 1, Time: at, Actor: alice,
			Data: domain.EmailReserved{UserID: alice},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2C", Type: domain.TypeKeyCreated, Schema: 3, Aggregate: apiKey,
			Version: 1, Time: at, Actor: alice,
			Data: domain.KeyCreated{UserID: alice, Name: "ci deploy", SecretHash: secretVectorHash(),
				PublicKey: domain.PublicKey{0: 0xdd, 31: 0x04}, SignedOnly: true, ExpiresAt: &expires,
				Scopes: []string{"deploy:*", "orders:read"}, Metadata: json.RawMessage(`{"plan":"pro","tenant":7}`)},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2D", Type: domain.TypeKeySecretRegenerated, Schema: 2, Aggregate: apiKey,
			Version: 2, Time: at.Add(time.Hour), Actor: alice,
			Data: domain.KeySecretRegenerated{SecretHash: domain.Hash{0: 0x01, 31: 0xff}, PublicKey: domain.PublicKey{0: 0xee, 31: 0x05}},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2E", Type: domain.TypeKeyRevoked, Schema: 1, Aggregate: apiKey,
			Version: 3, Time: at.Add(2 * time.Hour), Actor: alice,
			Data: domain.KeyRevoked{Reason: "leaked in a build log"},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2F", Type: domain.TypeUserDisabled, Schema: 1, Aggregate: alice,
			Version: 2, Time: at.Add(3 * time.Hour), Actor: "admin:root", Prev: domain.Hash{0: 0xaa, 31: 0x01},
			Data: domain.UserDisabled{Reason: "account compromised"},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2G", Type: domain.TypeUserEnabled, Schema: 1, Aggregate: alice,
			Version: 3, Time: at.Add(4 * time.Hour), Actor: "admin:root", Prev: domain.Hash{0: 0xbb, 31: 0x02},
			Data: domain.UserEnabled{Reason: "cleared"},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2Q", Type: domain.TypeUserErased, Schema: 1, Aggregate: alice,
			Version: 4, Time: at.Add(11 * time.Hour), Actor: alice, Prev: domain.Hash{0: 0x99, 31: 0x0d},
			Data: domain.UserErased{Reason: "asked to be forgotten"},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B3A", Type: domain.TypeUserPasswordChanged, Schema: 1, Aggregate: alice,
			Version: 5, Time: at.Add(17 * time.Hour), Actor: alice, Prev: domain.Hash{0: 0x17, 31: 0x13},
			Data: domain.UserPasswordChanged{Personal: samplePasswordSealed()},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B3B", Type: domain.TypeUserSessionsRevoked, Schema: 1, Aggregate: alice,
			Version: 6, Time: at.Add(18 * time.Hour), Actor: "admin:root", Prev: domain.Hash{0: 0x18, 31: 0x14},
			Data: domain.UserSessionsRevoked{Reason: "laptop stolen"}, Request: sampleRequest(),
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B3C", Type: domain.TypeUserSessionEnded, Schema: 1, Aggregate: alice,
			Version: 7, Time: at.Add(19 * time.Hour), Actor: alice, Prev: domain.Hash{0: 0x19, 31: 0x15},
			Data: domain.UserSessionEnded{TokenID: "q0bOmm3iQ1tUbm9uY2Vub25j", ExpiresAt: at.Add(20 * time.Hour)},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2H", Type: domain.TypeLogCheckpoint, Schema: 1, Aggregate: domain.CheckpointAggregate,
			Version: 1, Time: at.Add(5 * time.Hour), Actor: "system",
			Data: domain.LogCheckpoint{Size: 42, Root: domain.Hash{0: 0xcc, 31: 0x03}, Foreign: []uint64{7, 19}},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2J", Type: domain.TypeLedgerGenesis, Schema: 1, Aggregate: domain.TrustAggregate,
			Version: 1, Time: at.Add(6 * time.Hour), Actor: "system",
			Data: domain.LedgerGenesis{Keys: []domain.PublicKey{{0: 0xa1, 31: 0x06}, {0: 0xa2, 31: 0x07}}, Reason: "new log"},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2K", Type: domain.TypeLedgerKeyAdded, Schema: 1, Aggregate: domain.TrustAggregate,
			Version: 2, Time: at.Add(7 * time.Hour), Actor: "admin:root", Prev: domain.Hash{0: 0xdd, 31: 0x08},
			Data: domain.LedgerKeyAdded{Key: domain.PublicKey{0: 0xa3, 31: 0x09}, Reason: "rotation"},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2M", Type: domain.TypeLedgerKeyRetired, Schema: 1, Aggregate: domain.TrustAggregate,
			Version: 3, Time: at.Add(8 * time.Hour), Actor: "admin:root", Prev: domain.Hash{0: 0xee, 31: 0x0a},
			Data: domain.LedgerKeyRetired{Key: domain.PublicKey{0: 0xa1, 31: 0x06}, Reason: "rotated out"},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2N", Type: domain.TypeAdminKeyEnrolled, Schema: 1, Aggregate: "ops",
			Version: 1, Time: at.Add(9 * time.Hour), Actor: "admin:root",
			Data:    domain.AdminKeyEnrolled{Key: domain.PublicKey{0: 0xb1, 31: 0x0b}, Reason: "new on-call"},
			Request: sampleRequest(),
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2P", Type: domain.TypeAdminKeyRevoked, Schema: 1, Aggregate: "ops",
			Version: 2, Time: at.Add(10 * time.Hour), Actor: "admin:ops", Prev: domain.Hash{0: 0xff, 31: 0x0c},
			Data:    domain.AdminKeyRevoked{Key: domain.PublicKey{0: 0xb1, 31: 0x0b}, Reason: "laptop lost"},
			Request: sampleRequest(),
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2Q", Type: domain.TypeKeyDisabled, Schema: 1, Aggregate: apiKey,
			Version: 4, Time: at.Add(11 * time.Hour), Actor: "admin:root", Prev: domain.Hash{0: 0x11, 31: 0x0d},
			Data: domain.KeyDisabled{Reason: "suspicious traffic"}, Request: sampleRequest(),
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2R", Type: domain.TypeKeyEnabled, Schema: 1, Aggregate: apiKey,
			Version: 5, Time: at.Add(12 * time.Hour), Actor: alice, Prev: domain.Hash{0: 0x12, 31: 0x0e},
			Data: domain.KeyEnabled{Reason: "false alarm"},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2S", Type: domain.TypeKeyRenamed, Schema: 1, Aggregate: apiKey,
			Version: 6, Time: at.Add(13 * time.Hour), Actor: alice, Prev: domain.Hash{0: 0x13, 31: 0x0f},
			Data: domain.KeyRenamed{Name: "ci deploy (eu)"},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2T", Type: domain.TypeKeyScopesChanged, Schema: 1, Aggregate: apiKey,
			Version: 7, Time: at.Add(14 * time.Hour), Actor: alice, Prev: domain.Hash{0: 0x14, 31: 0x10},
			Data: domain.KeyScopesChanged{Scopes: []string{"orders:read", "orders:write"}},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2V", Type: domain.TypeKeyMetadataChanged, Schema: 1, Aggregate: apiKey,
			Version: 8, Time: at.Add(15 * time.Hour), Actor: alice, Prev: domain.Hash{0: 0x15, 31: 0x11},
			Data: domain.KeyMetadataChanged{Metadata: json.RawMessage(`{"plan":"enterprise"}`)},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2W", Type: domain.TypeKeyExpiryChanged, Schema: 1, Aggregate: apiKey,
			Version: 9, Time: at.Add(16 * time.Hour), Actor: alice, Prev: domain.Hash{0: 0x16, 31: 0x12},
			Data: domain.KeyExpiryChanged{ExpiresAt: &expires},
		},
	}
}

// sampleDataKey is the data key the sample user.registered is sealed under.
var sampleDataKey = []byte("sample data key, thirty-two byte")

// sampleSealed is alice's email and password hash sealed under
// sampleDataKey, with a fixed nonce so that the sample is stable.
func sampleSealed() domain.Sealed {
	s, err := domain.SealPersonal(sampleDataKey, alice, domain.TypeUserRegistered, 2,
		domain.Personal{Email: "alice@example.com", PasswordHash: passwordHash}, strings.NewReader("fixed nonce!"))
	if err != nil {
		panic(err)
	}
	return s
}

// samplePasswordSealed is alice's email and a new password hash sealed
// under sampleDataKey for user.password_changed, with a fixed nonce.
func samplePasswordSealed() domain.Sealed {
	s, err := domain.SealPersonal(sampleDataKey, alice, domain.TypeUserPasswordChanged, 1,
		domain.Personal{Email: "alice@example.com", PasswordHash: newPasswordHash}, strings.NewReader("fixed nonce?"))
	if err != nil {
		panic(err)
	}
	return s
}

// newPasswordHash is the hash samplePasswordSealed holds.
const newPasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdG5ld3NhbHQ$bmV3aGFzaG5ld2hhc2huZXdoYXNobmV3aGFzaA"

// graceRegenerated is a key.secret_regenerated of schema 2 with the
// optional grace period of the previous secret.
func graceRegenerated() domain.Event {
	e := sampleEvents()[3]
	e.ID = "01JH6Z3Q8X4N6V2R9T5M7K3B2X"
	until := e.Time.Add(time.Hour)
	d := e.Data.(domain.KeySecretRegenerated)
	d.PreviousExpiresAt = &until
	e.Data = d
	return e
}

// sampleRequest is a kept admin request (its values need not verify).
func sampleRequest() *domain.SignedRequest {
	input := `("@method" "@target-uri" "content-type" "content-digest");created=1793529015;expires=1793529315;keyid="q0bOmm3iQ1tU";nonce="bm9uY2Vub25jZW5vbmNlbm9uY2U";alg="ed25519";tag="keyledger-admin-v1"`
	return &domain.SignedRequest{KeyID: "q0bOmm3iQ1tU", Input: input, Signature: []byte{0: 1, 63: 2},
		Base: `"@method": POST` + "\n" + `"@signature-params": ` + input}
}

// secretVectorHash is the SHA-256 of secretVectors[1].want, written out.
func secretVectorHash() domain.Hash {
	var h domain.Hash
	if err := h.UnmarshalText([]byte(secretVectorHashHex)); err != nil {
		panic(err)
	}
	return h
}

const secretVectorHashHex = "e22c10f4e56a5a7d73c4d42ed6730fe0f8bb312d26f40d189f2d367ed3317f03"

func TestEncodeDecodeEvent(t *testing.T) {
	t.Parallel()
	events := sampleEvents()
	// Optional fields left out must come back empty, not as zero values.
	noOptional := events[2]
	noOptional.Data = domain.KeyCreated{UserID: alice, SecretHash: hashA, PublicKey: pubA}
	revokedNoReason := events[4]
	revokedNoReason.Data = domain.KeyRevoked{}
	noScopes := events[len(events)-3]
	noScopes.Data = domain.KeyScopesChanged{}
	noMetadata := events[len(events)-2]
	noMetadata.Data = domain.KeyMetadataChanged{}
	neverExpires := events[len(events)-1]
	neverExpires.Data = domain.KeyExpiryChanged{}
	events = append(events, noOptional, revokedNoReason, graceRegenerated(), noScopes, noMetadata, neverExpires)

	for _, e := range events {
		t.Run(e.Type, func(t *testing.T) {
			in := e
			in.Time = e.Time.In(zoned.Location())
			in.Sequence = 42
			b, err := domain.EncodeEvent(in)
			if err != nil {
				t.Fatalf("EncodeEvent: got %v, want nil", err)
			}
			if strings.Contains(strings.ToLower(string(b)), "sequence") {
				t.Errorf("EncodeEvent: got %s, want no sequence in it", b)
			}
			if !strings.Contains(string(b), `"time":"`+e.Time.UTC().Format(time.RFC3339Nano)+`"`) {
				t.Errorf("EncodeEvent: got %s, want the time in UTC", b)
			}
			got, err := domain.DecodeEvent(b)
			if err != nil {
				t.Fatalf("DecodeEvent: got %v, want nil", err)
			}
			if got.ID != e.ID {
				t.Errorf("ID: got %v, want %v", got.ID, e.ID)
			}
			if got.Sequence != 0 {
				t.Errorf("Sequence: got %v, want %v", got.Sequence, 0)
			}
			assertEvents(t, []domain.Event{got}, []domain.Event{e})
		})
	}
}

func TestEncodeEvent_Errors(t *testing.T) {
	t.Parallel()
	e := sampleEvents()[0]
	noData := e
	noData.Data = nil
	mismatch := e
	mismatch.Data = domain.KeyRevoked{}
	badData := sampleEvents()[2]
	badData.Data = domain.KeyCreated{UserID: alice, ExpiresAt: timePtr(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))}
	for name, e := range map[string]domain.Event{"ErrNoData": noData, "ErrTypeMismatch": mismatch, "ErrData": badData} {
		t.Run(name, func(t *testing.T) {
			if b, err := domain.EncodeEvent(e); err == nil {
				t.Errorf("got %s, want an error", b)
			}
		})
	}
}

func TestDecodeEvent_Unknown(t *testing.T) {
	t.Parallel()
	const rest = `"id":"x","aggregate":"a","version":1,"time":"2026-11-01T00:00:00Z","actor":"u","data":{}`
	tests := []struct {
		name string
		in   string
	}{
		{"UnknownType", `{"type":"key.frobnicated","schema":1,` + rest + `}`},
		{"EmptyType", `{"type":"","schema":1,` + rest + `}`},
		{"MissingType", `{"schema":1,` + rest + `}`},
		{"TypeCase", `{"type":"Key.Created","schema":1,` + rest + `}`},
		{"NewerSchema", `{"type":"key.created","schema":6,` + rest + `}`},
		{"NewerSchemaTeam", `{"type":"team.created","schema":2,` + rest + `}`},
		{"UnknownTeamType", `{"type":"team.frobnicated","schema":1,` + rest + `}`},
		{"NewerSchemaCreditsAdded", `{"type":"key.credits_added","schema":2,` + rest + `}`},
		{"NewerSchemaDisabled", `{"type":"key.disabled","schema":2,` + rest + `}`},
		{"NewerSchemaRevoked", `{"type":"key.revoked","schema":2,` + rest + `}`},
		{"SchemaZero", `{"type":"key.revoked","schema":0,` + rest + `}`},
		{"MissingSchema", `{"type":"key.revoked",` + rest + `}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := domain.DecodeEvent([]byte(tc.in))
			if !errors.Is(err, domain.ErrUnknownEventType) {
				t.Errorf("got %v, want %v", err, domain.ErrUnknownEventType)
			}
		})
	}
}

func TestDecodeEvent_Incomplete(t *testing.T) {
	t.Parallel()
	full := map[string]any{
		"id": "01JH6Z3Q8X4N6V2R9T5M7K3B2E", "type": "key.revoked", "schema": 1, "aggregate": apiKey,
		"version": 3, "time": "2026-11-01T12:30:15Z", "actor": alice, "data": map[string]any{},
	}
	encode := func(edit func(map[string]any)) []byte {
		m := make(map[string]any, len(full))
		for k, v := range full {
			m[k] = v
		}
		edit(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := domain.DecodeEvent(encode(func(map[string]any) {})); err != nil {
		t.Fatalf("complete envelope: got %v, want nil", err)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"ErrNoID", encode(func(m map[string]any) { delete(m, "id") })},
		{"ErrEmptyID", encode(func(m map[string]any) { m["id"] = "" })},
		{"ErrNoAggregate", encode(func(m map[string]any) { delete(m, "aggregate") })},
		{"ErrNoVersion", encode(func(m map[string]any) { delete(m, "version") })},
		{"ErrVersionZero", encode(func(m map[string]any) { m["version"] = 0 })},
		{"ErrNegativeVersion", encode(func(m map[string]any) { m["version"] = -1 })},
		{"ErrNoTime", encode(func(m map[string]any) { delete(m, "time") })},
		{"ErrZeroTime", encode(func(m map[string]any) { m["time"] = "0001-01-01T00:00:00Z" })},
		{"ErrBadTime", encode(func(m map[string]any) { m["time"] = "yesterday" })},
		{"ErrNoData", encode(func(m map[string]any) { delete(m, "data") })},
		{"ErrDataNotObject", encode(func(m map[string]any) { m["data"] = "revoked" })},
		{"ErrDataWrongFieldType", encode(func(m map[string]any) { m["data"] = map[string]any{"reason": 7} })},
		{"ErrBadHash", encode(func(m map[string]any) {
			m["type"] = "key.secret_regenerated"
			m["data"] = map[string]any{"secret_hash": "abcd"}
		})},
		{"ErrNotJSON", []byte(`key.revoked`)},
		{"ErrEmpty", nil},
		{"ErrArray", []byte(`[]`)},
		{"ErrTruncated", encode(func(map[string]any) {})[:40]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := domain.DecodeEvent(tc.in)
			if err == nil {
				t.Fatalf("got %+v, want an error", e)
			}
			if errors.Is(err, domain.ErrUnknownEventType) {
				t.Errorf("got %v, want an error other than %v: readers must not skip a broken event", err, domain.ErrUnknownEventType)
			}
		})
	}
}

func TestEvent_Category(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		domain.TypeUserRegistered:       domain.CategoryUser,
		domain.TypeEmailReserved:        domain.CategoryEmail,
		domain.TypeKeyCreated:           domain.CategoryKey,
		domain.TypeKeySecretRegenerated: domain.CategoryKey,
		domain.TypeKeyRevoked:           domain.CategoryKey,
		"nodot":                         "nodot",
		"":                              "",
	}
	for typ, want := range tests {
		if got := (domain.Event{Type: typ}).Category(); got != want {
			t.Errorf("Category(%q): got %v, want %v", typ, got, want)
		}
	}
	for _, e := range sampleEvents() {
		if got := e.Data.EventType(); got != e.Type {
			t.Errorf("%T.EventType: got %v, want %v", e.Data, got, e.Type)
		}
	}
}

func TestHash_Text(t *testing.T) {
	t.Parallel()
	h := domain.Hash{0: 0xab, 1: 0xcd, 31: 0x01}
	b, err := h.MarshalText()
	want := "abcd" + strings.Repeat("0", 58) + "01"
	if err != nil || string(b) != want {
		t.Fatalf("MarshalText: got %s, %v, want %v, nil", b, err, want)
	}
	var got domain.Hash
	if err := got.UnmarshalText(b); err != nil || got != h {
		t.Errorf("UnmarshalText: got %x, %v, want %x, nil", got, err, h)
	}
	for _, bad := range []string{"", "abcd", want[:63], want + "0", want + "00", "zz" + want[2:]} {
		var g domain.Hash
		if err := g.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q): got %x, nil, want an error", bad, g)
		}
	}
}

// TestVersion1Events decodes the schema-1 events committed under
// testdata/events/v1 and checks every field against a literal. The files
// are the log as it was written: if this test fails, old logs no longer
// decode. Fix the decoder (or add an upcaster), never the files.
//
// go test -update creates a missing file from sampleEvents; it never
// rewrites one that exists.
func TestVersion1Events(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "events", "v1")
	if *update {
		var v1 []domain.Event
		for _, e := range append(append(append(sampleEvents(), signupSampleEvents()...), limitsSampleEvents()...), append(identitySampleEvents(), teamSampleEvents()[1:]...)...) {
			if e.Schema == 1 {
				v1 = append(v1, e)
			}
		}
		writeMissingGolden(t, dir, v1)
	}

	checks := map[string]func(t *testing.T, e domain.Event){
		"user.registered": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2A", "user.registered",
				"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A", 1, "2026-11-01T10:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.UserRegistered)
			if !ok {
				t.Fatalf("Data: got %T, want domain.UserRegistered", e.Data)
			}
			checkField(t, "Email", d.Email, "alice@example.com")
			checkField(t, "PasswordHash", d.PasswordHash,
				"$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g")
		},
		"email.reserved": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2B", "email.reserved",
				"ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976", 1,
				"2026-11-01T10:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.EmailReserved)
			if !ok {
				t.Fatalf("Data: got %T, want domain.EmailReserved", e.Data)
			}
			checkField(t, "UserID", d.UserID, "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
		},
		"key.created": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2C", "key.created",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 1, "2026-11-01T10:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.KeyCreated)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyCreated", e.Data)
			}
			checkField(t, "UserID", d.UserID, "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			checkField(t, "Name", d.Name, "ci deploy")
			checkField(t, "SecretHash", hex.EncodeToString(d.SecretHash[:]), secretVectorHashHex)
			if d.ExpiresAt == nil {
				t.Fatalf("ExpiresAt: got nil, want 2027-11-01T00:00:00Z")
			}
			checkField(t, "ExpiresAt", d.ExpiresAt.UTC().Format(time.RFC3339Nano), "2027-11-01T00:00:00Z")
		},
		"key.secret_regenerated": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2D", "key.secret_regenerated",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 2, "2026-11-01T11:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.KeySecretRegenerated)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeySecretRegenerated", e.Data)
			}
			checkField(t, "SecretHash", hex.EncodeToString(d.SecretHash[:]),
				"01000000000000000000000000000000000000000000000000000000000000ff")
		},
		"key.revoked": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2E", "key.revoked",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 3, "2026-11-01T12:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.KeyRevoked)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyRevoked", e.Data)
			}
			checkField(t, "Reason", d.Reason, "leaked in a build log")
		},
		"user.disabled": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2F", "user.disabled",
				"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A", 2, "2026-11-01T13:30:15.123456789Z", "admin:root")
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "aa000000000000000000000000000000000000000000000000000000000000"+"01")
			d, ok := e.Data.(domain.UserDisabled)
			if !ok {
				t.Fatalf("Data: got %T, want domain.UserDisabled", e.Data)
			}
			checkField(t, "Reason", d.Reason, "account compromised")
		},
		"user.enabled": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2G", "user.enabled",
				"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A", 3, "2026-11-01T14:30:15.123456789Z", "admin:root")
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "bb000000000000000000000000000000000000000000000000000000000000"+"02")
			d, ok := e.Data.(domain.UserEnabled)
			if !ok {
				t.Fatalf("Data: got %T, want domain.UserEnabled", e.Data)
			}
			checkField(t, "Reason", d.Reason, "cleared")
		},
		"user.erased": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2Q", "user.erased",
				"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A", 4, "2026-11-01T21:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "99"+strings.Repeat("0", 60)+"0d")
			d, ok := e.Data.(domain.UserErased)
			if !ok {
				t.Fatalf("Data: got %T, want domain.UserErased", e.Data)
			}
			checkField(t, "Reason", d.Reason, "asked to be forgotten")
		},
		"user.password_changed": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B3A", "user.password_changed",
				"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A", 5, "2026-11-02T03:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "17"+strings.Repeat("0", 60)+"13")
			d, ok := e.Data.(domain.UserPasswordChanged)
			if !ok {
				t.Fatalf("Data: got %T, want domain.UserPasswordChanged", e.Data)
			}
			p, err := domain.OpenPersonal(sampleDataKey, e.Aggregate, e.Type, e.Schema, d.Personal)
			if err != nil {
				t.Fatalf("OpenPersonal: %v", err)
			}
			checkField(t, "Email", p.Email, "alice@example.com")
			checkField(t, "PasswordHash", p.PasswordHash, newPasswordHash)
		},
		"user.sessions_revoked": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B3B", "user.sessions_revoked",
				"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A", 6, "2026-11-02T04:30:15.123456789Z", "admin:root")
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "18"+strings.Repeat("0", 60)+"14")
			d, ok := e.Data.(domain.UserSessionsRevoked)
			if !ok {
				t.Fatalf("Data: got %T, want domain.UserSessionsRevoked", e.Data)
			}
			checkField(t, "Reason", d.Reason, "laptop stolen")
			if e.Request == nil || e.Request.KeyID != sampleRequest().KeyID {
				t.Fatalf("Request: got %+v, want the sample request", e.Request)
			}
		},
		"user.session_ended": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B3C", "user.session_ended",
				"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A", 7, "2026-11-02T05:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "19"+strings.Repeat("0", 60)+"15")
			d, ok := e.Data.(domain.UserSessionEnded)
			if !ok {
				t.Fatalf("Data: got %T, want domain.UserSessionEnded", e.Data)
			}
			checkField(t, "TokenID", d.TokenID, "q0bOmm3iQ1tUbm9uY2Vub25j")
			checkField(t, "ExpiresAt", d.ExpiresAt.Format(time.RFC3339Nano), "2026-11-02T06:30:15.123456789Z")
		},
		"log.checkpoint": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2H", "log.checkpoint",
				"checkpoint", 1, "2026-11-01T15:30:15.123456789Z", "system")
			d, ok := e.Data.(domain.LogCheckpoint)
			if !ok {
				t.Fatalf("Data: got %T, want domain.LogCheckpoint", e.Data)
			}
			checkField(t, "Size", d.Size, uint64(42))
			checkField(t, "Root", hex.EncodeToString(d.Root[:]), "cc000000000000000000000000000000000000000000000000000000000000"+"03")
			checkField(t, "Foreign", fmt.Sprint(d.Foreign), "[7 19]")
		},
		"ledger.genesis": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2J", "ledger.genesis",
				"trust", 1, "2026-11-01T16:30:15.123456789Z", "system")
			d, ok := e.Data.(domain.LedgerGenesis)
			if !ok {
				t.Fatalf("Data: got %T, want domain.LedgerGenesis", e.Data)
			}
			checkField(t, "len(Keys)", len(d.Keys), 2)
			if len(d.Keys) == 2 {
				checkField(t, "Keys[0]", hex.EncodeToString(d.Keys[0][:]), "a1"+strings.Repeat("0", 60)+"06")
				checkField(t, "Keys[1]", hex.EncodeToString(d.Keys[1][:]), "a2"+strings.Repeat("0", 60)+"07")
			}
			checkField(t, "Reason", d.Reason, "new log")
		},
		"ledger.key_added": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2K", "ledger.key_added",
				"trust", 2, "2026-11-01T17:30:15.123456789Z", "admin:root")
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "dd"+strings.Repeat("0", 60)+"08")
			d, ok := e.Data.(domain.LedgerKeyAdded)
			if !ok {
				t.Fatalf("Data: got %T, want domain.LedgerKeyAdded", e.Data)
			}
			checkField(t, "Key", hex.EncodeToString(d.Key[:]), "a3"+strings.Repeat("0", 60)+"09")
			checkField(t, "Reason", d.Reason, "rotation")
		},
		"ledger.key_retired": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2M", "ledger.key_retired",
				"trust", 3, "2026-11-01T18:30:15.123456789Z", "admin:root")
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "ee"+strings.Repeat("0", 60)+"0a")
			d, ok := e.Data.(domain.LedgerKeyRetired)
			if !ok {
				t.Fatalf("Data: got %T, want domain.LedgerKeyRetired", e.Data)
			}
			checkField(t, "Key", hex.EncodeToString(d.Key[:]), "a1"+strings.Repeat("0", 60)+"06")
			checkField(t, "Reason", d.Reason, "rotated out")
		},
		"admin.key_enrolled": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2N", "admin.key_enrolled",
				"ops", 1, "2026-11-01T19:30:15.123456789Z", "admin:root")
			d, ok := e.Data.(domain.AdminKeyEnrolled)
			if !ok {
				t.Fatalf("Data: got %T, want domain.AdminKeyEnrolled", e.Data)
			}
			checkField(t, "Key", hex.EncodeToString(d.Key[:]), "b1"+strings.Repeat("0", 60)+"0b")
			checkField(t, "Reason", d.Reason, "new on-call")
			checkRequest(t, e.Request)
		},
		"admin.key_revoked": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2P", "admin.key_revoked",
				"ops", 2, "2026-11-01T20:30:15.123456789Z", "admin:ops")
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "ff"+strings.Repeat("0", 60)+"0c")
			d, ok := e.Data.(domain.AdminKeyRevoked)
			if !ok {
				t.Fatalf("Data: got %T, want domain.AdminKeyRevoked", e.Data)
			}
			checkField(t, "Key", hex.EncodeToString(d.Key[:]), "b1"+strings.Repeat("0", 60)+"0b")
			checkField(t, "Reason", d.Reason, "laptop lost")
			checkRequest(t, e.Request)
		},
		"key.disabled": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2Q", "key.disabled",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 4, "2026-11-01T21:30:15.123456789Z", "admin:root")
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "11"+strings.Repeat("0", 60)+"0d")
			d, ok := e.Data.(domain.KeyDisabled)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyDisabled", e.Data)
			}
			checkField(t, "Reason", d.Reason, "suspicious traffic")
			checkRequest(t, e.Request)
		},
		"key.enabled": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2R", "key.enabled",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 5, "2026-11-01T22:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "12"+strings.Repeat("0", 60)+"0e")
			d, ok := e.Data.(domain.KeyEnabled)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyEnabled", e.Data)
			}
			checkField(t, "Reason", d.Reason, "false alarm")
		},
		"key.renamed": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2S", "key.renamed",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 6, "2026-11-01T23:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.KeyRenamed)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyRenamed", e.Data)
			}
			checkField(t, "Name", d.Name, "ci deploy (eu)")
		},
		"key.scopes_changed": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2T", "key.scopes_changed",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 7, "2026-11-02T00:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.KeyScopesChanged)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyScopesChanged", e.Data)
			}
			checkField(t, "Scopes", strings.Join(d.Scopes, " "), "orders:read orders:write")
		},
		"key.metadata_changed": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2V", "key.metadata_changed",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 8, "2026-11-02T01:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.KeyMetadataChanged)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyMetadataChanged", e.Data)
			}
			checkField(t, "Metadata", string(d.Metadata), `{"plan":"enterprise"}`)
		},
		"key.expiry_changed": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2W", "key.expiry_changed",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 9, "2026-11-02T02:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.KeyExpiryChanged)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyExpiryChanged", e.Data)
			}
			if d.ExpiresAt == nil {
				t.Fatalf("ExpiresAt: got nil, want 2027-11-01T00:00:00Z")
			}
			checkField(t, "ExpiresAt", d.ExpiresAt.UTC().Format(time.RFC3339Nano), "2027-11-01T00:00:00Z")
		},
	}

	maps.Copy(checks, signupEventChecks())
	maps.Copy(checks, limitsEventChecks())
	maps.Copy(checks, identityEventChecks())
	maps.Copy(checks, teamEventChecks())
	checkFrozenEvents(t, dir, 1, checks)
}

// checkRequest checks a frozen event's kept admin request.
func checkRequest(t *testing.T, r *domain.SignedRequest) {
	t.Helper()
	if r == nil {
		t.Fatal("Request: got nil, want the kept admin request")
	}
	want := sampleRequest()
	checkField(t, "Request.KeyID", r.KeyID, want.KeyID)
	checkField(t, "Request.Input", r.Input, want.Input)
	checkField(t, "Request.Signature", hex.EncodeToString(r.Signature), hex.EncodeToString(want.Signature))
	checkField(t, "Request.Base", r.Base, want.Base)
}

// checkFrozenEvents decodes each frozen event of dir, <type>.json, and
// runs its check; every file must have a check and every check a file,
// and each event must be of the given schema.
func checkFrozenEvents(t *testing.T, dir string, schema int, checks map[string]func(t *testing.T, e domain.Event)) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := checks[strings.TrimSuffix(filepath.Base(f), ".json")]; !ok {
			t.Errorf("%s: got a file with no check, want a check for every frozen event", f)
		}
	}
	for typ, check := range checks {
		t.Run(typ, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, typ+".json"))
			if err != nil {
				t.Fatalf("got %v, want the frozen event (create it once with go test -update)", err)
			}
			e, err := domain.DecodeEvent(b)
			if err != nil {
				t.Fatalf("DecodeEvent: got %v, want nil", err)
			}
			checkField(t, "Schema", e.Schema, schema)
			checkField(t, "Sequence", e.Sequence, uint64(0))
			check(t, e)
		})
	}
}

func checkEnvelope(t *testing.T, e domain.Event, id, typ, aggregate string, version uint64, at, actor string) {
	t.Helper()
	checkField(t, "ID", e.ID, id)
	checkField(t, "Type", e.Type, typ)
	checkField(t, "Aggregate", e.Aggregate, aggregate)
	checkField(t, "Version", e.Version, version)
	checkField(t, "Time", e.Time.Format(time.RFC3339Nano), at)
	checkField(t, "Time zone", e.Time.Location(), time.UTC)
	checkField(t, "Actor", e.Actor, actor)
}

func checkField[T comparable](t *testing.T, name string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", name, got, want)
	}
}

// writeMissingGolden writes the encoding of each event to dir/<type>.json
// unless that file exists: a frozen event is never rewritten.
func writeMissingGolden(t *testing.T, dir string, events []domain.Event) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		path := filepath.Join(dir, e.Type+".json")
		if _, err := os.Stat(path); err == nil {
			t.Logf("%s exists and is frozen: not rewritten", path)
			continue
		}
		b, err := domain.EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
}

// TestDecodeEvent_EncodableTime: a time that is in range as written can be
// out of range in UTC. DecodeEvent must not accept an event that EncodeEvent
// then cannot write back. Found by FuzzDecodeEvent.
func TestDecodeEvent_EncodableTime(t *testing.T) {
	t.Parallel()
	for _, at := range []string{"0000-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"} {
		t.Run(at, func(t *testing.T) {
			in := `{"id":"x","type":"key.revoked","schema":1,"aggregate":"a","version":1,"time":"` + at + `","actor":"u","data":{}}`
			e, err := domain.DecodeEvent([]byte(in))
			if err != nil {
				return // rejected: fine
			}
			if _, err := domain.EncodeEvent(e); err != nil {
				t.Errorf("DecodeEvent accepts time %s (%v in UTC) that EncodeEvent refuses: %v", at, e.Time, err)
			}
		})
	}
}

// TestEncodeEvent_Decodable: the writer must refuse what the reader rejects,
// or the log gets events that every reader skips (as an unknown schema) or
// fails on.
func TestEncodeEvent_Decodable(t *testing.T) {
	t.Parallel()
	base := sampleEvents()[4]
	tests := []struct {
		name string
		edit func(*domain.Event)
	}{
		{"SchemaZero", func(e *domain.Event) { e.Schema = 0 }},
		{"SchemaUnknown", func(e *domain.Event) { e.Schema = domain.CurrentSchema + 1 }},
		{"NoID", func(e *domain.Event) { e.ID = "" }},
		{"NoAggregate", func(e *domain.Event) { e.Aggregate = "" }},
		{"VersionZero", func(e *domain.Event) { e.Version = 0 }},
		{"ZeroTime", func(e *domain.Event) { e.Time = time.Time{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := base
			tc.edit(&e)
			b, err := domain.EncodeEvent(e)
			if err != nil {
				return // refused: fine
			}
			if _, err := domain.DecodeEvent(b); err != nil {
				t.Errorf("EncodeEvent writes %s, which DecodeEvent rejects: %v", b, err)
			}
		})
	}
}

// TestVersion2Events decodes the schema-2 key events committed under
// testdata/events/v2, which added the public key that verifies signed
// requests. Like TestVersion1Events, it guards the log as written.
func TestVersion2Events(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "events", "v2")
	if *update {
		var v2 []domain.Event
		for _, e := range sampleEvents() {
			if e.Schema == 2 {
				v2 = append(v2, e)
			}
		}
		writeMissingGolden(t, dir, v2)
		writeMissingFile(t, filepath.Join(dir, "key.secret_regenerated.grace.json"), graceRegenerated())
	}
	checks := map[string]func(t *testing.T, e domain.Event){
		"user.registered": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2A", "user.registered",
				"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A", 1, "2026-11-01T10:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.UserRegistered)
			if !ok {
				t.Fatalf("Data: got %T, want domain.UserRegistered", e.Data)
			}
			checkField(t, "Email", d.Email, "")
			checkField(t, "PasswordHash", d.PasswordHash, "")
			checkField(t, "Role", d.Role, domain.RoleAdmin)
			p, err := domain.OpenPersonal(sampleDataKey, e.Aggregate, e.Type, e.Schema, d.Personal)
			if err != nil {
				t.Fatalf("OpenPersonal: got %v, want nil", err)
			}
			checkField(t, "Personal.Email", p.Email, "alice@example.com")
			checkField(t, "Personal.PasswordHash", p.PasswordHash, passwordHash)
		},
		"key.created": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2C", "key.created",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 1, "2026-11-01T10:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.KeyCreated)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyCreated", e.Data)
			}
			checkField(t, "UserID", d.UserID, "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			checkField(t, "Name", d.Name, "ci deploy")
			checkField(t, "SecretHash", hex.EncodeToString(d.SecretHash[:]), secretVectorHashHex)
			checkField(t, "PublicKey", hex.EncodeToString(d.PublicKey[:]),
				"dd000000000000000000000000000000000000000000000000000000000000"+"04")
			checkField(t, "SignedOnly", d.SignedOnly, true)
			if d.ExpiresAt == nil {
				t.Fatalf("ExpiresAt: got nil, want 2027-11-01T00:00:00Z")
			}
			checkField(t, "ExpiresAt", d.ExpiresAt.UTC().Format(time.RFC3339Nano), "2027-11-01T00:00:00Z")
		},
		"key.secret_regenerated": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2D", "key.secret_regenerated",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 2, "2026-11-01T11:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.KeySecretRegenerated)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeySecretRegenerated", e.Data)
			}
			checkField(t, "SecretHash", hex.EncodeToString(d.SecretHash[:]),
				"01000000000000000000000000000000000000000000000000000000000000ff")
			checkField(t, "PublicKey", hex.EncodeToString(d.PublicKey[:]),
				"ee000000000000000000000000000000000000000000000000000000000000"+"05")
		},
		// The grace period of the previous secret is an optional field of
		// schema 2: readers that do not know it end the old secret at once.
		"key.secret_regenerated.grace": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2X", "key.secret_regenerated",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 2, "2026-11-01T11:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.KeySecretRegenerated)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeySecretRegenerated", e.Data)
			}
			checkField(t, "SecretHash", hex.EncodeToString(d.SecretHash[:]),
				"01000000000000000000000000000000000000000000000000000000000000ff")
			if d.PreviousExpiresAt == nil {
				t.Fatalf("PreviousExpiresAt: got nil, want 2026-11-01T12:30:15.123456789Z")
			}
			checkField(t, "PreviousExpiresAt", d.PreviousExpiresAt.UTC().Format(time.RFC3339Nano), "2026-11-01T12:30:15.123456789Z")
		},
	}
	checkFrozenEvents(t, dir, 2, checks)
}

// TestVersion3Events decodes the schema-3 key.created committed under
// testdata/events/v3, which added scopes and metadata. Like
// TestVersion1Events, it guards the log as written.
func TestVersion3Events(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "events", "v3")
	if *update {
		var v3 []domain.Event
		for _, e := range sampleEvents() {
			if e.Schema == 3 {
				v3 = append(v3, e)
			}
		}
		writeMissingGolden(t, dir, v3)
	}
	checks := map[string]func(t *testing.T, e domain.Event){
		"key.created": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B2C", "key.created",
				"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", 1, "2026-11-01T10:30:15.123456789Z", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			d, ok := e.Data.(domain.KeyCreated)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyCreated", e.Data)
			}
			checkField(t, "UserID", d.UserID, "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A")
			checkField(t, "Name", d.Name, "ci deploy")
			checkField(t, "SecretHash", hex.EncodeToString(d.SecretHash[:]), secretVectorHashHex)
			checkField(t, "PublicKey", hex.EncodeToString(d.PublicKey[:]),
				"dd000000000000000000000000000000000000000000000000000000000000"+"04")
			checkField(t, "SignedOnly", d.SignedOnly, true)
			if d.ExpiresAt == nil {
				t.Fatalf("ExpiresAt: got nil, want 2027-11-01T00:00:00Z")
			}
			checkField(t, "ExpiresAt", d.ExpiresAt.UTC().Format(time.RFC3339Nano), "2027-11-01T00:00:00Z")
			checkField(t, "Scopes", strings.Join(d.Scopes, " "), "deploy:* orders:read")
			checkField(t, "Metadata", string(d.Metadata), `{"plan":"pro","tenant":7}`)
		},
	}
	checkFrozenEvents(t, dir, 3, checks)
}

// writeMissingFile writes the encoding of e to path unless that file
// exists: a frozen event is never rewritten.
func writeMissingFile(t *testing.T, path string, e domain.Event) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	b, err := domain.EncodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// TestDecodeEvent_Schema1KeyEvents: schema 1 key events decode with no
// public key, even if a field of that name was slipped into one; schema 2
// events without one are refused.
func TestDecodeEvent_Schema1KeyEvents(t *testing.T) {
	t.Parallel()
	const pub = `"public_key":"dd00000000000000000000000000000000000000000000000000000000000004"`
	const hash = `"secret_hash":"e22c10f4e56a5a7d73c4d42ed6730fe0f8bb312d26f40d189f2d367ed3317f03"`
	env := func(typ string, schema int, data string) []byte {
		return []byte(fmt.Sprintf(`{"id":"x","type":%q,"schema":%d,"aggregate":%q,"version":1,"time":"2026-11-01T00:00:00Z","actor":%q,"data":{%s}}`,
			typ, schema, apiKey, alice, data))
	}
	t.Run("V1StrayPublicKey", func(t *testing.T) {
		e, err := domain.DecodeEvent(env(domain.TypeKeyCreated, 1, `"user_id":"`+alice+`",`+hash+`,"signed_only":true,`+pub))
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		d := e.Data.(domain.KeyCreated)
		if !d.PublicKey.IsZero() || d.SignedOnly {
			t.Errorf("got public key %x, signed_only %v, want none from a schema 1 event", d.PublicKey, d.SignedOnly)
		}
		e, err = domain.DecodeEvent(env(domain.TypeKeySecretRegenerated, 1, hash+`,`+pub))
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if d := e.Data.(domain.KeySecretRegenerated); !d.PublicKey.IsZero() {
			t.Errorf("got public key %x, want none from a schema 1 event", d.PublicKey)
		}
	})
	t.Run("V2WithoutPublicKey", func(t *testing.T) {
		for _, b := range [][]byte{
			env(domain.TypeKeyCreated, 2, `"user_id":"`+alice+`",`+hash),
			env(domain.TypeKeySecretRegenerated, 2, hash),
			env(domain.TypeKeySecretRegenerated, 2, hash+`,"public_key":"abcd"`),
		} {
			if e, err := domain.DecodeEvent(b); err == nil {
				t.Errorf("DecodeEvent(%s): got %+v, want an error", b, e)
			}
		}
	})
	t.Run("EncodeOnlyCurrent", func(t *testing.T) {
		e := keyCreated(t0, domain.KeyCreated{SecretHash: hashA})
		e.ID, e.Schema = "x", 1
		if b, err := domain.EncodeEvent(e); err == nil {
			t.Errorf("EncodeEvent of a schema 1 key.created: got %s, want an error", b)
		}
	})
}
