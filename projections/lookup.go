package projections

import (
	"crypto/subtle"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
)

// Lookup is the validation read model: for each key only what validation
// needs (owner, secret hash, public key, revoked, signed-only, expiry),
// packed so that a validation node holds millions of keys in memory (about
// 140 bytes a key). Events are
// folded through domain.Key.Apply like every other model, by unpacking the
// entry, applying, and packing it again. It is safe for concurrent use.
type Lookup struct {
	mu sync.RWMutex
	// index maps a key to its entry in entries. A map of small values and
	// a dense slice take about 130 bytes a key at a million keys, where a
	// map of whole entries takes 200: map slots are sized to the value, and
	// a map doubles at once while a slice grows by a quarter.
	index    map[ulid.ULID]uint32
	entries  []lookupEntry
	disabled map[ulid.ULID]bool // users whose keys must not validate; true: erased, for good
}

// lookupEntry is a key, packed. Expiry is in Unix milliseconds rounded up
// (an expiry never comes early), noTime for none.
//
// hash keeps the first 128 bits of the secret's SHA-256: finding a secret
// that matches them still takes 2^128 hashes, the strength of the Ed25519
// keys beside it, and the 16 bytes saved pay for most of the public key.
type lookupEntry struct {
	hash    [hashPrefix]byte
	public  domain.PublicKey
	owner   ulid.ULID
	expires int64
	version uint32
	flags   uint8
}

// hashPrefix is how many bytes of a secret's SHA-256 the lookup keeps.
const hashPrefix = 16

// Entry flags.
const (
	flagRevoked uint8 = 1 << iota
	flagSignedOnly
)

// revokedMark stands for a revocation time when a packed key is unpacked:
// the lookup keeps only that the key is revoked.
var revokedMark = time.Unix(1, 0).UTC()

// NewLookup returns an empty Lookup; sizeHint preallocates for that many
// keys (0, or less: none, the map grows as keys arrive).
func NewLookup(sizeHint int) *Lookup {
	sizeHint = max(sizeHint, 0)
	return &Lookup{index: make(map[ulid.ULID]uint32, sizeHint), entries: make([]lookupEntry, 0, sizeHint),
		disabled: make(map[ulid.ULID]bool)}
}

// Apply folds a key event, and notes users being disabled, enabled or
// erased (an erased user's keys never validate again); other events are
// ignored.
func (l *Lookup) Apply(e domain.Event) error {
	if e.Category() == domain.CategoryUser {
		id, ok := parseID(domain.UserIDPrefix, e.Aggregate)
		if !ok {
			return nil
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		switch e.Data.(type) {
		case domain.UserDisabled:
			l.disabled[id] = l.disabled[id] // stays true if erased
		case domain.UserErased:
			l.disabled[id] = true
		case domain.UserEnabled:
			if !l.disabled[id] {
				delete(l.disabled, id)
			}
		}
		return nil
	}
	if e.Category() != domain.CategoryKey {
		return nil
	}
	id, ok := parseID(domain.APIKeyPrefix, e.Aggregate)
	if !ok {
		return errMalformedAggregate(e)
	}
	l.mu.RLock()
	entry, found := l.get(id)
	l.mu.RUnlock()
	k := domain.Key{}
	if found {
		k = entry.unpack(e.Aggregate)
	}
	if err := k.Apply(e); err != nil {
		return err
	}
	packed, err := pack(k)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.put(id, packed)
	l.mu.Unlock()
	return nil
}

// Skip records an event of a type this code does not know on a key's
// subject, so that the key's next known event still follows its version.
func (l *Lookup) Skip(e domain.Event) {
	id, ok := parseID(domain.APIKeyPrefix, e.Aggregate)
	if e.Category() != domain.CategoryKey || !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if entry, found := l.get(id); found && uint64(entry.version)+1 == e.Version {
		entry.version++
		l.put(id, entry)
	}
}

// get returns a key's entry. Called with l.mu held.
func (l *Lookup) get(id ulid.ULID) (lookupEntry, bool) {
	i, ok := l.index[id]
	if !ok {
		return lookupEntry{}, false
	}
	return l.entries[i], true
}

// put stores a key's entry. Called with l.mu held for writing.
func (l *Lookup) put(id ulid.ULID, e lookupEntry) {
	if i, ok := l.index[id]; ok {
		l.entries[i] = e
		return
	}
	l.index[id] = uint32(len(l.entries))
	l.entries = append(l.entries, e)
}

// Len returns the number of keys.
func (l *Lookup) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.entries)
}

// Result is the outcome of Check and Signer: the owner on success, and
// the reason for logs and metrics (domain.ReasonOK, or why the key was
// refused). Reasons are never shown to clients.
type Result struct {
	OK     bool
	UserID string
	Reason domain.Reason
}

// Check validates a key and its secret at now, by domain.Standing's
// DecideSecret. Whether the key is known or not, it costs one map lookup,
// one SHA-256 and one constant-time compare.
func (l *Lookup) Check(apiKey string, secret domain.Secret, now time.Time) Result {
	entry, found, ownerDisabled := l.find(apiKey)
	h := secret.Hash() // on the zero entry too
	match := subtle.ConstantTimeCompare(h[:hashPrefix], entry.hash[:]) == 1 && !secret.IsZero()
	return entry.result(entry.standing(found, ownerDisabled).DecideSecret(match, now))
}

// Signer returns the public key that verifies apiKey's signed requests at
// now, and a Result: OK when domain.Standing's DecideSigner allows the key
// to sign (it exists, has a public key, is in force and its owner is not
// disabled). The caller verifies the signature with the key; the
// algorithm is always Ed25519.
func (l *Lookup) Signer(apiKey string, now time.Time) (domain.PublicKey, Result) {
	entry, found, ownerDisabled := l.find(apiKey)
	res := entry.result(entry.standing(found, ownerDisabled).DecideSigner(now))
	if !res.OK {
		return domain.PublicKey{}, res
	}
	return entry.public, res
}

// find returns a key's entry and whether its owner is disabled.
func (l *Lookup) find(apiKey string) (entry lookupEntry, found, ownerDisabled bool) {
	if id, ok := parseID(domain.APIKeyPrefix, apiKey); ok && domain.ValidAPIKey(apiKey) {
		l.mu.RLock()
		entry, found = l.get(id)
		if found && len(l.disabled) > 0 {
			_, ownerDisabled = l.disabled[entry.owner]
		}
		l.mu.RUnlock()
	}
	return entry, found, ownerDisabled
}

// standing is what the domain decides a packed key's use by.
func (e lookupEntry) standing(found, ownerDisabled bool) domain.Standing {
	return domain.Standing{Exists: found, Revoked: e.flags&flagRevoked != 0, ExpiresAt: unixTime(e.expires),
		SignedOnly: e.flags&flagSignedOnly != 0, CanSign: !e.public.IsZero(), OwnerDisabled: ownerDisabled}
}

// result is the Result of a decision about e.
func (e lookupEntry) result(r domain.Reason) Result {
	if r != domain.ReasonOK {
		return Result{Reason: r}
	}
	return Result{OK: true, UserID: domain.UserIDPrefix + e.owner.String(), Reason: r}
}

// unpack rebuilds the parts of a Key that Apply needs: the secret hash
// comes back with its kept prefix only, a revocation as revokedMark.
func (e lookupEntry) unpack(apiKey string) domain.Key {
	k := domain.Key{APIKey: apiKey, UserID: domain.UserIDPrefix + e.owner.String(), PublicKey: e.public,
		SignedOnly: e.flags&flagSignedOnly != 0, ExpiresAt: unixTime(e.expires), Version: uint64(e.version)}
	copy(k.SecretHash[:], e.hash[:])
	if e.flags&flagRevoked != 0 {
		k.RevokedAt = revokedMark
	}
	return k
}

func pack(k domain.Key) (lookupEntry, error) {
	owner, ok := parseID(domain.UserIDPrefix, k.UserID)
	if !ok {
		return lookupEntry{}, errMalformedOwner(k)
	}
	e := lookupEntry{public: k.PublicKey, owner: owner, expires: unixMilli(k.ExpiresAt), version: uint32(k.Version)}
	copy(e.hash[:], k.SecretHash[:hashPrefix])
	if k.Revoked() {
		e.flags |= flagRevoked
	}
	if k.SignedOnly {
		e.flags |= flagSignedOnly
	}
	return e, nil
}

func parseID(prefix, s string) (ulid.ULID, bool) {
	if !strings.HasPrefix(s, prefix) {
		return ulid.ULID{}, false
	}
	id, err := ulid.ParseStrict(s[len(prefix):])
	return id, err == nil
}

// noTime marks a packed time that is not set.
const noTime = math.MinInt64

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return noTime
	}
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

func unixTime(ms int64) time.Time {
	if ms == noTime {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
