package projections

import (
	"crypto/subtle"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
)

// Lookup is the validation read model: for each key only what validation
// needs (owner, secret hash, public key, revoked, disabled, signed-only,
// expiry, scopes, metadata, limits, the previous secret in its grace
// period),
// packed so that a validation node holds millions of keys in memory (about
// 140 bytes a key at a million keys and ten keys an owner, name
// included, metadata not). Scope
// sets are interned: keys share the few distinct sets there are, and an
// entry holds a 3-byte index. Metadata and previous secrets, which few
// keys have, live in side maps, and so do limits, which a key without
// any does not pay for. Events are folded through domain.Key.Apply
// like every other model, by unpacking the entry, applying, and packing it
// again. It is safe for concurrent use.
type Lookup struct {
	mu sync.RWMutex
	// index maps a key to its entry in entries. A map of small values and
	// dense chunks take about 140 bytes a key at a million keys, where a
	// map of whole entries takes 200: map slots are sized to the value, and
	// a map doubles at once while chunks grow by one at a time (a slice
	// grown by append would hold up to a quarter more than it uses).
	index   map[ulid.ULID]uint32
	entries entryChunks
	// owners are the users who own keys, each once: an entry holds a
	// 4-byte index into it instead of the 16-byte id, and a validation
	// hands out the id formatted once (a user has several keys, so this
	// costs less memory than it saves). Never shrinks: an owner stays
	// while the log holds its keys, which it does for good.
	owners     []ownerRecord
	ownerIndex map[ulid.ULID]uint32
	disabled   map[ulid.ULID]bool // users whose keys must not validate; true: erased, for good

	scopeSets  []domain.ScopeSet          // interned sets; index 0 is the empty set
	scopeLists [][]string                 // scopeSets[i].List(), derived from it, handed out shared
	scopeIndex map[domain.ScopeSet]uint32 // set -> its index in scopeSets
	scopeRefs  []uint32                   // how many keys use each set
	freeSets   []uint32                   // indexes of sets no key uses, to reuse
	metadata   map[uint32]string          // entry index -> metadata, for keys that have some
	previous   map[uint32]previousSecret  // entry index -> previous secret, for keys that had a grace period
	// limits maps an entry index to the key's limits, for keys that have
	// some. A *Limits handed out is never changed: a change stores a new one.
	limits map[uint32]*domain.Limits
	// teamKeys maps an entry index to the team (and service account) that
	// owns the key, for team keys only; the entry's owner is then the
	// member who created it, whose being disabled does not stop the key.
	teamKeys      map[uint32]teamOwner
	disabledTeams map[ulid.ULID]bool // teams whose keys must not validate
	// blockedAccounts are service accounts whose keys must not validate;
	// true: deleted, for good.
	blockedAccounts map[ulid.ULID]bool
	// names holds key names, each a 2-byte big-endian length and the
	// name's bytes, appended as keys are named; byte 0 is unused so that
	// offset 0 means no name. A rename appends: the old bytes stay.
	names        []byte
	namesLive    int // bytes of names keys have now
	namesGarbage int // bytes of names replaced since the last compaction
}

// ownerRecord is a user who owns keys: the id, and the same formatted.
type ownerRecord struct {
	id     ulid.ULID
	userID string
}

// teamOwner is who owns a team key: the team, and its service account
// (zero: none).
type teamOwner struct {
	team, account ulid.ULID
}

// previousSecret is a key's previous secret, kept for its grace period:
// the first hashPrefix bytes of its hash, and when the grace period ends
// (Unix milliseconds rounded down: a grace period never lasts longer).
type previousSecret struct {
	hash  [hashPrefix]byte
	until int64
}

// maxScopeSets is how many distinct scope sets the lookup can intern: the
// 3-byte index of an entry.
const maxScopeSets = 1 << 24

// lookupEntry is a key, packed. Expiry is in Unix milliseconds rounded up
// (an expiry never comes early), noTime for none.
//
// hash keeps the first 128 bits of the secret's SHA-256: finding a secret
// that matches them still takes 2^128 hashes, the strength of the Ed25519
// keys beside it, and the 16 bytes saved pay for most of the public key.
//
// Expiry takes 6 bytes (milliseconds up to the year 10889, past the
// log's year 9999), so that the entry has room for the offset of the
// key's name in Lookup.names; the owner is an index into Lookup.owners.
// It takes 72 bytes.
type lookupEntry struct {
	// What a validation reads comes first, in the first 36 bytes, so that
	// it spans one cache line more often than not.
	hash    [hashPrefix]byte
	owner   uint32 // index of the key's owner in Lookup.owners
	name    uint32 // offset of the key's name in Lookup.names; 0: none
	expires [6]byte
	flags   uint8
	scopes  [3]byte // index of the key's scope set in scopeSets
	nameLen uint16  // length of the key's name, as the arena also records
	version uint32
	public  domain.PublicKey
}

// hashPrefix is how many bytes of a secret's SHA-256 the lookup keeps.
const hashPrefix = 16

// Entry flags.
const (
	flagRevoked uint8 = 1 << iota
	flagSignedOnly
	flagDisabled
	flagMetadata // the key has metadata in Lookup.metadata
	flagPrevious // the key has a previous secret in Lookup.previous
	flagLimits   // the key has limits in Lookup.limits
	flagTeam     // a team owns the key: see Lookup.teamKeys
)

// revokedMark stands for a revocation (or disabling) time when a packed
// key is unpacked: the lookup keeps only that the key is revoked.
var revokedMark = time.Unix(1, 0).UTC()

// NewLookup returns an empty Lookup; sizeHint preallocates for that many
// keys (0, or less: none, the map grows as keys arrive).
func NewLookup(sizeHint int) *Lookup {
	sizeHint = max(sizeHint, 0)
	return &Lookup{index: make(map[ulid.ULID]uint32, sizeHint), entries: newEntryChunks(sizeHint),
		ownerIndex: make(map[ulid.ULID]uint32),
		disabled:   make(map[ulid.ULID]bool), scopeSets: []domain.ScopeSet{""}, scopeLists: [][]string{{}}, scopeRefs: []uint32{0},
		scopeIndex: map[domain.ScopeSet]uint32{"": 0}, metadata: make(map[uint32]string), names: []byte{0},
		previous: make(map[uint32]previousSecret), limits: make(map[uint32]*domain.Limits),
		teamKeys: make(map[uint32]teamOwner), disabledTeams: make(map[ulid.ULID]bool), blockedAccounts: make(map[ulid.ULID]bool)}
}

// Apply folds a key event, and notes users being disabled, enabled or
// erased (an erased user's keys never validate again), and teams and
// service accounts being disabled, enabled or deleted; other events are
// ignored.
func (l *Lookup) Apply(e domain.Event) error {
	if e.Category() == domain.CategoryTeam {
		l.applyTeam(e)
		return nil
	}
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
	// Apply runs on the projector's one goroutine: nothing else writes
	// between this read and the write below.
	l.mu.RLock()
	k := domain.Key{}
	if i, found := l.index[id]; found {
		k = l.unpack(i, e.Aggregate)
	}
	l.mu.RUnlock()
	if err := k.Apply(e); err != nil {
		return err
	}
	packed, err := pack(k)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.store(id, packed, k)
}

// applyTeam notes a team or a service account that stops or resumes.
func (l *Lookup) applyTeam(e domain.Event) {
	id, ok := parseID(domain.TeamIDPrefix, e.Aggregate)
	if !ok {
		return
	}
	account := func(s string) ulid.ULID {
		a, _ := parseID(domain.ServiceAccountIDPrefix, s)
		return a
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch d := e.Data.(type) {
	case domain.TeamDisabled:
		l.disabledTeams[id] = true
	case domain.TeamEnabled:
		delete(l.disabledTeams, id)
	case domain.TeamServiceAccountDisabled:
		a := account(d.ServiceAccount)
		l.blockedAccounts[a] = l.blockedAccounts[a] // stays true if deleted
	case domain.TeamServiceAccountEnabled:
		if a := account(d.ServiceAccount); !l.blockedAccounts[a] {
			delete(l.blockedAccounts, a)
		}
	case domain.TeamServiceAccountDeleted:
		l.blockedAccounts[account(d.ServiceAccount)] = true
	}
}

// store packs what an entry refers to (its scope set, metadata, previous
// secret) and puts it. Called with l.mu held for writing.
func (l *Lookup) store(id ulid.ULID, e lookupEntry, k domain.Key) error {
	var prev *lookupEntry
	if i, ok := l.index[id]; ok {
		prev = l.entries.at(i)
	}
	set, err := l.internScopes(k, prev)
	if err != nil {
		return err
	}
	e.scopes = [3]byte{byte(set >> 16), byte(set >> 8), byte(set)}
	owner, _ := parseID(domain.UserIDPrefix, k.UserID) // checked by pack
	if e.owner, err = l.internOwner(owner); err != nil {
		return err
	}
	switch {
	case prev != nil && l.name(prev.name) == k.Name:
		e.name = prev.name
	case k.Name != "":
		if len(l.names)+2+len(k.Name) > math.MaxUint32 || len(k.Name) > math.MaxUint16 {
			return fmt.Errorf("key %s: no room left for its name", k.APIKey)
		}
		e.name = uint32(len(l.names))
		l.names = append(l.names, byte(len(k.Name)>>8), byte(len(k.Name)))
		l.names = append(l.names, k.Name...)
		l.namesLive += 2 + len(k.Name)
	}
	if e.name != 0 {
		e.nameLen = uint16(len(k.Name))
	}
	if prev != nil && prev.name != 0 && prev.name != e.name {
		n := 2 + len(l.name(prev.name))
		l.namesLive -= n
		l.namesGarbage += n
	}
	i := l.put(id, e)
	if k.Metadata != "" {
		l.metadata[i] = k.Metadata
	} else {
		delete(l.metadata, i)
	}
	if e.flags&flagLimits != 0 {
		// Replace, never change: readers may hold the one stored before.
		if old := l.limits[i]; old == nil || old.RateLimit != k.RateLimit || old.Credits != k.Credits {
			l.limits[i] = &domain.Limits{RateLimit: k.RateLimit, Credits: k.Credits}
		}
	} else {
		delete(l.limits, i)
	}
	if e.flags&flagTeam != 0 {
		team, _ := parseID(domain.TeamIDPrefix, k.TeamID)
		var account ulid.ULID
		if k.ServiceAccount != "" {
			account, _ = parseID(domain.ServiceAccountIDPrefix, k.ServiceAccount)
		}
		l.teamKeys[i] = teamOwner{team: team, account: account}
	} else {
		delete(l.teamKeys, i)
	}
	if e.flags&flagPrevious != 0 {
		p := previousSecret{until: k.PreviousExpiresAt.UnixMilli()}
		copy(p.hash[:], k.PreviousSecretHash[:hashPrefix])
		l.previous[i] = p
	} else {
		delete(l.previous, i)
	}
	if l.namesGarbage > l.namesLive && l.namesGarbage > minNamesGarbage {
		l.compactNames()
	}
	return nil
}

// internOwner returns the index of owner in l.owners, adding it. Called
// with l.mu held for writing.
func (l *Lookup) internOwner(owner ulid.ULID) (uint32, error) {
	if i, ok := l.ownerIndex[owner]; ok {
		return i, nil
	}
	if len(l.owners) >= math.MaxUint32 {
		return 0, fmt.Errorf("owner %s: no room left for another owner", owner)
	}
	i := uint32(len(l.owners))
	l.owners = append(l.owners, ownerRecord{id: owner, userID: prefixedID(domain.UserIDPrefix, owner)})
	l.ownerIndex[owner] = i
	return i, nil
}

// minNamesGarbage is how many bytes of replaced names the arena keeps
// before it is compacted (once they also outweigh the live ones).
const minNamesGarbage = 1 << 20

// internScopes returns the index of k's scope set, interning it, and
// releases the set prev (the key's entry before, nil for a new key) used:
// a set no key uses any more is forgotten and its index reused, so that
// changing scopes over and over does not grow the table. Called with
// l.mu held for writing.
func (l *Lookup) internScopes(k domain.Key, prev *lookupEntry) (uint32, error) {
	set, ok := l.scopeIndex[k.Scopes]
	if !ok {
		switch {
		case len(l.freeSets) > 0:
			set = l.freeSets[len(l.freeSets)-1]
			l.freeSets = l.freeSets[:len(l.freeSets)-1]
			l.scopeSets[set], l.scopeLists[set] = k.Scopes, k.Scopes.List()
		case len(l.scopeSets) >= maxScopeSets:
			return 0, fmt.Errorf("key %s: more than %d distinct scope sets", k.APIKey, maxScopeSets)
		default:
			set = uint32(len(l.scopeSets))
			l.scopeSets = append(l.scopeSets, k.Scopes)
			l.scopeLists = append(l.scopeLists, k.Scopes.List())
			l.scopeRefs = append(l.scopeRefs, 0)
		}
		l.scopeIndex[k.Scopes] = set
	}
	l.scopeRefs[set]++
	if prev != nil {
		old := prev.scopeIndex()
		if l.scopeRefs[old]--; l.scopeRefs[old] == 0 && old != 0 {
			delete(l.scopeIndex, l.scopeSets[old])
			l.scopeSets[old], l.scopeLists[old] = "", nil
			l.freeSets = append(l.freeSets, old)
		}
	}
	return set, nil
}

// compactNames rewrites the names arena with the live names only. Readers
// that took the old arena keep it, unchanged, with the offsets they took
// with it. Called with l.mu held for writing.
func (l *Lookup) compactNames() {
	names := make([]byte, 1, 1+l.namesLive)
	for i := range uint32(l.entries.len()) {
		e := l.entries.at(i)
		if e.name == 0 {
			continue
		}
		name := l.name(e.name)
		e.name = uint32(len(names))
		names = append(names, byte(len(name)>>8), byte(len(name)))
		names = append(names, name...)
	}
	l.names, l.namesGarbage = names, 0
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
	return *l.entries.at(i), true
}

// put stores a key's entry and returns its index. Called with l.mu held
// for writing.
func (l *Lookup) put(id ulid.ULID, e lookupEntry) uint32 {
	if i, ok := l.index[id]; ok {
		*l.entries.at(i) = e
		return i
	}
	i := l.entries.add(e)
	l.index[id] = i
	return i
}

// Len returns the number of keys.
func (l *Lookup) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.entries.len()
}

// Result is the outcome of Check and Signer: the owner on success, and
// the reason for logs and metrics (domain.ReasonOK, or why the key was
// refused). Reasons are never shown to clients.
type Result struct {
	OK     bool
	UserID string
	Reason domain.Reason
	// Name, Scopes and Metadata are the key's, on success.
	Name   string
	Scopes domain.ScopeSet
	// ScopeList is Scopes.List(), shared by every Result of a key with
	// the same scopes: read it, never change it.
	ScopeList []string
	Metadata  string
	// Limits are the key's rate limit and credits, on success; nil when
	// it has none. The lookup never changes a Limits it handed out (a
	// change of the key's limits stores a new one), so it may be kept.
	Limits *domain.Limits
	// TeamID is the team that owns the key, on success ("": UserID owns
	// it; for a team's key UserID is the member who created it), and
	// ServiceAccount the team's service account it belongs to ("": none).
	TeamID         string
	ServiceAccount string
}

// Check validates a key and its secret at now, by domain.Standing's
// DecideSecrets. Whether the key is known or not, it costs one map lookup,
// one SHA-256 and two constant-time compares (the current secret and the
// previous one, zero when there is none).
func (l *Lookup) Check(apiKey string, secret domain.Secret, now time.Time) Result {
	id, ok := domain.ParseAPIKeyID(apiKey)
	h := secret.Hash() // on the zero entry too
	if secret.IsZero() {
		h = domain.Hash{} // matches nothing
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.check(id, ok, h, now)
}

// CheckParsed is Check of credentials parsed already: the key's id as
// domain.ParseAPIKeyID returns it and the SHA-256 of the secret as
// domain.ParseSecretHash does. A zero hash matches no key. Whether the key
// is known or not, a refusal costs one map lookup and two constant-time
// compares; what the entry refers to (owner, scopes, name) is read only
// once the secret matched. It allocates nothing.
func (l *Lookup) CheckParsed(id [16]byte, secretHash domain.Hash, now time.Time) Result {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.check(id, true, secretHash, now)
}

// check decides on the key with id (none when ok is false) and the hash of
// the secret given. Called with l.mu held.
func (l *Lookup) check(id [16]byte, ok bool, h domain.Hash, now time.Time) Result {
	var f found
	l.findLocked(&f, id, ok)
	return l.decide(&f, h, now)
}

// decide decides on the key found, f, and the hash of the secret given.
// Called with l.mu held.
func (l *Lookup) decide(f *found, h domain.Hash, now time.Time) Result {
	given := h != domain.Hash{}
	current := subtle.ConstantTimeCompare(h[:hashPrefix], f.entry.hash[:]) == 1 && given
	previous := subtle.ConstantTimeCompare(h[:hashPrefix], f.previous.hash[:]) == 1 && given &&
		f.previous.hash != [hashPrefix]byte{}
	if current || previous {
		// Whether the owner is disabled decides only once the secret
		// matched (DecideSecrets says wrong secret first).
		l.ownerOf(f)
	}
	r := f.standing().DecideSecrets(current, previous, now)
	if r != domain.ReasonOK {
		return Result{Reason: r}
	}
	return l.result(f)
}

// Signer returns the public key that verifies apiKey's signed requests at
// now, and a Result: OK when domain.Standing's DecideSigner allows the key
// to sign (it exists, has a public key, is in force and its owner is not
// disabled). The caller verifies the signature with the key; the
// algorithm is always Ed25519.
func (l *Lookup) Signer(apiKey string, now time.Time) (domain.PublicKey, Result) {
	id, ok := domain.ParseAPIKeyID(apiKey)
	l.mu.RLock()
	defer l.mu.RUnlock()
	var f found
	l.findLocked(&f, id, ok)
	l.ownerOf(&f)
	r := f.standing().DecideSigner(now)
	if r != domain.ReasonOK {
		return domain.PublicKey{}, Result{Reason: r}
	}
	return f.entry.public, l.result(&f)
}

// found is what the lookup holds of a key: its entry (valid while l.mu is
// held), whether it exists, its previous secret, and whether its owner is
// disabled (set by ownerOf).
type found struct {
	entry         *lookupEntry // zeroEntry when the key does not exist
	index         uint32
	exists        bool
	ownerDisabled bool
	previous      previousSecret
}

// zeroEntry is the entry of a key that does not exist: it matches no
// secret, and a refusal of an unknown key reads it as it would a key's.
var zeroEntry lookupEntry

// find returns what the lookup holds of a key, and its Result as if it
// were accepted (for tests of what the lookup keeps).
func (l *Lookup) find(apiKey string) (found, Result) {
	id, ok := domain.ParseAPIKeyID(apiKey)
	l.mu.RLock()
	defer l.mu.RUnlock()
	var f found
	l.findLocked(&f, id, ok)
	l.ownerOf(&f)
	e := *f.entry
	f.entry = &e // a copy, to read once the lock is released
	if !f.exists {
		return f, Result{}
	}
	return f, l.result(&f)
}

// findLocked fills f, zero, with the entry of the key with id, nothing
// when ok is false (the key was malformed). Called with l.mu held.
func (l *Lookup) findLocked(f *found, id [16]byte, ok bool) {
	f.entry = &zeroEntry
	if !ok {
		return
	}
	i, ok := l.index[ulid.ULID(id)]
	if !ok {
		return
	}
	f.entry, f.index, f.exists = l.entries.at(i), i, true
	if f.entry.flags&flagPrevious != 0 {
		f.previous = l.previous[i]
	}
}

// ownerOf sets whether the owner of the key found is disabled: for a team
// key the team or its service account, for any other the user. Called
// with l.mu held.
func (l *Lookup) ownerOf(f *found) {
	if !f.exists {
		return
	}
	if f.entry.flags&flagTeam != 0 {
		team := l.teamKeys[f.index]
		_, accountBlocked := l.blockedAccounts[team.account]
		f.ownerDisabled = l.disabledTeams[team.team] || accountBlocked && team.account != ulid.ULID{}
	} else if len(l.disabled) > 0 {
		_, f.ownerDisabled = l.disabled[l.owners[f.entry.owner].id]
	}
}

// result is the Result of a key accepted: what its entry refers to.
// Called with l.mu held.
func (l *Lookup) result(f *found) Result {
	e, i := f.entry, f.index
	set := e.scopeIndex()
	res := Result{OK: true, UserID: l.owners[e.owner].userID, Reason: domain.ReasonOK,
		Name: sharedNameAt(l.names, e.name, e.nameLen), Scopes: l.scopeSets[set], ScopeList: l.scopeLists[set]}
	if e.flags&(flagMetadata|flagLimits|flagTeam) == 0 {
		return res
	}
	if e.flags&flagMetadata != 0 {
		res.Metadata = l.metadata[i]
	}
	if e.flags&flagLimits != 0 {
		res.Limits = l.limits[i]
	}
	if e.flags&flagTeam != 0 {
		team := l.teamKeys[i]
		res.TeamID = domain.TeamIDPrefix + team.team.String()
		if team.account != (ulid.ULID{}) {
			res.ServiceAccount = domain.ServiceAccountIDPrefix + team.account.String()
		}
	}
	return res
}

// chunkBits sets the size of a chunk of entries: 8192 entries, 672 KiB.
const chunkBits = 13

// entryChunks is a growable array of entries in fixed-size chunks, so
// that growing it never copies nor leaves more than one chunk unused.
type entryChunks struct {
	chunks [][]lookupEntry
	n      int
}

// newEntryChunks returns chunks with room for sizeHint entries.
func newEntryChunks(sizeHint int) entryChunks {
	var c entryChunks
	for range (sizeHint + 1<<chunkBits - 1) >> chunkBits {
		c.chunks = append(c.chunks, make([]lookupEntry, 0, 1<<chunkBits))
	}
	return c
}

func (c *entryChunks) at(i uint32) *lookupEntry {
	return &c.chunks[i>>chunkBits][i&(1<<chunkBits-1)]
}

func (c *entryChunks) len() int { return c.n }

// add appends e and returns its index.
func (c *entryChunks) add(e lookupEntry) uint32 {
	k := c.n >> chunkBits
	if k == len(c.chunks) {
		c.chunks = append(c.chunks, make([]lookupEntry, 0, 1<<chunkBits))
	}
	c.chunks[k] = append(c.chunks[k], e)
	c.n++
	return uint32(c.n - 1)
}

// name returns the name at offset off of l.names. Called with l.mu held.
func (l *Lookup) name(off uint32) string { return nameAt(l.names, off) }

// nameAt returns the name at offset off of a names arena.
func nameAt(names []byte, off uint32) string {
	if off == 0 {
		return ""
	}
	n := int(names[off])<<8 | int(names[off+1])
	return string(names[off+2 : int(off)+2+n])
}

// sharedNameAt is the name of length n at offset off of a names arena,
// without the copy: the string shares the arena's bytes. That is safe
// because the arena is append-only: bytes once written are never changed
// (store appends past them, compactNames writes a new arena and leaves the
// old one as it is), so the string stays immutable as Go requires; it
// keeps the arena it points into alive. The entry holds the length, so
// that the arena is read only by whoever reads the name.
func sharedNameAt(names []byte, off uint32, n uint16) string {
	if off == 0 || n == 0 {
		return ""
	}
	return unsafe.String(&names[int(off)+2], int(n))
}

// prefixedID formats prefix and id in one allocation.
func prefixedID(prefix string, id ulid.ULID) string {
	var b [8 + ulid.EncodedSize]byte
	n := copy(b[:], prefix)
	_ = id.MarshalTextTo(b[n : n+ulid.EncodedSize])
	return string(b[:n+ulid.EncodedSize])
}

// scopeIndex is the index of the entry's scope set.
func (e lookupEntry) scopeIndex() uint32 {
	return uint32(e.scopes[0])<<16 | uint32(e.scopes[1])<<8 | uint32(e.scopes[2])
}

// standing is what the domain decides a packed key's use by.
func (f *found) standing() domain.Standing {
	e := f.entry
	s := domain.Standing{Exists: f.exists, Revoked: e.flags&flagRevoked != 0, ExpiresAt: unixTime(getMilli48(e.expires)),
		SignedOnly: e.flags&flagSignedOnly != 0, CanSign: !e.public.IsZero(), OwnerDisabled: f.ownerDisabled,
		Disabled: e.flags&flagDisabled != 0}
	if e.flags&flagPrevious != 0 {
		s.PreviousUntil = time.UnixMilli(f.previous.until).UTC()
	}
	return s
}

// unpack rebuilds the parts of the key at index i that Apply needs: the
// secret hashes come back with their kept prefix only, a revocation and a
// disabling as revokedMark. Called with l.mu held.
func (l *Lookup) unpack(i uint32, apiKey string) domain.Key {
	e := *l.entries.at(i)
	k := domain.Key{APIKey: apiKey, UserID: l.owners[e.owner].userID, PublicKey: e.public,
		SignedOnly: e.flags&flagSignedOnly != 0, ExpiresAt: unixTime(getMilli48(e.expires)), Version: uint64(e.version),
		Scopes: l.scopeSets[e.scopeIndex()], Metadata: l.metadata[i], Name: l.name(e.name)}
	copy(k.SecretHash[:], e.hash[:])
	if e.flags&flagRevoked != 0 {
		k.RevokedAt = revokedMark
	}
	if e.flags&flagDisabled != 0 {
		k.DisabledAt = revokedMark
	}
	if lim := l.limits[i]; lim != nil && e.flags&flagLimits != 0 {
		k.RateLimit, k.Credits = lim.RateLimit, lim.Credits
	}
	if o, ok := l.teamKeys[i]; ok && e.flags&flagTeam != 0 {
		k.TeamID = domain.TeamIDPrefix + o.team.String()
		if o.account != (ulid.ULID{}) {
			k.ServiceAccount = domain.ServiceAccountIDPrefix + o.account.String()
		}
	}
	if p, ok := l.previous[i]; ok && e.flags&flagPrevious != 0 {
		copy(k.PreviousSecretHash[:], p.hash[:])
		k.PreviousExpiresAt = time.UnixMilli(p.until).UTC()
	}
	return k
}

func pack(k domain.Key) (lookupEntry, error) {
	if _, ok := parseID(domain.UserIDPrefix, k.UserID); !ok {
		return lookupEntry{}, errMalformedOwner(k)
	}
	e := lookupEntry{public: k.PublicKey, expires: putMilli48(unixMilli(k.ExpiresAt)), version: uint32(k.Version)}
	copy(e.hash[:], k.SecretHash[:hashPrefix])
	if k.Revoked() {
		e.flags |= flagRevoked
	}
	if k.SignedOnly {
		e.flags |= flagSignedOnly
	}
	if k.Disabled() {
		e.flags |= flagDisabled
	}
	if k.Metadata != "" {
		e.flags |= flagMetadata
	}
	if !k.PreviousExpiresAt.IsZero() {
		e.flags |= flagPrevious
	}
	if k.RateLimit != nil || k.Credits != nil {
		e.flags |= flagLimits
	}
	if k.TeamID != "" {
		if _, ok := parseID(domain.TeamIDPrefix, k.TeamID); !ok {
			return lookupEntry{}, fmt.Errorf("key %s: malformed team id %q", k.APIKey, k.TeamID)
		}
		e.flags |= flagTeam
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

// putMilli48 packs Unix milliseconds into 6 bytes: noTime as all ones;
// instants at or before the epoch as 1 ms after it and instants past what
// 6 bytes hold as the largest they do (an expiry that early has passed,
// one that late is never reached: both keep their meaning).
func putMilli48(ms int64) [6]byte {
	const maxMilli = 1<<48 - 2
	var u uint64
	switch {
	case ms == noTime:
		u = 1<<48 - 1
	case ms <= 0:
		u = 1
	case ms > maxMilli:
		u = maxMilli
	default:
		u = uint64(ms)
	}
	return [6]byte{byte(u >> 40), byte(u >> 32), byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}
}

func getMilli48(b [6]byte) int64 {
	u := uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
	if u == 1<<48-1 {
		return noTime
	}
	return int64(u)
}

func unixTime(ms int64) time.Time {
	if ms == noTime {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
