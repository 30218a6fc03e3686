package domain_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// limitsSampleEvents holds one event of every type that limits added,
// with every field set: key.created of schema 4 (testdata/events/v4) and
// the three new key events of schema 1 (testdata/events/v1).
func limitsSampleEvents() []domain.Event {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	return []domain.Event{
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B4A", Type: domain.TypeKeyCreated, Schema: 4, Aggregate: apiKey,
			Version: 1, Time: at, Actor: alice,
			Data: domain.KeyCreated{UserID: alice, Name: "metered", SecretHash: secretVectorHash(),
				PublicKey: domain.PublicKey{0: 0xdd, 31: 0x04}, Scopes: []string{"orders:read"},
				RateLimit: &domain.RateLimit{Limit: 100, Window: domain.Period(time.Minute)},
				Credits: &domain.Credits{Remaining: 1000,
					Refill: &domain.Refill{Amount: 500, Interval: domain.Period(24 * time.Hour)}}},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B4B", Type: domain.TypeKeyRateLimitChanged, Schema: 1, Aggregate: apiKey,
			Version: 2, Time: at.Add(time.Hour), Actor: alice, Prev: domain.Hash{0: 0x41, 31: 0x01},
			Data: domain.KeyRateLimitChanged{RateLimit: &domain.RateLimit{Limit: 5, Window: domain.Period(time.Second)}},
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B4C", Type: domain.TypeKeyCreditsChanged, Schema: 1, Aggregate: apiKey,
			Version: 3, Time: at.Add(2 * time.Hour), Actor: "admin:root", Prev: domain.Hash{0: 0x42, 31: 0x02},
			Data: domain.KeyCreditsChanged{Credits: &domain.Credits{Remaining: 20,
				Refill: &domain.Refill{Amount: 10, Interval: domain.Period(time.Hour)}}},
			Request: sampleRequest(),
		},
		{
			ID: "01JH6Z3Q8X4N6V2R9T5M7K3B4D", Type: domain.TypeKeyCreditsAdded, Schema: 1, Aggregate: apiKey,
			Version: 4, Time: at.Add(3 * time.Hour), Actor: "admin:root", Prev: domain.Hash{0: 0x43, 31: 0x03},
			Data: domain.KeyCreditsAdded{Add: 250, Reason: "goodwill"}, Request: sampleRequest(),
		},
	}
}

// limitsEventChecks are the checks of the frozen schema 1 samples of
// limitsSampleEvents, run by TestVersion1Events.
func limitsEventChecks() map[string]func(t *testing.T, e domain.Event) {
	return map[string]func(t *testing.T, e domain.Event){
		"key.rate_limit_changed": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B4B", "key.rate_limit_changed", apiKey, 2, "2026-12-06T11:00:00Z", alice)
			d, ok := e.Data.(domain.KeyRateLimitChanged)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyRateLimitChanged", e.Data)
			}
			if d.RateLimit == nil {
				t.Fatal("RateLimit: got nil, want 5 a second")
			}
			checkField(t, "RateLimit", *d.RateLimit, domain.RateLimit{Limit: 5, Window: domain.Period(time.Second)})
		},
		"key.credits_changed": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B4C", "key.credits_changed", apiKey, 3, "2026-12-06T12:00:00Z", "admin:root")
			checkRequest(t, e.Request)
			d, ok := e.Data.(domain.KeyCreditsChanged)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyCreditsChanged", e.Data)
			}
			if d.Credits == nil || d.Credits.Refill == nil {
				t.Fatalf("Credits: got %+v, want 20 refilled to 10 hourly", d.Credits)
			}
			checkField(t, "Credits.Remaining", d.Credits.Remaining, uint64(20))
			checkField(t, "Credits.Refill", *d.Credits.Refill, domain.Refill{Amount: 10, Interval: domain.Period(time.Hour)})
		},
		"key.credits_added": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B4D", "key.credits_added", apiKey, 4, "2026-12-06T13:00:00Z", "admin:root")
			checkRequest(t, e.Request)
			d, ok := e.Data.(domain.KeyCreditsAdded)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyCreditsAdded", e.Data)
			}
			checkField(t, "Add", d.Add, uint64(250))
			checkField(t, "Reason", d.Reason, "goodwill")
		},
	}
}

// TestVersion4Events decodes the schema-4 key.created committed under
// testdata/events/v4, which added rate limits and credits. Like
// TestVersion1Events, it guards the log as written.
func TestVersion4Events(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "events", "v4")
	if *update {
		writeMissingGolden(t, dir, limitsSampleEvents()[:1])
	}
	checks := map[string]func(t *testing.T, e domain.Event){
		"key.created": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B4A", "key.created", apiKey, 1, "2026-12-06T10:00:00Z", alice)
			d, ok := e.Data.(domain.KeyCreated)
			if !ok {
				t.Fatalf("Data: got %T, want domain.KeyCreated", e.Data)
			}
			checkField(t, "Name", d.Name, "metered")
			checkField(t, "Scopes", fmt.Sprint(d.Scopes), "[orders:read]")
			if d.RateLimit == nil || d.Credits == nil || d.Credits.Refill == nil {
				t.Fatalf("limits: got %+v, %+v, want both, with a refill", d.RateLimit, d.Credits)
			}
			checkField(t, "RateLimit", *d.RateLimit, domain.RateLimit{Limit: 100, Window: domain.Period(time.Minute)})
			checkField(t, "Credits.Remaining", d.Credits.Remaining, uint64(1000))
			checkField(t, "Credits.Refill", *d.Credits.Refill, domain.Refill{Amount: 500, Interval: domain.Period(24 * time.Hour)})
		},
	}
	checkFrozenEvents(t, dir, 4, checks)
}

// TestEncodeDecodeEvent_Limits round-trips the limits samples and the
// ones without optional parts (removed limits, a top-up without reason).
func TestEncodeDecodeEvent_Limits(t *testing.T) {
	t.Parallel()
	events := limitsSampleEvents()
	removedRate, removedCredits, noReason := events[1], events[2], events[3]
	removedRate.Data = domain.KeyRateLimitChanged{}
	removedCredits.Data = domain.KeyCreditsChanged{}
	noReason.Data = domain.KeyCreditsAdded{Add: 1}
	for _, e := range append(events, removedRate, removedCredits, noReason) {
		b, err := domain.EncodeEvent(e)
		if err != nil {
			t.Fatalf("EncodeEvent(%s): got %v, want nil", e.Type, err)
		}
		got, err := domain.DecodeEvent(b)
		if err != nil {
			t.Fatalf("DecodeEvent(%s): got %v, want nil", b, err)
		}
		assertEvents(t, []domain.Event{got}, []domain.Event{e})
	}
}

// TestKeyCreated_Schema: a key.created with limits is schema 4, so that
// readers that do not know limits skip it and refuse the key; one without
// is schema 3, which those readers accept. Neither encodes under the
// other's schema.
func TestKeyCreated_Schema(t *testing.T) {
	t.Parallel()
	plain := domain.KeyCreated{UserID: alice, SecretHash: hashA, PublicKey: pubA}
	limited := plain
	limited.RateLimit = &domain.RateLimit{Limit: 1, Window: domain.Period(time.Second)}
	credited := plain
	credited.Credits = &domain.Credits{Remaining: 0}
	checkField(t, "SchemaFor(plain)", domain.SchemaFor(plain), 3)
	checkField(t, "SchemaFor(rate limit)", domain.SchemaFor(limited), 4)
	checkField(t, "SchemaFor(credits)", domain.SchemaFor(credited), 4)
	checkField(t, "SchemaFor(key.credits_added)", domain.SchemaFor(domain.KeyCreditsAdded{Add: 1}), 1)
	for _, tc := range []struct {
		d      domain.KeyCreated
		schema int
	}{{plain, 4}, {limited, 3}, {credited, 3}} {
		e := keyCreated(t0, tc.d)
		e.ID, e.Schema = "x", tc.schema
		if b, err := domain.EncodeEvent(e); !errors.Is(err, domain.ErrUnknownEventType) {
			t.Errorf("EncodeEvent of %s as schema %d: got %s, %v, want %v", showData(tc.d), tc.schema, b, err, domain.ErrUnknownEventType)
		}
	}
}

// TestDecodeEvent_V3StrayLimits: limits slipped into a schema 3
// key.created are not believed (a reader of schema 3 never saw them).
func TestDecodeEvent_V3StrayLimits(t *testing.T) {
	t.Parallel()
	b := []byte(`{"id":"x","type":"key.created","schema":3,"aggregate":"` + apiKey + `","version":1,"time":"2026-11-01T00:00:00Z","actor":"` + alice +
		`","data":{"user_id":"` + alice + `","secret_hash":"e22c10f4e56a5a7d73c4d42ed6730fe0f8bb312d26f40d189f2d367ed3317f03","public_key":"dd00000000000000000000000000000000000000000000000000000000000004","scopes":["a"],"rate_limit":{"limit":1,"window":"1s"},"credits":{"remaining":1}}}`)
	e, err := domain.DecodeEvent(b)
	if err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	d := e.Data.(domain.KeyCreated)
	if d.RateLimit != nil || d.Credits != nil || len(d.Scopes) != 1 {
		t.Errorf("got rate limit %+v, credits %+v, scopes %v, want no limits and the scope", d.RateLimit, d.Credits, d.Scopes)
	}
}

// TestDecodeEvent_V4WithoutLimits: a schema 4 key.created without limits
// is never written (it is schema 3), so it is not read either.
func TestDecodeEvent_V4WithoutLimits(t *testing.T) {
	t.Parallel()
	b := []byte(`{"id":"x","type":"key.created","schema":4,"aggregate":"` + apiKey + `","version":1,"time":"2026-11-01T00:00:00Z","actor":"` + alice +
		`","data":{"user_id":"` + alice + `","secret_hash":"e22c10f4e56a5a7d73c4d42ed6730fe0f8bb312d26f40d189f2d367ed3317f03","public_key":"dd00000000000000000000000000000000000000000000000000000000000004"}}`)
	if e, err := domain.DecodeEvent(b); err == nil || errors.Is(err, domain.ErrUnknownEventType) {
		t.Errorf("got %+v, %v, want an error other than %v", e, err, domain.ErrUnknownEventType)
	}
}

// TestDecodeEvent_LimitsOutOfBounds: limits that no command accepts are
// not read either. A refill or window left out would read as zero and
// could not be written again (the fuzzer found the refill).
func TestDecodeEvent_LimitsOutOfBounds(t *testing.T) {
	t.Parallel()
	const keyHead = `{"user_id":"` + alice + `","secret_hash":"e22c10f4e56a5a7d73c4d42ed6730fe0f8bb312d26f40d189f2d367ed3317f03","public_key":"dd00000000000000000000000000000000000000000000000000000000000004",`
	for _, tc := range []struct{ name, typ, data string }{
		{"refill without interval", domain.TypeKeyCreated, keyHead + `"credits":{"remaining":0,"refill":{"amount":1}}}`},
		{"refill of zero", domain.TypeKeyCreated, keyHead + `"credits":{"remaining":0,"refill":{"amount":0,"interval":"1d"}}}`},
		{"refill too often", domain.TypeKeyCreated, keyHead + `"credits":{"remaining":0,"refill":{"amount":1,"interval":"1s"}}}`},
		{"too many credits", domain.TypeKeyCreated, keyHead + `"credits":{"remaining":1000000000001}}`},
		{"window left out", domain.TypeKeyCreated, keyHead + `"rate_limit":{"limit":1}}`},
		{"limit of zero", domain.TypeKeyCreated, keyHead + `"rate_limit":{"limit":0,"window":"1m"}}`},
		{"changed to a window left out", domain.TypeKeyRateLimitChanged, `{"rate_limit":{"limit":5}}`},
		{"changed to a refill without interval", domain.TypeKeyCreditsChanged, `{"credits":{"remaining":5,"refill":{"amount":5}}}`},
		{"added nothing", domain.TypeKeyCreditsAdded, `{"add":0}`},
		{"added too many", domain.TypeKeyCreditsAdded, `{"add":1000000000001}`},
	} {
		schema := "1"
		if tc.typ == domain.TypeKeyCreated {
			schema = "4"
		}
		b := []byte(`{"id":"x","type":"` + tc.typ + `","schema":` + schema + `,"aggregate":"` + apiKey +
			`","version":2,"time":"2026-11-01T00:00:00Z","actor":"` + alice + `","data":` + tc.data + `}`)
		if e, err := domain.DecodeEvent(b); err == nil || errors.Is(err, domain.ErrUnknownEventType) {
			t.Errorf("%s: got %s, %v, want an error other than %v", tc.name, showData(e.Data), err, domain.ErrUnknownEventType)
		}
	}
	// Team keys (schema 5) are held to the same bounds.
	b := []byte(`{"id":"x","type":"key.created","schema":5,"aggregate":"` + apiKey + `","version":1,"time":"2026-11-01T00:00:00Z","actor":"` + alice +
		`","data":` + keyHead + `"team_id":"tm_01JH6Z3Q8X4N6V2R9T5M7K3B1D","credits":{"remaining":0,"refill":{"amount":1}}}}`)
	if e, err := domain.DecodeEvent(b); err == nil {
		t.Errorf("team key: got %s, nil, want an error", showData(e.Data))
	}
}

// TestEncodeEvent_LimitsOutOfBounds: the writer refuses what the reader
// would refuse.
func TestEncodeEvent_LimitsOutOfBounds(t *testing.T) {
	t.Parallel()
	for _, d := range []domain.EventData{
		domain.KeyRateLimitChanged{RateLimit: &domain.RateLimit{Limit: 5}},
		domain.KeyCreditsChanged{Credits: &domain.Credits{Remaining: 5, Refill: &domain.Refill{Amount: 5}}},
		domain.KeyCreditsAdded{},
	} {
		e := domain.Event{ID: "x", Type: d.EventType(), Schema: 1, Aggregate: apiKey, Version: 2,
			Time: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Actor: alice, Data: d}
		if b, err := domain.EncodeEvent(e); err == nil {
			t.Errorf("EncodeEvent of %s: got %s, nil, want an error", showData(d), b)
		}
	}
}
