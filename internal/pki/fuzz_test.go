package pki_test

import (
	"encoding/asn1"
	"reflect"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/pki"
)

// More seeds are in testdata/fuzz/FuzzParseSubject.

func FuzzParseSubject(f *testing.F) {
	f.Add("/C=DE/ST=Berlin/L=Berlin/O=Example GmbH/OU=Ops/CN=example.com/emailAddress=ops@example.com/serialNumber=42")
	f.Add(`/O=A\/B/CN=a\+b\\c`)
	f.Add("/DC=org/DC=example/UID=42+CN=Jane Doe")
	f.Add("/2.5.4.3=x/1.3.6.1.4.1.1=y/")
	f.Add("/CN=a+")
	f.Add(`/CN=\`)
	f.Fuzz(func(t *testing.T, s string) {
		seq, err := pki.ParseSubject(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "parse subject") {
				t.Fatalf("error: got %q, want it to start with \"parse subject\"", err)
			}
			if seq != nil {
				t.Fatalf("failure: got %v, want no subject", seq)
			}
			return
		}
		if len(seq) == 0 {
			t.Fatalf("ParseSubject(%q): got an empty subject and no error", s)
		}
		for _, rdn := range seq {
			if len(rdn) == 0 {
				t.Fatalf("ParseSubject(%q): got an empty RDN", s)
			}
		}
		if _, err := asn1.Marshal(seq); err != nil {
			t.Fatalf("ParseSubject(%q): the subject does not encode: %v", s, err)
		}
		formatted := pki.FormatSubject(seq)
		again, err := pki.ParseSubject(formatted)
		if err != nil {
			t.Fatalf("ParseSubject(FormatSubject(%q) = %q): %v", s, formatted, err)
		}
		if !reflect.DeepEqual(again, seq) {
			t.Fatalf("round trip of %q through %q: got %v, want %v", s, formatted, again, seq)
		}
	})
}
