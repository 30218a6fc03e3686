package domain

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
)

// Trust events: which Ed25519 keys may sign the log's events. They live on
// one aggregate (CategoryLedger, TrustAggregate), so appends to it are
// serialised by the per-subject expected sequence, and every reader folds
// them (Trust) to decide whom to believe: trust comes from the log's own
// history, never from configuration anyone with stream rights can edit.
const (
	TypeLedgerGenesis    = "ledger.genesis"
	TypeLedgerKeyAdded   = "ledger.key_added"
	TypeLedgerKeyRetired = "ledger.key_retired"
)

// CategoryLedger is the category of the ledger's own trust events.
const CategoryLedger = "ledger"

// TrustAggregate is the aggregate id of the trust events.
const TrustAggregate = "trust"

// LedgerGenesis is the first trust event of a log: it names the keys
// trusted from the start of the log. It must be signed by one of them.
type LedgerGenesis struct {
	Keys   []PublicKey `json:"keys"`
	Reason string      `json:"reason,omitempty"`
}

// LedgerKeyAdded trusts one more key from the event's position on. It must
// be signed by a key trusted at that position.
type LedgerKeyAdded struct {
	Key    PublicKey `json:"key"`
	Reason string    `json:"reason,omitempty"`
}

// LedgerKeyRetired stops trusting a key from the event's position on. It
// must be signed by a key trusted at that position, and may not retire the
// last trusted key.
type LedgerKeyRetired struct {
	Key    PublicKey `json:"key"`
	Reason string    `json:"reason,omitempty"`
}

// EventType implements EventData.
func (LedgerGenesis) EventType() string { return TypeLedgerGenesis }

// EventType implements EventData.
func (LedgerKeyAdded) EventType() string { return TypeLedgerKeyAdded }

// EventType implements EventData.
func (LedgerKeyRetired) EventType() string { return TypeLedgerKeyRetired }

// LedgerKeyID names a ledger public key in signature headers and on the
// command line: the first 12 characters of the unpadded base64url SHA-256
// of the key.
func LedgerKeyID(pub []byte) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// ID returns the key's LedgerKeyID.
func (p PublicKey) ID() string { return LedgerKeyID(p[:]) }

// TrustedKey is a ledger key as the trust events describe it: it is
// trusted for messages at stream sequences s with Added <= s < Retired
// (Retired 0: still trusted). Genesis keys have Added 0: trusted from the
// start of the log, including events written before the genesis by a log
// that predates trust events.
type TrustedKey struct {
	Key     PublicKey
	ID      string
	Added   uint64
	Retired uint64
	Reason  string // why it was added (or named by the genesis)
}

// TrustedAt reports whether the key is trusted at stream sequence seq.
func (k TrustedKey) TrustedAt(seq uint64) bool {
	return k.Added <= seq && (k.Retired == 0 || seq < k.Retired)
}

// Errors of the trust fold: a trust event that breaks a rule is refused
// (not applied), and readers treat it as one the ledger did not write.
var (
	ErrNoGenesis       = errors.New("the log has no genesis")
	ErrSecondGenesis   = errors.New("the log already has a genesis")
	ErrUntrustedSigner = errors.New("trust event not signed by a key trusted at its position")
	ErrKeyTrusted      = errors.New("key is already trusted")
	ErrKeyKnown        = errors.New("key was retired: a retired key is never trusted again")
	ErrKeyNotTrusted   = errors.New("key is not trusted")
	ErrLastKey         = errors.New("cannot retire the last trusted key")
	ErrTrustOrder      = errors.New("trust event out of order (wrong version or prev hash)")
)

// Trust is the fold of the trust events: which keys are trusted at each
// stream sequence. Apply is its only mutator. The zero Trust has no
// genesis and trusts nothing. It is not safe for concurrent use.
type Trust struct {
	keys     []TrustedKey
	genesis  uint64 // stream sequence of the genesis (0: none)
	has      bool
	version  uint64 // aggregate version of the last applied trust event
	last     Hash   // its hash
	lastSeq  uint64 // its stream sequence
	byIDHint map[string][]int
}

// HasGenesis reports whether a genesis was applied.
func (t *Trust) HasGenesis() bool { return t.has }

// GenesisSeq returns the stream sequence of the genesis (0: none).
func (t *Trust) GenesisSeq() uint64 { return t.genesis }

// Version and Last give what the next trust event must continue: its
// Version is Version()+1 and its Prev is Last().
func (t *Trust) Version() uint64 { return t.version }

// Last returns the hash of the last applied trust event.
func (t *Trust) Last() Hash { return t.last }

// LastSeq returns the stream sequence of the last applied trust event.
func (t *Trust) LastSeq() uint64 { return t.lastSeq }

// Keys returns every key the trust events named, in the order they were
// named.
func (t *Trust) Keys() []TrustedKey { return slices.Clone(t.keys) }

// KeyAt returns the key with id if it is trusted at stream sequence seq.
func (t *Trust) KeyAt(id string, seq uint64) (PublicKey, bool) {
	for _, i := range t.byIDHint[id] {
		if k := t.keys[i]; k.TrustedAt(seq) {
			return k.Key, true
		}
	}
	return PublicKey{}, false
}

// TrustedAt returns the keys trusted at stream sequence seq.
func (t *Trust) TrustedAt(seq uint64) []TrustedKey {
	var out []TrustedKey
	for _, k := range t.keys {
		if k.TrustedAt(seq) {
			out = append(out, k)
		}
	}
	return out
}

// CheckAdd reports whether key may be added after the events applied so
// far: ErrNoGenesis, ErrKeyTrusted, ErrKeyKnown, or nil.
func (t *Trust) CheckAdd(key PublicKey) error {
	if !t.has {
		return ErrNoGenesis
	}
	if key.IsZero() {
		return fmt.Errorf("%w: the zero key", ErrKeyNotTrusted)
	}
	for _, k := range t.keys {
		if k.Key == key {
			if k.Retired == 0 {
				return fmt.Errorf("%w: %s", ErrKeyTrusted, k.ID)
			}
			return fmt.Errorf("%w: %s", ErrKeyKnown, k.ID)
		}
	}
	return nil
}

// CheckRetire reports whether key may be retired after the events applied
// so far: ErrNoGenesis, ErrKeyNotTrusted, ErrLastKey, or nil.
func (t *Trust) CheckRetire(key PublicKey) error {
	if !t.has {
		return ErrNoGenesis
	}
	current := 0
	found := false
	for _, k := range t.keys {
		if k.Retired == 0 {
			current++
			found = found || k.Key == key
		}
	}
	if !found {
		return fmt.Errorf("%w: %s", ErrKeyNotTrusted, key.ID())
	}
	if current == 1 {
		return fmt.Errorf("%w (%s)", ErrLastKey, key.ID())
	}
	return nil
}

// Apply folds one trust event, read back from the log with its Sequence
// and Hash set, whose signature verifies under the key signer (a key id):
// the caller checks the signature with the key KeyAt(signer, e.Sequence)
// gives, or, for a genesis, with the named key of that id. Apply refuses,
// leaving t unchanged, an event that breaks the rules: the genesis comes
// first and once and is signed by a key it names; every later event
// continues the chain (version + 1, prev hash) and is signed by a key
// trusted at its position; a key is added once and never again after it
// was retired; the last trusted key is never retired.
func (t *Trust) Apply(e Event, signer string) error {
	if e.Sequence == 0 {
		return errors.New("trust event without a stream sequence")
	}
	if e.Sequence <= t.lastSeq {
		return fmt.Errorf("%w: sequence %d after %d", ErrTrustOrder, e.Sequence, t.lastSeq)
	}
	if e.Type == TypeLedgerGenesis {
		d, ok := e.Data.(LedgerGenesis)
		if !ok {
			return fmt.Errorf("genesis: data is %T", e.Data)
		}
		if t.has {
			return ErrSecondGenesis
		}
		if e.Version != 1 || e.Prev != (Hash{}) {
			return fmt.Errorf("%w: genesis is version %d", ErrTrustOrder, e.Version)
		}
		if len(d.Keys) == 0 {
			return errors.New("genesis names no key")
		}
		signed := false
		var keys []TrustedKey
		for i, k := range d.Keys {
			if k.IsZero() || slices.Contains(d.Keys[:i], k) {
				return errors.New("genesis names the zero key or one key twice")
			}
			signed = signed || k.ID() == signer
			keys = append(keys, TrustedKey{Key: k, ID: k.ID(), Reason: d.Reason})
		}
		if !signed {
			return fmt.Errorf("%w: the genesis is not signed by a key it names", ErrUntrustedSigner)
		}
		for _, k := range keys {
			t.add(k)
		}
		t.has, t.genesis = true, e.Sequence
		t.advance(e)
		return nil
	}
	if !t.has {
		return ErrNoGenesis
	}
	if e.Version != t.version+1 || e.Prev != t.last {
		return fmt.Errorf("%w: %s version %d after %d", ErrTrustOrder, e.Type, e.Version, t.version)
	}
	if _, ok := t.KeyAt(signer, e.Sequence); !ok {
		return fmt.Errorf("%w: %s by %s", ErrUntrustedSigner, e.Type, signer)
	}
	switch d := e.Data.(type) {
	case LedgerKeyAdded:
		if err := t.CheckAdd(d.Key); err != nil {
			return err
		}
		t.add(TrustedKey{Key: d.Key, ID: d.Key.ID(), Added: e.Sequence, Reason: d.Reason})
	case LedgerKeyRetired:
		if err := t.CheckRetire(d.Key); err != nil {
			return err
		}
		for i := range t.keys {
			if t.keys[i].Key == d.Key && t.keys[i].Retired == 0 {
				t.keys[i].Retired = e.Sequence
			}
		}
	default:
		return fmt.Errorf("%s is not a trust event", e.Type)
	}
	t.advance(e)
	return nil
}

func (t *Trust) add(k TrustedKey) {
	if t.byIDHint == nil {
		t.byIDHint = map[string][]int{}
	}
	t.byIDHint[k.ID] = append(t.byIDHint[k.ID], len(t.keys))
	t.keys = append(t.keys, k)
}

func (t *Trust) advance(e Event) {
	t.version, t.last, t.lastSeq = e.Version, e.Hash, e.Sequence
}
