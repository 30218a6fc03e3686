package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
)

// The lookup's part of a snapshot (internal/snapshot carries it, signed):
// everything the lookup holds, packed as it is in memory, so that a node
// builds the lookup from it in one pass, presized, with no per-key
// decoding beyond copying bytes. Integers are big-endian; a count is an
// unsigned varint. In order:
//
//	owners        count, then 16 bytes (user id) each
//	scope sets    count (index 0 is the empty set), then length + bytes each
//	names arena   length + bytes (byte 0 unused)
//	entries       count, then 86 bytes each, in entry order: key id (16),
//	              secret hash prefix (16), public key (32), owner index (4),
//	              version (4), name offset (4), expiry (6), flags (1),
//	              scope set index (3)
//	metadata      count, then entry index (4) + length + bytes each
//	previous      count, then entry index (4) + hash prefix (16) + until (8)
//	limits        count, then entry index (4) + limits (see appendLimits)
//	team keys     count, then entry index (4) + team (16) + account (16)
//	disabled      count, then user id (16) + erased (1) each
//	teams off     count, then team id (16) each
//	accounts off  count, then service account id (16) + deleted (1) each
//
// Any change to it is a new snapshot format version.

// entrySize is the size of an entry in a snapshot.
const entrySize = 16 + hashPrefix + 32 + 4 + 4 + 4 + 6 + 1 + 3

// AppendSnapshot appends the lookup's state to dst, as ReadSnapshot reads
// it, and returns the result. It holds the read lock while it copies:
// validations go on, Apply waits.
func (l *Lookup) AppendSnapshot(dst []byte) []byte {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := l.entries.len()
	ids := make([]ulid.ULID, n)
	for id, i := range l.index {
		ids[i] = id
	}
	dst = binary.AppendUvarint(dst, uint64(len(l.owners)))
	for _, o := range l.owners {
		dst = append(dst, o.id[:]...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(l.scopeSets)))
	for _, s := range l.scopeSets {
		dst = appendString(dst, string(s))
	}
	dst = appendString(dst, string(l.names))
	dst = binary.AppendUvarint(dst, uint64(n))
	for i := range uint32(n) {
		e := l.entries.at(i)
		dst = append(dst, ids[i][:]...)
		dst = append(dst, e.hash[:]...)
		dst = append(dst, e.public[:]...)
		dst = binary.BigEndian.AppendUint32(dst, e.owner)
		dst = binary.BigEndian.AppendUint32(dst, e.version)
		dst = binary.BigEndian.AppendUint32(dst, e.name)
		dst = append(dst, e.expires[:]...)
		dst = append(dst, e.flags)
		dst = append(dst, e.scopes[:]...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(l.metadata)))
	for i, m := range l.metadata {
		dst = binary.BigEndian.AppendUint32(dst, i)
		dst = appendString(dst, m)
	}
	dst = binary.AppendUvarint(dst, uint64(len(l.previous)))
	for i, p := range l.previous {
		dst = binary.BigEndian.AppendUint32(dst, i)
		dst = append(dst, p.hash[:]...)
		dst = binary.BigEndian.AppendUint64(dst, uint64(p.until))
	}
	dst = binary.AppendUvarint(dst, uint64(len(l.limits)))
	for i, lim := range l.limits {
		dst = binary.BigEndian.AppendUint32(dst, i)
		dst = appendLimits(dst, lim)
	}
	dst = binary.AppendUvarint(dst, uint64(len(l.teamKeys)))
	for i, t := range l.teamKeys {
		dst = binary.BigEndian.AppendUint32(dst, i)
		dst = append(dst, t.team[:]...)
		dst = append(dst, t.account[:]...)
	}
	dst = appendIDFlags(dst, l.disabled)
	dst = binary.AppendUvarint(dst, uint64(len(l.disabledTeams)))
	for id := range l.disabledTeams {
		dst = append(dst, id[:]...)
	}
	return appendIDFlags(dst, l.blockedAccounts)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendIDFlags(dst []byte, m map[ulid.ULID]bool) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	for id, f := range m {
		dst = append(dst, id[:]...)
		dst = append(dst, boolByte(f))
	}
	return dst
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// Limits flags.
const (
	limRate uint8 = 1 << iota
	limCredits
	limRefill
	limSince
)

// appendLimits appends a key's limits: flags (1), then the rate limit
// (limit 8, window ns 8), then the credits (epoch 8, initial 8, added 8,
// since Unix ns 8 if set, refill amount 8 and interval ns 8 if set).
func appendLimits(dst []byte, l *domain.Limits) []byte {
	var f uint8
	if l.RateLimit != nil {
		f |= limRate
	}
	if c := l.Credits; c != nil {
		f |= limCredits
		if c.Refill != nil {
			f |= limRefill
		}
		if !c.Since.IsZero() {
			f |= limSince
		}
	}
	dst = append(dst, f)
	if r := l.RateLimit; r != nil {
		dst = binary.BigEndian.AppendUint64(dst, r.Limit)
		dst = binary.BigEndian.AppendUint64(dst, uint64(r.Window))
	}
	if c := l.Credits; c != nil {
		dst = binary.BigEndian.AppendUint64(dst, c.Epoch)
		dst = binary.BigEndian.AppendUint64(dst, c.Initial)
		dst = binary.BigEndian.AppendUint64(dst, c.Added)
		if !c.Since.IsZero() {
			dst = binary.BigEndian.AppendUint64(dst, uint64(c.Since.UnixNano()))
		}
		if c.Refill != nil {
			dst = binary.BigEndian.AppendUint64(dst, c.Refill.Amount)
			dst = binary.BigEndian.AppendUint64(dst, uint64(c.Refill.Interval))
		}
	}
	return dst
}

// ErrMalformedSnapshot is wrapped by ReadSnapshot's and
// ReadModelsSnapshot's errors.
var ErrMalformedSnapshot = errors.New("malformed snapshot")

// snapReader reads a snapshot's bytes; the first error sticks.
type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformedSnapshot}, args...)...)
	}
}

func (r *snapReader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.fail("truncated")
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// count reads a count of records at least min bytes each: a count the
// remaining input cannot hold is refused before anything is allocated.
func (r *snapReader) count(min int) int {
	if r.err != nil {
		return 0
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.fail("bad count")
		return 0
	}
	r.b = r.b[k:]
	if n > uint64(len(r.b)/min) {
		r.fail("count %d beyond the input", n)
		return 0
	}
	return int(n)
}

func (r *snapReader) string() string { return string(r.bytes(r.count(1))) }

func (r *snapReader) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *snapReader) u64() uint64 {
	b := r.bytes(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (r *snapReader) id() (id ulid.ULID) {
	copy(id[:], r.bytes(16))
	return id
}

func (r *snapReader) flag() bool {
	b := r.bytes(1)
	if b == nil {
		return false
	}
	if b[0] > 1 {
		r.fail("bad flag %d", b[0])
	}
	return b[0] == 1
}

// ReadSnapshot builds a Lookup from what AppendSnapshot wrote, all of b
// and nothing else. Every index and offset is checked, every count
// against the bytes left, so that no input makes it allocate more than a
// small multiple of its own size or panic. Errors: wrapping
// ErrMalformedSnapshot.
func ReadSnapshot(b []byte) (*Lookup, error) {
	r := &snapReader{b: b}
	nOwners := r.count(16)
	owners := make([]ownerRecord, 0, nOwners)
	ownerIndex := make(map[ulid.ULID]uint32, nOwners)
	for range nOwners {
		id := r.id()
		if _, dup := ownerIndex[id]; dup && r.err == nil {
			r.fail("owner %s twice", id)
		}
		ownerIndex[id] = uint32(len(owners))
		owners = append(owners, ownerRecord{id: id, userID: prefixedID(domain.UserIDPrefix, id)})
	}
	nSets := r.count(1)
	if r.err == nil && (nSets == 0 || nSets > maxScopeSets) {
		r.fail("%d scope sets", nSets)
	}
	sets := make([]domain.ScopeSet, 0, nSets)
	for range nSets {
		sets = append(sets, domain.ScopeSet(r.string()))
	}
	if r.err == nil && sets[0] != "" {
		r.fail("scope set 0 is not empty")
	}
	names := r.bytes(r.count(1))
	if r.err == nil && len(names) == 0 {
		r.fail("no names arena")
	}
	nEntries := r.count(entrySize)
	if r.err != nil {
		return nil, r.err
	}
	l := NewLookup(nEntries)
	l.owners, l.ownerIndex, l.scopeSets = owners, ownerIndex, sets
	l.names = append(make([]byte, 0, len(names)), names...)
	l.scopeRefs = make([]uint32, len(sets))
	for i := range nEntries {
		rec := r.bytes(entrySize) // one bounds check per entry, then fixed offsets
		if rec == nil {
			return nil, r.err
		}
		id := ulid.ULID(rec[0:16])
		var e lookupEntry
		e.hash = [hashPrefix]byte(rec[16 : 16+hashPrefix])
		e.public = domain.PublicKey(rec[32:64])
		e.owner = binary.BigEndian.Uint32(rec[64:68])
		e.version = binary.BigEndian.Uint32(rec[68:72])
		e.name = binary.BigEndian.Uint32(rec[72:76])
		e.expires = [6]byte(rec[76:82])
		e.flags = rec[82]
		e.scopes = [3]byte(rec[83:86])
		switch {
		case int(e.owner) >= len(owners):
			r.fail("entry %d: owner %d of %d", i, e.owner, len(owners))
		case int(e.scopeIndex()) >= len(sets):
			r.fail("entry %d: scope set %d of %d", i, e.scopeIndex(), len(sets))
		case !validNameOffset(l.names, e.name):
			r.fail("entry %d: name offset %d", i, e.name)
		case e.flags >= flagTeam<<1:
			r.fail("entry %d: flags %#x", i, e.flags)
		}
		if _, dup := l.index[id]; dup && r.err == nil {
			r.fail("key %s twice", id)
		}
		if r.err != nil {
			return nil, r.err
		}
		if e.name != 0 {
			// The arena records the length; the entry keeps it too, for
			// validations that hand out the name without reading it.
			e.nameLen = uint16(l.names[e.name])<<8 | uint16(l.names[e.name+1])
		}
		l.index[id] = l.entries.add(e)
		l.scopeRefs[e.scopeIndex()]++
		if e.name != 0 {
			l.namesLive += 2 + (int(l.names[e.name])<<8 | int(l.names[e.name+1]))
		}
	}
	l.namesGarbage = len(l.names) - 1 - l.namesLive
	// The shared scope lists are derived from the sets, never read.
	l.scopeLists = make([][]string, len(sets))
	for set, s := range sets {
		l.scopeLists[set] = s.List()
		switch {
		case set == 0:
		case l.scopeRefs[set] == 0:
			if s != "" {
				r.fail("scope set %d unused but not free", set)
			}
			l.freeSets = append(l.freeSets, uint32(set))
			l.scopeLists[set] = nil
			continue
		}
		if _, dup := l.scopeIndex[s]; dup && set != 0 {
			r.fail("scope set %q twice", s)
		}
		l.scopeIndex[s] = uint32(set)
	}
	entry := func(what string, flag uint8) uint32 {
		i := r.u32()
		if r.err == nil && (int(i) >= nEntries || l.entries.at(i).flags&flag == 0) {
			r.fail("%s of entry %d, which has none", what, i)
		}
		return i
	}
	for range r.count(5) {
		i := entry("metadata", flagMetadata)
		l.metadata[i] = r.string()
	}
	for range r.count(4 + hashPrefix + 8) {
		i := entry("previous secret", flagPrevious)
		var p previousSecret
		copy(p.hash[:], r.bytes(hashPrefix))
		p.until = int64(r.u64())
		l.previous[i] = p
	}
	for range r.count(5) {
		i := entry("limits", flagLimits)
		l.limits[i] = r.limits()
	}
	for range r.count(4 + 32) {
		i := entry("team", flagTeam)
		l.teamKeys[i] = teamOwner{team: r.id(), account: r.id()}
	}
	for range r.count(17) {
		id := r.id()
		l.disabled[id] = r.flag()
	}
	for range r.count(16) {
		l.disabledTeams[r.id()] = true
	}
	for range r.count(17) {
		id := r.id()
		l.blockedAccounts[id] = r.flag()
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the end", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	for i := range uint32(nEntries) {
		f := l.entries.at(i).flags
		for _, side := range []struct {
			flag uint8
			has  bool
		}{{flagMetadata, l.metadata[i] != ""}, {flagPrevious, hasKey(l.previous, i)},
			{flagLimits, l.limits[i] != nil}, {flagTeam, hasKey(l.teamKeys, i)}} {
			if f&side.flag != 0 && !side.has {
				return nil, fmt.Errorf("%w: entry %d lacks what its flags %#x name", ErrMalformedSnapshot, i, f)
			}
		}
	}
	return l, nil
}

func hasKey[V any](m map[uint32]V, k uint32) bool {
	_, ok := m[k]
	return ok
}

// validNameOffset reports whether off is 0 or the offset of a whole name
// in names.
func validNameOffset(names []byte, off uint32) bool {
	if off == 0 {
		return true
	}
	if uint64(off)+2 > uint64(len(names)) {
		return false
	}
	n := int(names[off])<<8 | int(names[off+1])
	return uint64(off)+2+uint64(n) <= uint64(len(names))
}

func (r *snapReader) limits() *domain.Limits {
	b := r.bytes(1)
	if b == nil {
		return nil
	}
	f := b[0]
	if f >= limSince<<1 || (f&limCredits == 0 && f&(limRefill|limSince) != 0) || f&(limRate|limCredits) == 0 {
		r.fail("limits flags %#x", f)
		return nil
	}
	l := &domain.Limits{}
	if f&limRate != 0 {
		l.RateLimit = &domain.RateLimit{Limit: r.u64(), Window: domain.Period(r.u64())}
	}
	if f&limCredits != 0 {
		c := &domain.CreditPolicy{Epoch: r.u64(), Initial: r.u64(), Added: r.u64()}
		if f&limSince != 0 {
			ns := r.u64()
			if ns > math.MaxInt64 {
				r.fail("credits since %d", ns)
			}
			c.Since = time.Unix(0, int64(ns)).UTC()
		}
		if f&limRefill != 0 {
			c.Refill = &domain.Refill{Amount: r.u64(), Interval: domain.Period(r.u64())}
		}
		l.Credits = c
	}
	return l
}
