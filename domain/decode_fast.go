package domain

import (
	"crypto/sha256"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// decodeFast decodes the commonest events exactly as EncodeEvent writes
// them (json.Marshal of the envelope: fields in order, no spaces, no
// escapes), without encoding/json's reflection: replaying a log is mostly
// decoding key.created events. It returns false for anything else - a
// type it does not handle, a field out of place, an escape, a number or
// literal it does not expect, null - and DecodeEvent then decodes the
// bytes with encoding/json. So it never decides anything on its own:
// what it accepts, the standard decoding accepts and decodes to the same
// Event (FuzzDecodeEventFast checks this).
func decodeFast(b []byte) (Event, bool) {
	s := scanner{b: b, ok: true}
	var e Event
	s.lit(`{"id":"`)
	e.ID = s.str()
	s.lit(`","type":"`)
	typ := s.strBytes()
	s.lit(`","schema":`)
	schema := s.uint(9)
	s.lit(`,"aggregate":"`)
	e.Aggregate = s.str()
	s.lit(`","version":`)
	e.Version = s.uint(19)
	s.lit(`,"time":`)
	e.Time = s.time().UTC()
	s.lit(`,"actor":"`)
	e.Actor = s.str()
	s.lit(`"`)
	if s.maybe(`,"prev":"`) {
		e.Prev = s.hash()
		s.lit(`"`)
	}
	s.lit(`,"data":`)
	e.Schema = int(schema)
	switch {
	case string(typ) == TypeKeyCreated && schema == KeyPolicySchema:
		e.Type = TypeKeyCreated
		d := s.keyCreatedV3()
		if d.PublicKey.IsZero() {
			return Event{}, false
		}
		e.Data = d
	default:
		return Event{}, false
	}
	s.lit(`}`)
	if !s.ok || s.i != len(b) || checkEnvelope(e) != nil {
		return Event{}, false
	}
	e.Hash = sha256.Sum256(b)
	return e, true
}

// keyCreatedV3 reads a schema 3 key.created payload (keyCreatedV3's
// fields, in order) and upcasts it.
func (s *scanner) keyCreatedV3() KeyCreated {
	var d KeyCreated
	s.lit(`{"user_id":"`)
	d.UserID = s.str()
	s.lit(`"`)
	if s.maybe(`,"name":"`) {
		d.Name = s.str()
		s.lit(`"`)
	}
	s.lit(`,"secret_hash":"`)
	d.SecretHash = s.hash()
	s.lit(`","public_key":"`)
	d.PublicKey = PublicKey(s.hash())
	s.lit(`"`)
	if s.maybe(`,"signed_only":`) {
		switch {
		case s.maybe(`true`):
			d.SignedOnly = true
		case s.maybe(`false`):
		default:
			s.ok = false
		}
	}
	if s.maybe(`,"expires_at":`) {
		t := s.time()
		d.ExpiresAt = &t
	}
	if s.maybe(`,"scopes":[`) {
		d.Scopes = []string{} // as encoding/json makes of [], not nil
		for s.ok && !s.maybe(`]`) {
			if len(d.Scopes) > 0 {
				s.lit(`,`)
			}
			s.lit(`"`)
			d.Scopes = append(d.Scopes, s.str())
			s.lit(`"`)
		}
	}
	if s.maybe(`,"metadata":`) {
		d.Metadata = s.object()
	}
	s.lit(`}`)
	return d
}

// scanner reads canonical JSON left to right. The first thing that does
// not fit clears ok; everything read after that is garbage and ignored.
type scanner struct {
	b  []byte
	i  int
	ok bool
}

// lit consumes l, which must come next.
func (s *scanner) lit(l string) {
	if !s.maybe(l) {
		s.ok = false
	}
}

// maybe consumes l if it comes next.
func (s *scanner) maybe(l string) bool {
	if !s.ok || len(s.b)-s.i < len(l) || string(s.b[s.i:s.i+len(l)]) != l {
		return false
	}
	s.i += len(l)
	return true
}

// strBytes reads the inside of a string up to its closing quote (not
// consumed). Only strings that decode to their own bytes are taken: no
// escape, no control character, valid UTF-8.
func (s *scanner) strBytes() []byte {
	if !s.ok {
		return nil
	}
	start, ascii := s.i, true
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		if c == '"' {
			break
		}
		if c < 0x20 || c == '\\' {
			s.ok = false
			return nil
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if s.i == len(s.b) || (!ascii && !utf8.Valid(s.b[start:s.i])) {
		s.ok = false
		return nil
	}
	return s.b[start:s.i]
}

// str is strBytes as a string.
func (s *scanner) str() string { return string(s.strBytes()) }

// uint reads a JSON number that is a non-negative integer of at most
// digits digits (no fraction, no exponent, no leading zero).
func (s *scanner) uint(digits int) uint64 {
	if !s.ok {
		return 0
	}
	start := s.i
	var n uint64
	for ; s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9'; s.i++ {
		n = n*10 + uint64(s.b[s.i]-'0')
	}
	switch l := s.i - start; {
	case l == 0 || l > digits || (l > 1 && s.b[start] == '0'):
		s.ok = false
	case s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E'):
		s.ok = false
	}
	return n
}

// hash reads the inside of a string holding a Hash, as Hash.UnmarshalText.
func (s *scanner) hash() Hash {
	var h Hash
	if b := s.strBytes(); s.ok && h.UnmarshalText(b) != nil {
		s.ok = false
	}
	return h
}

// time reads a string holding a time, as encoding/json does: through
// time.Time's UnmarshalJSON, quotes included.
func (s *scanner) time() time.Time {
	var t time.Time
	if !s.ok || s.i >= len(s.b) || s.b[s.i] != '"' {
		s.ok = false
		return t
	}
	start := s.i
	s.i++
	s.strBytes()
	if !s.ok {
		return t
	}
	s.i++ // the closing quote
	if t.UnmarshalJSON(s.b[start:s.i]) != nil {
		s.ok = false
	}
	return t
}

// object reads a JSON object as a json.RawMessage: a copy of its bytes,
// as encoding/json keeps it.
func (s *scanner) object() json.RawMessage {
	if !s.ok || s.i >= len(s.b) || s.b[s.i] != '{' {
		s.ok = false
		return nil
	}
	start, depth, inString := s.i, 0, false
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		switch {
		case inString:
			switch c {
			case '\\':
				s.i++ // the escaped character; json.Valid checks it
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
		if depth == 0 {
			s.i++
			break
		}
	}
	raw := s.b[start:min(s.i, len(s.b))]
	if depth != 0 || !json.Valid(raw) {
		s.ok = false
		return nil
	}
	return append(json.RawMessage(nil), raw...)
}
