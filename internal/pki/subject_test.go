package pki_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"reflect"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/pki"
)

func TestParseSubject(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		want     string // FormatSubject of the result
		rdns     []int  // attributes per RDN
	}{
		{"AllCommon", "/C=DE/ST=Berlin/L=Berlin/O=Example GmbH/OU=Ops/CN=example.com/emailAddress=ops@example.com/serialNumber=42",
			"/C=DE/ST=Berlin/L=Berlin/O=Example GmbH/OU=Ops/CN=example.com/emailAddress=ops@example.com/serialNumber=42",
			[]int{1, 1, 1, 1, 1, 1, 1, 1}},
		{"OrderKept", "/CN=x/O=y/C=US", "/CN=x/O=y/C=US", []int{1, 1, 1}},
		{"EscapedSlash", `/O=A\/B/CN=x`, `/O=A\/B/CN=x`, []int{1, 1}},
		{"EscapedPlus", `/CN=a\+b`, `/CN=a\+b`, []int{1}},
		{"EscapedBackslash", `/CN=a\\b`, `/CN=a\\b`, []int{1}},
		{"EscapedOrdinary", `/CN=\a\b`, `/CN=ab`, []int{1}},
		{"EqualsInValue", "/CN=a=b", "/CN=a=b", []int{1}},
		{"MultiValued", "/DC=org/DC=example/UID=42+CN=Jane Doe", "/DC=org/DC=example/UID=42+CN=Jane Doe", []int{1, 1, 2}},
		{"TrailingSlash", "/CN=x/", "/CN=x", []int{1}},
		{"CaseInsensitive", "/cn=x/o=y/EMAILADDRESS=a@b", "/CN=x/O=y/emailAddress=a@b", []int{1, 1, 1}},
		{"LongNames", "/countryName=FR/organizationName=Org/commonName=host", "/C=FR/O=Org/CN=host", []int{1, 1, 1}},
		{"KnownOID", "/2.5.4.3=oid", "/CN=oid", []int{1}},
		{"UnknownOID", "/1.3.6.1.4.1.99999.1=x", "/1.3.6.1.4.1.99999.1=x", []int{1}},
		{"UTF8", "/CN=Jürgen 日本", "/CN=Jürgen 日本", []int{1}},
		{"RepeatedOU", "/OU=a/OU=b", "/OU=a/OU=b", []int{1, 1}},
		{"Spaces", "/CN= padded ", "/CN= padded ", []int{1}},
		{"MaxCN", "/CN=" + strings.Repeat("x", 64), "/CN=" + strings.Repeat("x", 64), []int{1}},
		{"Others", "/street=Main St 1/postalCode=10115/title=CTO/SN=Doe/GN=Jane",
			"/street=Main St 1/postalCode=10115/title=CTO/SN=Doe/GN=Jane", []int{1, 1, 1, 1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seq, err := pki.ParseSubject(c.in)
			if err != nil {
				t.Fatalf("ParseSubject(%q): %v", c.in, err)
			}
			if got := pki.FormatSubject(seq); got != c.want {
				t.Errorf("FormatSubject: got %q, want %q", got, c.want)
			}
			var sizes []int
			for _, rdn := range seq {
				sizes = append(sizes, len(rdn))
			}
			if !reflect.DeepEqual(sizes, c.rdns) {
				t.Errorf("attributes per RDN: got %v, want %v", sizes, c.rdns)
			}
			if _, err := asn1.Marshal(seq); err != nil {
				t.Errorf("marshal: %v", err)
			}
		})
	}
}

func TestParseSubject_Values(t *testing.T) {
	t.Parallel()
	seq, err := pki.ParseSubject(`/C=DE/O=A\/B+OU=x\+y/CN=ünï/emailAddress=a@b.example`)
	if err != nil {
		t.Fatal(err)
	}
	// Decode through crypto/x509 to see the values as a certificate user
	// would, string types included.
	raw, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	var back pkix.RDNSequence
	if _, err := asn1.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	var name pkix.Name
	name.FillFromRDNSequence(&back)
	if got, want := name.Country, []string{"DE"}; !reflect.DeepEqual(got, want) {
		t.Errorf("C: got %v, want %v", got, want)
	}
	if got, want := name.Organization, []string{"A/B"}; !reflect.DeepEqual(got, want) {
		t.Errorf("O: got %v, want %v", got, want)
	}
	if got, want := name.OrganizationalUnit, []string{"x+y"}; !reflect.DeepEqual(got, want) {
		t.Errorf("OU: got %v, want %v", got, want)
	}
	if got, want := name.CommonName, "ünï"; got != want {
		t.Errorf("CN: got %q, want %q", got, want)
	}
	// The string types RFC 5280 asks for: PrintableString for C,
	// IA5String for emailAddress, UTF8String where needed.
	tags := map[string]int{}
	for _, rdn := range seq {
		for _, atv := range rdn {
			b, err := asn1.Marshal(atv)
			if err != nil {
				t.Fatal(err)
			}
			var decoded struct {
				Type  asn1.ObjectIdentifier
				Value asn1.RawValue
			}
			if _, err := asn1.Unmarshal(b, &decoded); err != nil {
				t.Fatal(err)
			}
			tags[decoded.Type.String()] = decoded.Value.Tag
		}
	}
	for oid, want := range map[string]int{
		"2.5.4.6":              asn1.TagPrintableString,
		"2.5.4.3":              asn1.TagUTF8String,
		"1.2.840.113549.1.9.1": asn1.TagIA5String,
	} {
		if tags[oid] != want {
			t.Errorf("string type of %s: got tag %d, want %d", oid, tags[oid], want)
		}
	}
}

func TestParseSubject_Errors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in, want string }{
		{"Empty", "", "empty"},
		{"NoLeadingSlash", "CN=x", "want /type0=value0"},
		{"OnlySlash", "/", "no attributes"},
		{"NoEquals", "/CN", "missing '='"},
		{"EmptyValue", "/CN=", "no value"},
		{"EmptyType", "/=x", "missing attribute type"},
		{"UnknownType", "/XX=y", "unknown attribute type"},
		{"CountryTooLong", "/C=DEU", "want 2"},
		{"CountryTooShort", "/C=D", "want 2"},
		{"CountryNotPrintable", "/C=D*", "not allowed"},
		{"TrailingPlus", "/CN=a+", "after the final '+'"},
		{"RepeatedInRDN", "/CN=a+CN=b", "twice"},
		{"EmailNotASCII", "/emailAddress=ü@example.com", "not ASCII"},
		{"TrailingEscape", `/CN=a\`, "escape character at the end"},
		{"SerialNotPrintable", "/serialNumber=a_b", "not allowed"},
		{"CNTooLong", "/CN=" + strings.Repeat("x", 65), "at most 64"},
		{"ControlCharacter", "/CN=a\x00b", "control character"},
		{"InvalidUTF8", "/CN=\xff", "UTF-8"},
		{"SlashInType", "/CN/O=x", "unknown attribute type"},
		{"BadOID", "/3.1=x", "unknown attribute type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seq, err := pki.ParseSubject(c.in)
			if err == nil {
				t.Fatalf("ParseSubject(%q): got %v, want an error", c.in, seq)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "parse subject") {
				t.Errorf("error: got %q, want it to start with \"parse subject\" and contain %q", err, c.want)
			}
		})
	}
}

// TestParseSubject_OpenSSL compares the parser with openssl's own -subj on
// subjects both accept, through the subject each CSR ends up with.
func TestParseSubject_OpenSSL(t *testing.T) {
	t.Parallel()
	needOpenSSL(t)
	key := mustKey(t, pki.ECDSA, 0)
	keyPath := keyFile(t, key)
	subjects := []string{
		"/C=DE/ST=Berlin/L=Berlin/O=Example GmbH/OU=Ops/CN=example.com/emailAddress=ops@example.com/serialNumber=42",
		`/O=A\/B/CN=x`,
		`/CN=a\+b`,
		`/CN=a\\b`,
		"/CN=a=b",
		"/DC=org/DC=example/UID=42+CN=Jane Doe",
		"/CN=x/",
		"/CN=Jürgen 日本",
		"/2.5.4.3=oid/O=Org",
		"/CN=x/O=y/C=US",
		"/CN=a,b;c",
	}
	for _, s := range subjects {
		t.Run(s, func(t *testing.T) {
			dir := t.TempDir()
			theirs := dir + "/openssl.csr"
			openssl(t, "req", "-new", "-utf8", "-key", keyPath, "-subj", s, "-out", theirs)
			seq, err := pki.ParseSubject(s)
			if err != nil {
				t.Fatalf("ParseSubject(%q): %v", s, err)
			}
			der, err := pki.NewCSR(key, seq)
			if err != nil {
				t.Fatal(err)
			}
			ours := writeTemp(t, "ours.csr", pki.EncodeCSR(der))
			show := func(path string) string {
				return openssl(t, "req", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253", "-nameopt", "-esc_msb")
			}
			if got, want := show(ours), show(theirs); got != want {
				t.Errorf("subject: got %q, openssl made %q", got, want)
			}
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Error(err)
			}
		})
	}
}
