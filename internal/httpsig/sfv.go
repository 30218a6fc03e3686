package httpsig

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file parses and serializes the parts of RFC 8941 (Structured Field
// Values for HTTP) that Signature-Input, Signature and Content-Digest use:
// Dictionaries whose members are Items or Inner Lists, with Parameters, and
// all bare item types of RFC 8941 (Integer, Decimal, String, Token, Byte
// Sequence, Boolean). RFC 9651's Date and Display String are not accepted.
//
// Two deliberate departures make the parser stricter than RFC 8941 asks:
// a Dictionary or Parameters with a repeated key is an error (RFC 8941 lets
// the last one win, which would let two readers of one header disagree), and
// the input is bounded by the caller.

type itemKind uint8

const (
	kindInteger itemKind = iota + 1
	kindDecimal
	kindString
	kindToken
	kindBytes
	kindBoolean
)

// bareItem is one bare item. Integers and booleans (0 or 1) are in num,
// decimals too, in thousandths, so that they round-trip exactly; strings and
// tokens in str; byte sequences in bytes.
type bareItem struct {
	kind  itemKind
	num   int64
	str   string
	bytes []byte
}

type param struct {
	key   string
	value bareItem
}

type item struct {
	value  bareItem
	params []param
}

// member is one Dictionary member: an Item, or an Inner List when inner is
// set (then value is unused and params belong to the list).
type member struct {
	key    string
	inner  bool
	list   []item
	value  bareItem
	params []param
}

type dictionary []member

func (d dictionary) get(key string) (member, bool) {
	for _, m := range d {
		if m.key == key {
			return m, true
		}
	}
	return member{}, false
}

func paramValue(ps []param, key string) (bareItem, bool) {
	for _, p := range ps {
		if p.key == key {
			return p.value, true
		}
	}
	return bareItem{}, false
}

const (
	maxInteger = 999_999_999_999_999
	maxDecimal = 999_999_999_999_999 // thousandths: 12 integer and 3 fractional digits
)

var errSFV = errors.New("invalid structured field")

// sfParser walks one field value. Errors name the offset, never echo input.
type sfParser struct {
	s   string
	pos int
}

func (p *sfParser) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errSFV, what, p.pos)
}

func (p *sfParser) eof() bool { return p.pos >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.pos]
}

func (p *sfParser) skipSP() {
	for !p.eof() && p.s[p.pos] == ' ' {
		p.pos++
	}
}

func (p *sfParser) skipOWS() {
	for !p.eof() && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// parseDictionary parses a whole field value as a Dictionary (RFC 8941
// section 4.2 and 4.2.2). An empty value is an empty Dictionary.
func parseDictionary(s string) (dictionary, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var d dictionary
	var seen keySet
	for !p.eof() {
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		if seen.add(key) {
			return nil, p.fail("repeated dictionary key")
		}
		m := member{key: key}
		if p.peek() == '=' {
			p.pos++
			if p.peek() == '(' {
				m.inner = true
				if m.list, m.params, err = p.parseInnerList(); err != nil {
					return nil, err
				}
			} else if m.value, m.params, err = p.parseItem(); err != nil {
				return nil, err
			}
		} else {
			m.value = bareItem{kind: kindBoolean, num: 1}
			if m.params, err = p.parseParams(); err != nil {
				return nil, err
			}
		}
		d = append(d, m)
		p.skipOWS()
		if p.eof() {
			break
		}
		if p.s[p.pos] != ',' {
			return nil, p.fail("expected comma")
		}
		p.pos++
		p.skipOWS()
		if p.eof() {
			return nil, p.fail("trailing comma")
		}
	}
	return d, nil
}

// keySet finds repeated keys: by a linear scan while there are few, as
// there are in any honest field, and by a map past that, so that a field of
// thousands of keys costs linear time.
type keySet struct {
	few  []string
	many map[string]struct{}
}

// add adds key and reports whether it was already there.
func (ks *keySet) add(key string) bool {
	if ks.many != nil {
		if _, ok := ks.many[key]; ok {
			return true
		}
		ks.many[key] = struct{}{}
		return false
	}
	for _, k := range ks.few {
		if k == key {
			return true
		}
	}
	ks.few = append(ks.few, key)
	if len(ks.few) > 16 {
		ks.many = make(map[string]struct{}, 2*len(ks.few))
		for _, k := range ks.few {
			ks.many[k] = struct{}{}
		}
		ks.few = nil
	}
	return false
}

func (p *sfParser) parseInnerList() ([]item, []param, error) {
	if p.peek() != '(' {
		return nil, nil, p.fail("expected inner list")
	}
	p.pos++
	var list []item
	for !p.eof() {
		p.skipSP()
		if p.peek() == ')' {
			p.pos++
			params, err := p.parseParams()
			if err != nil {
				return nil, nil, err
			}
			return list, params, nil
		}
		v, params, err := p.parseItem()
		if err != nil {
			return nil, nil, err
		}
		list = append(list, item{value: v, params: params})
		if c := p.peek(); c != ' ' && c != ')' {
			return nil, nil, p.fail("expected space or closing parenthesis")
		}
	}
	return nil, nil, p.fail("unterminated inner list")
}

func (p *sfParser) parseItem() (bareItem, []param, error) {
	v, err := p.parseBareItem()
	if err != nil {
		return bareItem{}, nil, err
	}
	params, err := p.parseParams()
	if err != nil {
		return bareItem{}, nil, err
	}
	return v, params, nil
}

func (p *sfParser) parseParams() ([]param, error) {
	var params []param
	var seen keySet
	for p.peek() == ';' {
		p.pos++
		p.skipSP()
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		if seen.add(key) {
			return nil, p.fail("repeated parameter")
		}
		v := bareItem{kind: kindBoolean, num: 1}
		if p.peek() == '=' {
			p.pos++
			if v, err = p.parseBareItem(); err != nil {
				return nil, err
			}
		}
		params = append(params, param{key: key, value: v})
	}
	return params, nil
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }

func isKeyChar(c byte) bool {
	return isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*'
}

// isTChar reports whether c is a tchar of RFC 9110 section 5.6.2.
func isTChar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (p *sfParser) parseKey() (string, error) {
	if c := p.peek(); !isLCAlpha(c) && c != '*' {
		return "", p.fail("expected key")
	}
	start := p.pos
	for !p.eof() && isKeyChar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos], nil
}

func (p *sfParser) parseBareItem() (bareItem, error) {
	switch c := p.peek(); {
	case c == '-' || isDigit(c):
		return p.parseNumber()
	case c == '"':
		return p.parseString()
	case c == ':':
		return p.parseBytes()
	case c == '?':
		return p.parseBoolean()
	case isAlpha(c) || c == '*':
		return p.parseToken(), nil
	default:
		return bareItem{}, p.fail("expected item")
	}
}

// parseNumber follows RFC 8941 section 4.2.4.
func (p *sfParser) parseNumber() (bareItem, error) {
	neg := false
	if p.peek() == '-' {
		neg = true
		p.pos++
	}
	if !isDigit(p.peek()) {
		return bareItem{}, p.fail("expected digit")
	}
	start := p.pos
	dot := -1
	for !p.eof() {
		c := p.s[p.pos]
		if isDigit(c) {
			p.pos++
		} else if c == '.' && dot < 0 {
			if p.pos-start > 12 {
				return bareItem{}, p.fail("decimal too long")
			}
			dot = p.pos
			p.pos++
		} else {
			break
		}
		if dot < 0 && p.pos-start > 15 {
			return bareItem{}, p.fail("integer too long")
		}
		if dot >= 0 && p.pos-start > 16 {
			return bareItem{}, p.fail("decimal too long")
		}
	}
	digits := p.s[start:p.pos]
	if dot < 0 {
		n, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return bareItem{}, p.fail("bad integer")
		}
		if neg {
			n = -n
		}
		return bareItem{kind: kindInteger, num: n}, nil
	}
	intPart, frac := p.s[start:dot], p.s[dot+1:p.pos]
	if len(frac) == 0 {
		return bareItem{}, p.fail("decimal ends with a dot")
	}
	if len(frac) > 3 {
		return bareItem{}, p.fail("decimal has more than three fractional digits")
	}
	n, err := strconv.ParseInt(intPart+frac+strings.Repeat("0", 3-len(frac)), 10, 64)
	if err != nil {
		return bareItem{}, p.fail("bad decimal")
	}
	if neg {
		n = -n
	}
	return bareItem{kind: kindDecimal, num: n}, nil
}

func (p *sfParser) parseString() (bareItem, error) {
	p.pos++ // opening quote
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.pos]
		p.pos++
		switch {
		case c == '\\':
			if p.eof() {
				return bareItem{}, p.fail("unterminated string")
			}
			c = p.s[p.pos]
			if c != '"' && c != '\\' {
				return bareItem{}, p.fail("bad escape in string")
			}
			p.pos++
			b.WriteByte(c)
		case c == '"':
			return bareItem{kind: kindString, str: b.String()}, nil
		case c < 0x20 || c > 0x7e:
			return bareItem{}, p.fail("bad character in string")
		default:
			b.WriteByte(c)
		}
	}
	return bareItem{}, p.fail("unterminated string")
}

func (p *sfParser) parseToken() bareItem {
	start := p.pos
	p.pos++ // first character checked by the caller
	for !p.eof() {
		if c := p.s[p.pos]; !isTChar(c) && c != ':' && c != '/' {
			break
		}
		p.pos++
	}
	return bareItem{kind: kindToken, str: p.s[start:p.pos]}
}

func isBase64Char(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '='
}

// parseBytes accepts missing padding and non-zero pad bits, as RFC 8941
// section 4.2.7 recommends, but no "=" except at the end.
func (p *sfParser) parseBytes() (bareItem, error) {
	p.pos++ // opening colon
	start := p.pos
	for !p.eof() && isBase64Char(p.s[p.pos]) {
		p.pos++
	}
	if p.peek() != ':' {
		return bareItem{}, p.fail("unterminated byte sequence")
	}
	enc := p.s[start:p.pos]
	p.pos++
	unpadded := strings.TrimRight(enc, "=")
	if len(enc)-len(unpadded) > 2 || strings.IndexByte(unpadded, '=') >= 0 {
		return bareItem{}, p.fail("bad padding in byte sequence")
	}
	b, err := base64.RawStdEncoding.DecodeString(unpadded)
	if err != nil {
		return bareItem{}, p.fail("bad base64 in byte sequence")
	}
	if b == nil {
		b = []byte{}
	}
	return bareItem{kind: kindBytes, bytes: b}, nil
}

func (p *sfParser) parseBoolean() (bareItem, error) {
	p.pos++ // question mark
	switch p.peek() {
	case '1':
		p.pos++
		return bareItem{kind: kindBoolean, num: 1}, nil
	case '0':
		p.pos++
		return bareItem{kind: kindBoolean, num: 0}, nil
	}
	return bareItem{}, p.fail("bad boolean")
}

// The serializers below follow RFC 8941 section 4.1. They assume values that
// came from the parser or were built to be valid; serializeString and
// serializeBareItem are the only ones fed from outside, and they are given
// values checked by the caller.

func serializeDictionary(d dictionary) string {
	var b strings.Builder
	for i, m := range d {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.key)
		switch {
		case m.inner:
			b.WriteByte('=')
			writeInnerList(&b, m.list, m.params)
		case m.value.kind == kindBoolean && m.value.num == 1:
			writeParams(&b, m.params)
		default:
			b.WriteByte('=')
			writeBareItem(&b, m.value)
			writeParams(&b, m.params)
		}
	}
	return b.String()
}

func serializeInnerList(list []item, params []param) string {
	var b strings.Builder
	writeInnerList(&b, list, params)
	return b.String()
}

func writeInnerList(b *strings.Builder, list []item, params []param) {
	b.WriteByte('(')
	for i, it := range list {
		if i > 0 {
			b.WriteByte(' ')
		}
		writeBareItem(b, it.value)
		writeParams(b, it.params)
	}
	b.WriteByte(')')
	writeParams(b, params)
}

func writeParams(b *strings.Builder, params []param) {
	for _, p := range params {
		b.WriteByte(';')
		b.WriteString(p.key)
		if p.value.kind == kindBoolean && p.value.num == 1 {
			continue
		}
		b.WriteByte('=')
		writeBareItem(b, p.value)
	}
}

func writeBareItem(b *strings.Builder, v bareItem) {
	switch v.kind {
	case kindInteger:
		b.WriteString(strconv.FormatInt(v.num, 10))
	case kindDecimal:
		n := v.num
		if n < 0 {
			b.WriteByte('-')
			n = -n
		}
		b.WriteString(strconv.FormatInt(n/1000, 10))
		b.WriteByte('.')
		frac := strings.TrimRight(fmt.Sprintf("%03d", n%1000), "0")
		if frac == "" {
			frac = "0"
		}
		b.WriteString(frac)
	case kindString:
		writeString(b, v.str)
	case kindToken:
		b.WriteString(v.str)
	case kindBytes:
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString(v.bytes))
		b.WriteByte(':')
	case kindBoolean:
		if v.num == 1 {
			b.WriteString("?1")
		} else {
			b.WriteString("?0")
		}
	}
}

func writeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// validSFString reports whether s can be an sf-string: printable ASCII only.
func validSFString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
