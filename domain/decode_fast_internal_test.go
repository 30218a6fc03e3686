package domain

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// frozenSamples returns every frozen event sample under testdata/events.
func frozenSamples(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "events", "v*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no frozen samples: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = bytes.TrimSpace(b)
	}
	return out
}

// fastKeyCreated returns schema 3 key.created events as EncodeEvent
// writes them, with the optional fields in every combination that
// matters.
func fastKeyCreated(t testing.TB) [][]byte {
	t.Helper()
	at := time.Date(2026, 11, 1, 10, 30, 15, 123456789, time.UTC)
	expires := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	base := KeyCreated{UserID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A", SecretHash: Hash{1, 2, 3}, PublicKey: PublicKey{0xdd, 4}}
	variants := []func(*KeyCreated){
		func(*KeyCreated) {},
		func(d *KeyCreated) { d.Name = "ci deploy" },
		func(d *KeyCreated) { d.Name = "clé de déploiement ✓" },
		func(d *KeyCreated) { d.SignedOnly = true; d.ExpiresAt = &expires },
		func(d *KeyCreated) { d.Scopes = []string{"deploy:*", "orders:read"} },
		func(d *KeyCreated) { d.Metadata = json.RawMessage(`{"plan":"pro","tenant":7,"nested":{"a":[1,"}"]}}`) },
		func(d *KeyCreated) {
			d.Name, d.SignedOnly, d.ExpiresAt = "all", true, &expires
			d.Scopes, d.Metadata = []string{"a"}, json.RawMessage(`{"k":"v\"}"}`)
		},
	}
	var out [][]byte
	for i, edit := range variants {
		d := base
		edit(&d)
		e := Event{ID: "01JH6Z3Q8X4N6V2R9T5M7K3B2C", Type: TypeKeyCreated, Schema: SchemaFor(d),
			Aggregate: "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", Version: 1, Time: at, Actor: d.UserID, Data: d}
		if i%2 == 1 {
			e.Prev = Hash{9}
		}
		b, err := EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// sameDecoding fails unless the fast decoder either declines b or decodes
// it exactly as encoding/json does.
func sameDecoding(t *testing.T, b []byte) (fast bool) {
	t.Helper()
	got, ok := decodeFast(b)
	if !ok {
		return false
	}
	want, err := decodeEventStd(b)
	if err != nil {
		t.Fatalf("fast decoder took %s, which the standard one refuses: %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoding %s:\nfast     %#v\nstandard %#v", b, got, want)
	}
	return true
}

// TestDecodeFast_SameAsStandard: on the frozen samples and on key.created
// events as written today, the fast decoder decodes exactly as
// encoding/json does, and it does take the events it is for.
func TestDecodeFast_SameAsStandard(t *testing.T) {
	t.Parallel()
	for name, b := range frozenSamples(t) {
		fast := sameDecoding(t, b)
		if want := strings.HasSuffix(name, filepath.Join("v3", "key.created.json")); fast != want {
			t.Errorf("%s: fast decoder took it: %v, want %v", name, fast, want)
		}
	}
	for _, b := range fastKeyCreated(t) {
		if !sameDecoding(t, b) {
			t.Errorf("fast decoder declined %s", b)
		}
	}
}

// TestDecodeFast_DeclinesWhatItDoesNotKnow: input off the canonical form
// goes to encoding/json, which decides (accepting some, refusing others).
func TestDecodeFast_DeclinesWhatItDoesNotKnow(t *testing.T) {
	t.Parallel()
	b := string(fastKeyCreated(t)[1]) // with a name
	edits := map[string]string{
		"space":              strings.Replace(b, `"name":"ci deploy"`, `"name": "ci deploy"`, 1),
		"escape":             strings.Replace(b, `"ci deploy"`, `"ci\u0020deploy"`, 1),
		"field in caps":      strings.Replace(b, `"name"`, `"Name"`, 1),
		"null":               strings.Replace(b, `"ci deploy"`, `null`, 1),
		"duplicate":          strings.Replace(b, `"name":"ci deploy"`, `"name":"a","name":"ci deploy"`, 1),
		"unknown field":      strings.Replace(b, `"name":"ci deploy"`, `"name":"ci deploy","colour":"red"`, 1),
		"trailing":           b + ` `,
		"garbage after":      b + `x`,
		"leading zero":       strings.Replace(b, `"version":1`, `"version":01`, 1),
		"fraction":           strings.Replace(b, `"version":1`, `"version":1.0`, 1),
		"negative":           strings.Replace(b, `"version":1`, `"version":-1`, 1),
		"zero version":       strings.Replace(b, `"version":1`, `"version":0`, 1),
		"schema 2":           strings.Replace(b, `"schema":3`, `"schema":2`, 1),
		"schema 4":           strings.Replace(b, `"schema":3`, `"schema":4`, 1),
		"request":            strings.TrimSuffix(b, "}") + `,"request":null}`,
		"bad utf-8":          strings.Replace(b, `ci deploy`, "ci \xff", 1),
		"control":            strings.Replace(b, `ci deploy`, "ci\tdeploy", 1),
		"short hash":         strings.Replace(b, `"secret_hash":"01`, `"secret_hash":"`, 1),
		"zero public key":    strings.Replace(b, `"public_key":"dd04`, `"public_key":"0000`, 1),
		"bad time":           strings.Replace(b, `"time":"2026-11-01T10:30:15.123456789Z"`, `"time":"2026-13-01T10:30:15Z"`, 1),
		"truncated":          b[:len(b)-2],
		"bad metadata":       strings.Replace(string(fastKeyCreated(t)[5]), `"tenant":7`, `"tenant":07`, 1),
		"unclosed metadata":  strings.TrimSuffix(string(fastKeyCreated(t)[5]), "}}"),
		"scopes not strings": strings.Replace(string(fastKeyCreated(t)[4]), `"orders:read"`, `7`, 1),
	}
	for name, in := range edits {
		if in == b {
			t.Fatalf("%s: edit changed nothing", name)
		}
		if _, ok := decodeFast([]byte(in)); ok {
			t.Errorf("%s: fast decoder took %s, want it left to encoding/json", name, in)
		}
	}
}

// FuzzDecodeEventFast: whatever the fast decoder takes, encoding/json
// decodes to the same Event.
func FuzzDecodeEventFast(f *testing.F) {
	for _, b := range frozenSamples(f) {
		f.Add(b)
	}
	for _, b := range fastKeyCreated(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sameDecoding(t, in)
	})
}

// BenchmarkDecodeEvent compares the fast decoder with encoding/json on a
// key.created as the ledger writes it.
func BenchmarkDecodeEvent(b *testing.B) {
	in := fastKeyCreated(b)[1]
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeEventStd(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeEvent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeEvent(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
