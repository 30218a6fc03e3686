package pki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// stringKind is how an attribute's value is encoded in ASN.1.
type stringKind int

const (
	// directoryString: PrintableString when the characters allow it,
	// UTF8String otherwise (encoding/asn1's choice for a Go string).
	directoryString stringKind = iota
	// printableString: only PrintableString characters are allowed.
	printableString
	// ia5String: ASCII, encoded as IA5String.
	ia5String
)

// attribute is a distinguished-name attribute ParseSubject knows by name.
type attribute struct {
	short, long string
	oid         asn1.ObjectIdentifier
	kind        stringKind
	min, max    int // length in characters; max 0: unbounded
}

// attributes are the names openssl's -subj accepts that matter for TLS
// certificates, with the length bounds openssl enforces (RFC 5280's ub-*).
var attributes = []attribute{
	{"C", "countryName", asn1.ObjectIdentifier{2, 5, 4, 6}, printableString, 2, 2},
	{"ST", "stateOrProvinceName", asn1.ObjectIdentifier{2, 5, 4, 8}, directoryString, 1, 128},
	{"L", "localityName", asn1.ObjectIdentifier{2, 5, 4, 7}, directoryString, 1, 128},
	{"street", "streetAddress", asn1.ObjectIdentifier{2, 5, 4, 9}, directoryString, 1, 128},
	{"postalCode", "postalCode", asn1.ObjectIdentifier{2, 5, 4, 17}, directoryString, 1, 40},
	{"O", "organizationName", asn1.ObjectIdentifier{2, 5, 4, 10}, directoryString, 1, 64},
	{"OU", "organizationalUnitName", asn1.ObjectIdentifier{2, 5, 4, 11}, directoryString, 1, 64},
	{"CN", "commonName", asn1.ObjectIdentifier{2, 5, 4, 3}, directoryString, 1, 64},
	{"title", "title", asn1.ObjectIdentifier{2, 5, 4, 12}, directoryString, 1, 64},
	{"SN", "surname", asn1.ObjectIdentifier{2, 5, 4, 4}, directoryString, 1, 0},
	{"GN", "givenName", asn1.ObjectIdentifier{2, 5, 4, 42}, directoryString, 1, 0},
	{"serialNumber", "serialNumber", asn1.ObjectIdentifier{2, 5, 4, 5}, printableString, 1, 64},
	{"emailAddress", "emailAddress", asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, ia5String, 1, 128},
	{"DC", "domainComponent", asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, ia5String, 1, 0},
	{"UID", "userId", asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, directoryString, 1, 0},
}

// attributeByName indexes attributes by lower-case short and long name.
var attributeByName = func() map[string]*attribute {
	m := make(map[string]*attribute)
	for i := range attributes {
		a := &attributes[i]
		m[strings.ToLower(a.short)] = a
		m[strings.ToLower(a.long)] = a
	}
	return m
}()

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// ParseSubject parses a distinguished name in the syntax of openssl's -subj
// option: "/type0=value0/type1=value1/...", in the order given. A backslash
// escapes the next character ("\/", "\+", "\\"); "+" joins attributes into
// one multi-valued RDN ("/DC=org/UID=42+CN=Jane Doe"). Types are the short
// or long names of C, ST, L, street, postalCode, O, OU, CN, title, SN, GN,
// serialNumber, emailAddress, DC and UID (any case), or dotted OIDs.
//
// Stricter than openssl, it refuses empty values, control characters,
// repeated types within one RDN and values outside their type's length
// limit or character set (C is two PrintableString characters;
// serialNumber is a PrintableString; emailAddress and DC are ASCII).
func ParseSubject(s string) (pkix.RDNSequence, error) {
	if s == "" {
		return nil, errors.New("parse subject: empty")
	}
	if s[0] != '/' {
		return nil, fmt.Errorf("parse subject %q: want /type0=value0/type1=value1/..., e.g. /C=DE/O=Example/CN=example.com", s)
	}
	var (
		seq pkix.RDNSequence
		rdn pkix.RelativeDistinguishedNameSET
	)
	i := 1
	for i < len(s) {
		typ, next, sep, err := scan(s, i, "=")
		if err != nil {
			return nil, fmt.Errorf("parse subject: %w", err)
		}
		if sep != '=' {
			return nil, fmt.Errorf("parse subject: missing '=' after %q", typ)
		}
		value, next, sep, err := scan(s, next+1, "/+")
		if err != nil {
			return nil, fmt.Errorf("parse subject: %w", err)
		}
		atv, err := attributeValue(typ, value)
		if err != nil {
			return nil, fmt.Errorf("parse subject: %w", err)
		}
		for _, other := range rdn {
			if other.Type.Equal(atv.Type) {
				return nil, fmt.Errorf("parse subject: %s appears twice in one multi-valued RDN", typ)
			}
		}
		rdn = append(rdn, atv)
		i = next + 1
		if sep == '+' {
			if i >= len(s) {
				return nil, errors.New("parse subject: nothing after the final '+'")
			}
			continue
		}
		seq = append(seq, rdn)
		rdn = nil
	}
	if len(seq) == 0 {
		return nil, errors.New("parse subject: no attributes")
	}
	return seq, nil
}

// scan reads s from i up to the first unescaped byte in stops, removing
// escapes. It returns the text, the index of the stop byte (len(s) at the
// end) and the stop byte (0 at the end).
func scan(s string, i int, stops string) (string, int, byte, error) {
	var b strings.Builder
	for ; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			i++
			if i == len(s) {
				return "", 0, 0, errors.New("escape character at the end")
			}
			b.WriteByte(s[i])
			continue
		}
		if strings.IndexByte(stops, c) >= 0 {
			return b.String(), i, c, nil
		}
		b.WriteByte(c)
	}
	return b.String(), i, 0, nil
}

// attributeValue checks value against typ's rules and encodes it.
func attributeValue(typ, value string) (pkix.AttributeTypeAndValue, error) {
	a, err := lookupAttribute(typ)
	if err != nil {
		return pkix.AttributeTypeAndValue{}, err
	}
	if value == "" {
		return pkix.AttributeTypeAndValue{}, fmt.Errorf("%s has no value", typ)
	}
	if !utf8.ValidString(value) {
		return pkix.AttributeTypeAndValue{}, fmt.Errorf("%s: value is not valid UTF-8", typ)
	}
	for _, r := range value {
		if unicode.IsControl(r) {
			return pkix.AttributeTypeAndValue{}, fmt.Errorf("%s: value contains control character %U", typ, r)
		}
		switch {
		case a.kind == printableString && !isPrintable(r):
			return pkix.AttributeTypeAndValue{}, fmt.Errorf("%s: %q is not allowed (A-Z a-z 0-9 space and '()+,-./:=? only)", typ, r)
		case a.kind == ia5String && r >= utf8.RuneSelf:
			return pkix.AttributeTypeAndValue{}, fmt.Errorf("%s: %q is not ASCII", typ, r)
		}
	}
	if n := utf8.RuneCountInString(value); n < a.min || (a.max > 0 && n > a.max) {
		if a.min == a.max {
			return pkix.AttributeTypeAndValue{}, fmt.Errorf("%s: %q has %d characters, want %d", typ, value, n, a.min)
		}
		return pkix.AttributeTypeAndValue{}, fmt.Errorf("%s: value has %d characters, want at most %d", typ, n, a.max)
	}
	atv := pkix.AttributeTypeAndValue{Type: a.oid, Value: value}
	if a.kind == ia5String {
		atv.Value = asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagIA5String, Bytes: []byte(value)}
	}
	return atv, nil
}

// lookupAttribute finds a known attribute by name, or makes one for a
// dotted OID.
func lookupAttribute(typ string) (*attribute, error) {
	if a, ok := attributeByName[strings.ToLower(typ)]; ok {
		return a, nil
	}
	if oid, ok := parseOID(typ); ok {
		for i := range attributes {
			if attributes[i].oid.Equal(oid) {
				return &attributes[i], nil
			}
		}
		return &attribute{short: typ, oid: oid, kind: directoryString, min: 1}, nil
	}
	if typ == "" {
		return nil, errors.New("missing attribute type before '='")
	}
	return nil, fmt.Errorf("unknown attribute type %q (want C, ST, L, O, OU, CN, emailAddress, serialNumber, ... or a dotted OID)", typ)
}

// parseOID parses a dotted object identifier such as "2.5.4.3".
func parseOID(s string) (asn1.ObjectIdentifier, bool) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, false
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		if p == "" || len(p) > 1 && p[0] == '0' {
			return nil, false
		}
		n, err := strconv.ParseUint(p, 10, 31)
		if err != nil {
			return nil, false
		}
		oid[i] = int(n)
	}
	if oid[0] > 2 || oid[0] < 2 && oid[1] > 39 {
		return nil, false
	}
	return oid, true
}

// isPrintable reports whether r is in ASN.1 PrintableString's alphabet.
func isPrintable(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		strings.ContainsRune(" '()+,-./:=?", r)
}

// FormatSubject writes a distinguished name in the syntax ParseSubject
// reads, escaping '/', '+' and '\' in values, so that
// ParseSubject(FormatSubject(s)) gives s back for anything ParseSubject
// returned. Known attribute types get their short names, others their OID.
func FormatSubject(seq pkix.RDNSequence) string {
	var b strings.Builder
	for _, rdn := range seq {
		b.WriteByte('/')
		for j, atv := range rdn {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(attributeName(atv.Type))
			b.WriteByte('=')
			var v string
			switch val := atv.Value.(type) {
			case string:
				v = val
			case asn1.RawValue:
				v = string(val.Bytes)
			default:
				v = fmt.Sprint(val)
			}
			for k := 0; k < len(v); k++ {
				if c := v[k]; c == '/' || c == '+' || c == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(v[k])
			}
		}
	}
	return b.String()
}

// attributeName is the short name of a known attribute type, or the OID.
func attributeName(oid asn1.ObjectIdentifier) string {
	for i := range attributes {
		if attributes[i].oid.Equal(oid) {
			return attributes[i].short
		}
	}
	return oid.String()
}

// commonNames returns the values of a subject's CN attributes.
func commonNames(seq pkix.RDNSequence) []string {
	var names []string
	for _, rdn := range seq {
		for _, atv := range rdn {
			if s, ok := atv.Value.(string); ok && atv.Type.Equal(oidCommonName) {
				names = append(names, s)
			}
		}
	}
	return names
}
