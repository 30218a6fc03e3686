package projections

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// The read models' part of a snapshot of serve (internal/snapshot carries
// it, signed): everything each model holds, so that models read from it
// answer every query as the originals did and go on applying later events
// identically. Integers are big-endian; counts and string lengths are
// unsigned varints; a string is its length then its bytes; a flag is one
// byte, 0 or 1; an int is a signed (zigzag) varint; a hash or a public key
// is its 32 bytes; a time is one byte 0 for the zero time, else 1, Unix
// seconds (8) and nanoseconds (4), read back in UTC. In order:
//
//	header          "KLMODELS", format version (2) = 1
//	keys            count of keys; count of users' lists, then each: count
//	                (at least 1), then its keys oldest first; the teams'
//	                lists likewise. A key: api key, user id, name, secret
//	                hash, public key, signed only, created, expires,
//	                regenerated, revoked, disabled, scopes, metadata,
//	                previous secret hash, previous expires, limits (flags:
//	                1 rate limit, 2 credits, 4 refill; rate limit: limit 8,
//	                window ns 8; credits: epoch 8, since, initial 8, added
//	                8; refill: amount 8, interval ns 8), team id, service
//	                account, version 8, last hash, sequence 8
//	users           count, then each: id, email, password hash, personal,
//	                personal type, personal schema (int), session epoch 8,
//	                ended sessions (count, then token id + expiry each),
//	                role, disabled, erased, created, version 8, last hash,
//	                sequence 8
//	emails          count, then each: aggregate, holder, version 8, last
//	                hash, sequence 8
//	admins          count, then each: name, keys (count, then key, id,
//	                enrolled, enrolled by, revoked each), version 8, last
//	                hash, sequence 8; key ids (count, then id + admin name
//	                each); known keys (count, then key + admin name each);
//	                active keys (int)
//	verifications   count, then each: user id, pending, token hash,
//	                requested, expires, version 8, last hash, sequence 8
//	invitations     count, then each: id, token hash, email binding,
//	                issued, issued by, expires, used by, version 8, last
//	                hash, sequence 8
//	identities      as emails
//	teams           count, then each, oldest first: id, name, created,
//	                disabled, members (count, then user id, role, joined
//	                each), invitations (count, then id, role, token hash,
//	                expires each), service accounts (count, then id, name,
//	                created by, created, disabled, deleted each), version 8,
//	                last hash, sequence 8; users' teams (count, then user
//	                id, count, team ids in joining order); open invitations
//	                (count, then invitation id + team id each)
//
// A map keyed by an id its values carry (keys, users, admins,
// verifications, invitations, teams, a team's members, invitations and
// service accounts) is written as its values: the domain sets the id from
// the same aggregate or event field that keys the map. Any change to the
// format is a new version: ReadModelsSnapshot refuses versions it does
// not know.

// modelsMagic starts the models' part of a snapshot.
const modelsMagic = "KLMODELS"

// ModelsSnapshotVersion is the format version Models.AppendSnapshot
// writes and the only one ReadModelsSnapshot reads.
const ModelsSnapshotVersion = 1

// The fields of each type the codec writes, counted: a field added to one
// of them must be added to the codec and the format version bumped
// (TestModelsSnapshot_KnowsEveryField compares them with the types).
const (
	keyFields            = 22 // domain.Key's member is transient: not written
	rateLimitFields      = 2
	creditPolicyFields   = 5
	refillFields         = 2
	userFields           = 14
	adminFields          = 4
	adminKeyFields       = 5
	verificationFields   = 7
	invitationFields     = 9
	teamFields           = 9
	memberFields         = 3
	teamInvitationFields = 4
	serviceAccountFields = 6
	reservationFields    = 2 // domain.Reservation

	keysModelFields          = 4 // mu, keys, byUser, byTeam
	keyEntryFields           = 2
	usersModelFields         = 5 // mu, byID, seqs, emails, onErase (an option, not state)
	reservationEntryFields   = 3 // reservation: userID, state, seq
	adminsModelFields        = 6
	verificationsModelFields = 3
	invitationsModelFields   = 3
	identitiesModelFields    = 3 // users (the Users read with them), mu, byID
	teamsModelFields         = 5
	teamEntryFields          = 2
)

// The fewest bytes each record takes: a count of records is checked
// against them before anything is allocated.
const (
	minTime         = 1
	minString       = 1
	minLimits       = 1
	minKey          = 7*minString + 4*32 + 1 + 6*minTime + minLimits + 8 + 8
	minUser         = 5*minString + 1 + 8 + 1 + minString + 2 + minTime + 8 + 32 + 8
	minReservation  = 2*minString + 8 + 32 + 8
	minAdmin        = minString + 1 + 8 + 32 + 8
	minAdminKey     = 32 + minString + minTime + minString + 1
	minVerification = minString + 1 + 32 + 2*minTime + 8 + 32 + 8
	minInvitation   = minString + 2*32 + minTime + minString + minTime + minString + 8 + 32 + 8
	minTeam         = 2*minString + minTime + 1 + 3 + 8 + 32 + 8
	minMember       = 2*minString + minTime
	minTeamInvite   = 2*minString + 32 + minTime
	minAccount      = 3*minString + minTime + 2
)

// Models are the read models serve folds from the log besides the
// lookup, in the order the projector applies them.
type Models struct {
	Keys          *Keys
	Users         *Users
	Admins        *Admins
	Verifications *Verifications
	Invitations   *Invitations
	Identities    *Identities // asks Users who is erased
	Teams         *Teams
}

// NewModels returns empty models; usersOpts configure Users.
func NewModels(usersOpts ...UsersOption) Models {
	users := NewUsers(usersOpts...)
	return Models{Keys: NewKeys(), Users: users, Admins: NewAdmins(), Verifications: NewVerifications(),
		Invitations: NewInvitations(), Identities: NewIdentities(users), Teams: NewTeams()}
}

// List returns the models in the order the projector applies them:
// Keys, Users, Admins, Verifications, Invitations, Identities, Teams.
func (m Models) List() []Model {
	return []Model{m.Keys, m.Users, m.Admins, m.Verifications, m.Invitations, m.Identities, m.Teams}
}

// AppendSnapshot appends the models' whole state to dst and returns it.
// Call it where no event is applied meanwhile (inside Projector.Freeze)
// so that the models agree with each other and with one position. It
// holds each model's read lock while it copies that model: queries go on.
// Every model must be set.
func (m Models) AppendSnapshot(dst []byte) []byte {
	dst = slices.Grow(dst, m.sizeHint())
	dst = append(dst, modelsMagic...)
	dst = binary.BigEndian.AppendUint16(dst, ModelsSnapshotVersion)
	dst = m.Keys.appendSnapshot(dst)
	dst = m.Users.appendSnapshot(dst)
	dst = m.Admins.appendSnapshot(dst)
	dst = m.Verifications.appendSnapshot(dst)
	dst = m.Invitations.appendSnapshot(dst)
	dst = m.Identities.appendSnapshot(dst)
	return m.Teams.appendSnapshot(dst)
}

// sizeHint is about the size of the models' snapshot, so that it is
// written into one buffer rather than copied from buffer to buffer as it
// grows: typical sizes of a key, a user, a reservation; the rest is small.
func (m Models) sizeHint() int {
	m.Users.mu.RLock()
	users, emails := len(m.Users.byID), len(m.Users.emails)
	m.Users.mu.RUnlock()
	m.Identities.mu.RLock()
	identities := len(m.Identities.byID)
	m.Identities.mu.RUnlock()
	return 4096 + 256*m.Keys.Len() + 320*users + 144*(emails+identities)
}

// ReadModelsSnapshot builds models from what AppendSnapshot wrote: all of
// b and nothing else. usersOpts configure Users (OnErase). Every count is
// checked against the bytes left before anything is allocated, so no
// input makes it allocate more than a small multiple of its size or
// panic; every reference between records is checked, so that no query of
// the models read can fail on a record that is not there. Errors:
// wrapping ErrMalformedSnapshot.
func ReadModelsSnapshot(b []byte, usersOpts ...UsersOption) (Models, error) {
	r := &snapReader{b: b}
	if magic := r.bytes(len(modelsMagic)); r.err != nil || string(magic) != modelsMagic {
		return Models{}, fmt.Errorf("%w: not a models snapshot", ErrMalformedSnapshot)
	}
	if v := r.u16(); r.err == nil && v != ModelsSnapshotVersion {
		return Models{}, fmt.Errorf("%w: models snapshot format version %d, this code reads %d", ErrMalformedSnapshot,
			v, ModelsSnapshotVersion)
	}
	var m Models
	m.Keys = r.keys()
	m.Users = r.users(usersOpts)
	m.Admins = r.admins()
	m.Verifications = r.verifications()
	m.Invitations = r.invitations()
	m.Identities = &Identities{users: m.Users, byID: r.reservations()}
	m.Teams = r.teams()
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the end", len(r.b))
	}
	if r.err != nil {
		return Models{}, r.err
	}
	return m, nil
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(dst, uint32(t.Nanosecond()))
}

func appendEnd(dst []byte, version uint64, last domain.Hash, seq uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, version)
	dst = append(dst, last[:]...)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func (m *Keys) appendSnapshot(dst []byte) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	dst = binary.AppendUvarint(dst, uint64(len(m.keys)))
	for _, lists := range []map[string][]string{m.byUser, m.byTeam} {
		dst = binary.AppendUvarint(dst, uint64(len(lists)))
		for _, ids := range lists {
			dst = binary.AppendUvarint(dst, uint64(len(ids)))
			for _, id := range ids {
				dst = appendKey(dst, m.keys[id])
			}
		}
	}
	return dst
}

func appendKey(dst []byte, e *keyEntry) []byte {
	k := &e.key
	dst = appendString(dst, k.APIKey)
	dst = appendString(dst, k.UserID)
	dst = appendString(dst, k.Name)
	dst = append(dst, k.SecretHash[:]...)
	dst = append(dst, k.PublicKey[:]...)
	dst = append(dst, boolByte(k.SignedOnly))
	dst = appendTime(dst, k.CreatedAt)
	dst = appendTime(dst, k.ExpiresAt)
	dst = appendTime(dst, k.SecretRegeneratedAt)
	dst = appendTime(dst, k.RevokedAt)
	dst = appendTime(dst, k.DisabledAt)
	dst = appendString(dst, string(k.Scopes))
	dst = appendString(dst, k.Metadata)
	dst = append(dst, k.PreviousSecretHash[:]...)
	dst = appendTime(dst, k.PreviousExpiresAt)
	var f uint8
	if k.RateLimit != nil {
		f |= limRate
	}
	if k.Credits != nil {
		f |= limCredits
		if k.Credits.Refill != nil {
			f |= limRefill
		}
	}
	dst = append(dst, f)
	if rl := k.RateLimit; rl != nil {
		dst = binary.BigEndian.AppendUint64(dst, rl.Limit)
		dst = binary.BigEndian.AppendUint64(dst, uint64(rl.Window))
	}
	if c := k.Credits; c != nil {
		dst = binary.BigEndian.AppendUint64(dst, c.Epoch)
		dst = appendTime(dst, c.Since)
		dst = binary.BigEndian.AppendUint64(dst, c.Initial)
		dst = binary.BigEndian.AppendUint64(dst, c.Added)
		if rf := c.Refill; rf != nil {
			dst = binary.BigEndian.AppendUint64(dst, rf.Amount)
			dst = binary.BigEndian.AppendUint64(dst, uint64(rf.Interval))
		}
	}
	dst = appendString(dst, k.TeamID)
	dst = appendString(dst, k.ServiceAccount)
	return appendEnd(dst, k.Version, k.LastHash, e.seq)
}

func (m *Users) appendSnapshot(dst []byte) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	dst = binary.AppendUvarint(dst, uint64(len(m.byID)))
	for id, u := range m.byID {
		dst = appendString(dst, u.ID)
		dst = appendString(dst, u.Email)
		dst = appendString(dst, u.PasswordHash)
		dst = appendString(dst, string(u.Personal))
		dst = appendString(dst, u.PersonalType)
		dst = binary.AppendVarint(dst, int64(u.PersonalSchema))
		dst = binary.BigEndian.AppendUint64(dst, u.SessionEpoch)
		dst = binary.AppendUvarint(dst, uint64(len(u.EndedSessions)))
		for token, exp := range u.EndedSessions {
			dst = appendString(dst, token)
			dst = appendTime(dst, exp)
		}
		dst = appendString(dst, string(u.Role))
		dst = append(dst, boolByte(u.Disabled), boolByte(u.Erased))
		dst = appendTime(dst, u.CreatedAt)
		dst = appendEnd(dst, u.Version, u.LastHash, m.seqs[id])
	}
	return appendReservations(dst, m.emails)
}

func appendReservations(dst []byte, rs map[string]reservation) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(rs)))
	for agg, r := range rs {
		dst = appendString(dst, agg)
		dst = appendString(dst, r.userID)
		dst = appendEnd(dst, r.state.Version, r.state.LastHash, r.seq)
	}
	return dst
}

func (m *Admins) appendSnapshot(dst []byte) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	dst = binary.AppendUvarint(dst, uint64(len(m.byName)))
	for name, a := range m.byName {
		dst = appendString(dst, a.Name)
		dst = binary.AppendUvarint(dst, uint64(len(a.Keys)))
		for _, k := range a.Keys {
			dst = append(dst, k.Key[:]...)
			dst = appendString(dst, k.ID)
			dst = appendTime(dst, k.EnrolledAt)
			dst = appendString(dst, k.EnrolledBy)
			dst = append(dst, boolByte(k.Revoked))
		}
		dst = appendEnd(dst, a.Version, a.LastHash, m.seqs[name])
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.keys)))
	for id, name := range m.keys {
		dst = appendString(dst, id)
		dst = appendString(dst, name)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.known)))
	for k, name := range m.known {
		dst = append(dst, k[:]...)
		dst = appendString(dst, name)
	}
	return binary.AppendVarint(dst, int64(m.active))
}

func (m *Verifications) appendSnapshot(dst []byte) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	dst = binary.AppendUvarint(dst, uint64(len(m.byID)))
	for id, v := range m.byID {
		dst = appendString(dst, v.UserID)
		dst = append(dst, boolByte(v.Pending))
		dst = append(dst, v.TokenHash[:]...)
		dst = appendTime(dst, v.RequestedAt)
		dst = appendTime(dst, v.ExpiresAt)
		dst = appendEnd(dst, v.Version, v.LastHash, m.seqs[id])
	}
	return dst
}

func (m *Invitations) appendSnapshot(dst []byte) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	dst = binary.AppendUvarint(dst, uint64(len(m.byID)))
	for id, i := range m.byID {
		dst = appendString(dst, i.ID)
		dst = append(dst, i.TokenHash[:]...)
		dst = append(dst, i.EmailBinding[:]...)
		dst = appendTime(dst, i.IssuedAt)
		dst = appendString(dst, i.IssuedBy)
		dst = appendTime(dst, i.ExpiresAt)
		dst = appendString(dst, i.UsedBy)
		dst = appendEnd(dst, i.Version, i.LastHash, m.seqs[id])
	}
	return dst
}

func (m *Identities) appendSnapshot(dst []byte) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return appendReservations(dst, m.byID)
}

func (m *Teams) appendSnapshot(dst []byte) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	dst = binary.AppendUvarint(dst, uint64(len(m.order)))
	for _, id := range m.order {
		e := m.teams[id]
		t := &e.team
		dst = appendString(dst, t.ID)
		dst = appendString(dst, t.Name)
		dst = appendTime(dst, t.CreatedAt)
		dst = append(dst, boolByte(t.Disabled))
		dst = binary.AppendUvarint(dst, uint64(len(t.Members)))
		for _, mb := range t.Members {
			dst = appendString(dst, mb.UserID)
			dst = appendString(dst, string(mb.Role))
			dst = appendTime(dst, mb.JoinedAt)
		}
		dst = binary.AppendUvarint(dst, uint64(len(t.Invitations)))
		for _, inv := range t.Invitations {
			dst = appendString(dst, inv.ID)
			dst = appendString(dst, string(inv.Role))
			dst = append(dst, inv.TokenHash[:]...)
			dst = appendTime(dst, inv.ExpiresAt)
		}
		dst = binary.AppendUvarint(dst, uint64(len(t.ServiceAccounts)))
		for _, sa := range t.ServiceAccounts {
			dst = appendString(dst, sa.ID)
			dst = appendString(dst, sa.Name)
			dst = appendString(dst, sa.CreatedBy)
			dst = appendTime(dst, sa.CreatedAt)
			dst = append(dst, boolByte(sa.Disabled), boolByte(sa.Deleted))
		}
		dst = appendEnd(dst, t.Version, t.LastHash, e.seq)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.byUser)))
	for user, teams := range m.byUser {
		dst = appendString(dst, user)
		dst = binary.AppendUvarint(dst, uint64(len(teams)))
		for _, id := range teams {
			dst = appendString(dst, id)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.invitations)))
	for inv, team := range m.invitations {
		dst = appendString(dst, inv)
		dst = appendString(dst, team)
	}
	return dst
}

func (r *snapReader) byte() byte {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *snapReader) u16() uint16 {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

// int reads a signed varint that fits an int.
func (r *snapReader) int() int {
	if r.err != nil {
		return 0
	}
	v, k := binary.Varint(r.b)
	if k <= 0 || v < math.MinInt || v > math.MaxInt {
		r.fail("bad int")
		return 0
	}
	r.b = r.b[k:]
	return int(v)
}

func (r *snapReader) hash() (h domain.Hash) {
	copy(h[:], r.bytes(len(h)))
	return h
}

func (r *snapReader) publicKey() (k domain.PublicKey) {
	copy(k[:], r.bytes(len(k)))
	return k
}

func (r *snapReader) time() time.Time {
	switch r.byte() {
	case 0:
		return time.Time{}
	case 1:
		sec, ns := int64(r.u64()), r.u32()
		if ns >= 1e9 {
			r.fail("time with %d ns", ns)
			return time.Time{}
		}
		return time.Unix(sec, int64(ns)).UTC()
	}
	r.fail("bad time")
	return time.Time{}
}

// end reads what appendEnd wrote.
func (r *snapReader) end() (version uint64, last domain.Hash, seq uint64) {
	return r.u64(), r.hash(), r.u64()
}

// dup fails for a record met twice.
func (r *snapReader) dup(what, id string) {
	r.fail("%s %q twice", what, short(id))
}

// short cuts a string read from a snapshot to a length an error message
// can carry.
func short(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func (r *snapReader) keys() *Keys {
	n := r.count(minKey)
	m := &Keys{keys: make(map[string]*keyEntry, n)}
	slab := make([]keyEntry, n) // one allocation: Keys changes its entries in place, never replaces them
	used := 0
	for _, team := range []bool{false, true} {
		nLists := r.count(1 + minKey)
		lists := make(map[string][]string, nLists)
		if team {
			m.byTeam = lists
		} else {
			m.byUser = lists
		}
		for range nLists {
			k := r.count(minKey)
			if r.err == nil && (k == 0 || k > n-used) {
				r.fail("a list of %d keys, %d of %d keys left", k, n-used, n)
			}
			if r.err != nil {
				return m
			}
			ids := make([]string, 0, k)
			owner := ""
			for j := range k {
				e := &slab[used]
				used++
				r.key(e)
				if r.err != nil {
					return m
				}
				o := e.key.UserID
				if team {
					o = e.key.TeamID
				}
				if j == 0 {
					owner = o
				}
				switch {
				case team != (e.key.TeamID != ""):
					r.fail("key %q in the wrong list", short(e.key.APIKey))
				case o != owner:
					r.fail("key %q of %q in the list of %q", short(e.key.APIKey), short(o), short(owner))
				case m.keys[e.key.APIKey] != nil:
					r.dup("key", e.key.APIKey)
				}
				m.keys[e.key.APIKey] = e
				ids = append(ids, e.key.APIKey)
			}
			if _, dup := lists[owner]; dup {
				r.dup("list of", owner)
			}
			lists[owner] = ids
		}
	}
	if r.err == nil && used != n {
		r.fail("%d keys listed, %d counted", used, n)
	}
	return m
}

// raw reads a string's bytes, which alias the input.
func (r *snapReader) raw() []byte { return r.bytes(r.count(1)) }

// shareStrings makes out the strings of raw, all in one allocation: they
// are the strings of one record, which live and die together, and one
// allocation instead of one each is what makes reading a large snapshot
// fast.
func shareStrings(raw [][]byte, out []string) {
	n := 0
	for _, b := range raw {
		n += len(b)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, b := range raw {
		sb.Write(b)
	}
	all := sb.String()
	for i, b := range raw {
		out[i], all = all[:len(b)], all[len(b):]
	}
}

func (r *snapReader) key(e *keyEntry) {
	k := &e.key
	var raw [7][]byte
	raw[0], raw[1], raw[2] = r.raw(), r.raw(), r.raw() // api key, user id, name
	k.SecretHash = r.hash()
	k.PublicKey = r.publicKey()
	k.SignedOnly = r.flag()
	k.CreatedAt = r.time()
	k.ExpiresAt = r.time()
	k.SecretRegeneratedAt = r.time()
	k.RevokedAt = r.time()
	k.DisabledAt = r.time()
	raw[3], raw[4] = r.raw(), r.raw() // scopes, metadata
	k.PreviousSecretHash = r.hash()
	k.PreviousExpiresAt = r.time()
	f := r.byte()
	if f >= limRefill<<1 || (f&limRefill != 0 && f&limCredits == 0) {
		r.fail("limits flags %#x", f)
		return
	}
	if f&limRate != 0 {
		k.RateLimit = &domain.RateLimit{Limit: r.u64(), Window: domain.Period(r.u64())}
	}
	if f&limCredits != 0 {
		c := &domain.CreditPolicy{Epoch: r.u64(), Since: r.time(), Initial: r.u64(), Added: r.u64()}
		if f&limRefill != 0 {
			c.Refill = &domain.Refill{Amount: r.u64(), Interval: domain.Period(r.u64())}
		}
		k.Credits = c
	}
	raw[5], raw[6] = r.raw(), r.raw() // team id, service account
	k.Version, k.LastHash, e.seq = r.end()
	if r.err != nil {
		return
	}
	var strs [len(raw)]string
	shareStrings(raw[:], strs[:])
	k.APIKey, k.UserID, k.Name, k.Scopes, k.Metadata = strs[0], strs[1], strs[2], domain.ScopeSet(strs[3]), strs[4]
	k.TeamID, k.ServiceAccount = strs[5], strs[6]
}

func (r *snapReader) users(opts []UsersOption) *Users {
	n := r.count(minUser)
	m := NewUsers(opts...)
	m.byID, m.seqs = make(map[string]*domain.User, n), make(map[string]uint64, n)
	// One allocation; Users.Apply replaces a user it changes, so the slab
	// lives as long as one user read here does.
	slab := make([]domain.User, n)
	for i := range n {
		u := &slab[i]
		var raw [6][]byte
		raw[0], raw[1], raw[2], raw[3], raw[4] = r.raw(), r.raw(), r.raw(), r.raw(), r.raw() // id, email, password hash, personal, its type
		u.PersonalSchema = r.int()
		u.SessionEpoch = r.u64()
		// Never empty but nil: User.Apply copies the map, never writes
		// into it, and keeps it nil when no single session is ended.
		if ended := r.count(2); ended > domain.MaxEndedSessions {
			r.fail("user %q with %d ended sessions", short(string(raw[0])), ended)
		} else if ended > 0 {
			u.EndedSessions = make(map[string]time.Time, ended)
			for range ended {
				token := r.string()
				if _, dup := u.EndedSessions[token]; dup {
					r.fail("user %q: a session ended twice", short(string(raw[0])))
				}
				u.EndedSessions[token] = r.time()
			}
		}
		raw[5] = r.raw() // role
		u.Disabled, u.Erased = r.flag(), r.flag()
		u.CreatedAt = r.time()
		var seq uint64
		u.Version, u.LastHash, seq = r.end()
		if r.err != nil {
			return m
		}
		var strs [len(raw)]string
		shareStrings(raw[:], strs[:])
		u.ID, u.Email, u.PasswordHash, u.Personal, u.PersonalType = strs[0], strs[1], strs[2], domain.Sealed(strs[3]), strs[4]
		u.Role = domain.Role(strs[5])
		if _, dup := m.byID[u.ID]; dup {
			r.dup("user", u.ID)
		}
		m.byID[u.ID], m.seqs[u.ID] = u, seq
	}
	m.emails = r.reservations()
	return m
}

func (r *snapReader) reservations() map[string]reservation {
	n := r.count(minReservation)
	out := make(map[string]reservation, n)
	for range n {
		agg := r.string()
		var res reservation
		res.userID = r.string()
		res.state.Version, res.state.LastHash, res.seq = r.end()
		if r.err != nil {
			return out
		}
		if _, dup := out[agg]; dup {
			r.dup("reservation", agg)
		}
		out[agg] = res
	}
	return out
}

// admins reads the admins and checks that the key ids, the known keys and
// the count of active keys are those of the admins' keys: the count lets
// a bootstrap enrolment in while it is zero, and Lookup follows a key id
// to its admin.
func (r *snapReader) admins() *Admins {
	n := r.count(minAdmin)
	m := &Admins{byName: make(map[string]*domain.Admin, n), seqs: make(map[string]uint64, n)}
	total, active := 0, 0
	for range n {
		a := &domain.Admin{Name: r.string()}
		if nk := r.count(minAdminKey); nk > 0 {
			a.Keys = make([]domain.AdminKey, nk)
			for i := range a.Keys {
				k := &a.Keys[i]
				k.Key = r.publicKey()
				k.ID = r.string()
				k.EnrolledAt = r.time()
				k.EnrolledBy = r.string()
				k.Revoked = r.flag()
				if !k.Revoked {
					active++
				}
			}
			total += nk
		}
		var seq uint64
		a.Version, a.LastHash, seq = r.end()
		if r.err != nil {
			return m
		}
		if _, dup := m.byName[a.Name]; dup {
			r.dup("admin", a.Name)
		}
		m.byName[a.Name], m.seqs[a.Name] = a, seq
	}
	nIDs := r.count(2 * minString)
	m.keys = make(map[string]string, nIDs)
	for range nIDs {
		id := r.string()
		if _, dup := m.keys[id]; dup {
			r.dup("admin key id", id)
		}
		m.keys[id] = r.string()
	}
	nKnown := r.count(32 + minString)
	m.known = make(map[domain.PublicKey]string, nKnown)
	for range nKnown {
		k := r.publicKey()
		if _, dup := m.known[k]; dup {
			r.dup("admin key", domain.AdminKeyID(k))
		}
		m.known[k] = r.string()
	}
	m.active = r.int()
	if r.err != nil {
		return m
	}
	if len(m.keys) != total || len(m.known) != total || m.active != active {
		r.fail("admins with %d keys, %d active: %d key ids, %d known keys, %d active", total, active, len(m.keys),
			len(m.known), m.active)
		return m
	}
	for _, a := range m.byName {
		for _, k := range a.Keys {
			if k.ID != domain.AdminKeyID(k.Key) || m.keys[k.ID] != a.Name || m.known[k.Key] != a.Name {
				r.fail("admin key %q of %q is not recorded as theirs", short(k.ID), short(a.Name))
				return m
			}
		}
	}
	return m
}

func (r *snapReader) verifications() *Verifications {
	n := r.count(minVerification)
	m := &Verifications{byID: make(map[string]domain.Verification, n), seqs: make(map[string]uint64, n)}
	for range n {
		var v domain.Verification
		v.UserID = r.string()
		v.Pending = r.flag()
		v.TokenHash = r.hash()
		v.RequestedAt = r.time()
		v.ExpiresAt = r.time()
		var seq uint64
		v.Version, v.LastHash, seq = r.end()
		if r.err != nil {
			return m
		}
		if _, dup := m.byID[v.UserID]; dup {
			r.dup("verification", v.UserID)
		}
		m.byID[v.UserID], m.seqs[v.UserID] = v, seq
	}
	return m
}

func (r *snapReader) invitations() *Invitations {
	n := r.count(minInvitation)
	m := &Invitations{byID: make(map[string]domain.Invitation, n), seqs: make(map[string]uint64, n)}
	for range n {
		var i domain.Invitation
		i.ID = r.string()
		i.TokenHash = r.hash()
		i.EmailBinding = r.hash()
		i.IssuedAt = r.time()
		i.IssuedBy = r.string()
		i.ExpiresAt = r.time()
		i.UsedBy = r.string()
		var seq uint64
		i.Version, i.LastHash, seq = r.end()
		if r.err != nil {
			return m
		}
		if _, dup := m.byID[i.ID]; dup {
			r.dup("invitation", i.ID)
		}
		m.byID[i.ID], m.seqs[i.ID] = i, seq
	}
	return m
}

// teams reads the teams and checks that every team a user's list or an
// open invitation names is one: OfUser follows them.
func (r *snapReader) teams() *Teams {
	n := r.count(minTeam)
	m := &Teams{teams: make(map[string]*teamEntry, n), order: make([]string, 0, n)}
	slab := make([]teamEntry, n) // one allocation: Teams changes its entries in place
	for i := range n {
		e := &slab[i]
		r.team(&e.team)
		e.team.Version, e.team.LastHash, e.seq = r.end()
		if r.err != nil {
			return m
		}
		if _, dup := m.teams[e.team.ID]; dup {
			r.dup("team", e.team.ID)
		}
		m.teams[e.team.ID] = e
		m.order = append(m.order, e.team.ID)
	}
	nUsers := r.count(2 * minString)
	m.byUser = make(map[string][]string, nUsers)
	for range nUsers {
		user := r.string()
		nt := r.count(minString)
		if r.err == nil && nt == 0 {
			r.fail("user %q in no team", short(user))
		}
		if _, dup := m.byUser[user]; dup {
			r.dup("user's teams", user)
		}
		teams := make([]string, 0, nt)
		for range nt {
			id := r.string()
			if r.err == nil && m.teams[id] == nil {
				r.fail("user %q in team %q, which is not one", short(user), short(id))
			}
			teams = append(teams, id)
		}
		if r.err != nil {
			return m
		}
		m.byUser[user] = teams
	}
	nInv := r.count(2 * minString)
	m.invitations = make(map[string]string, nInv)
	for range nInv {
		inv, team := r.string(), r.string()
		if e := m.teams[team]; r.err == nil && (e == nil || !hasInvitation(e.team, inv)) {
			r.fail("invitation %q to team %q, which has no such invitation open", short(inv), short(team))
		}
		if _, dup := m.invitations[inv]; dup {
			r.dup("open invitation", inv)
		}
		m.invitations[inv] = team
	}
	if r.err == nil {
		r.checkMembers(m)
	}
	return m
}

func hasInvitation(t domain.Team, id string) bool {
	_, ok := t.Invitations[id]
	return ok
}

// checkMembers checks that the users' teams are the teams' members, as
// Teams.Apply keeps them: OfUser answers who may see a team.
func (r *snapReader) checkMembers(m *Teams) {
	members := 0
	for _, e := range m.teams {
		members += len(e.team.Members)
	}
	pairs := 0
	for user, teams := range m.byUser {
		for i, id := range teams {
			if _, ok := m.teams[id].team.Members[user]; !ok || slices.Contains(teams[:i], id) {
				r.fail("user %q listed in team %q, not one of its members or twice", short(user), short(id))
				return
			}
		}
		pairs += len(teams)
	}
	if pairs != members {
		r.fail("%d members of teams, %d listed", members, pairs)
	}
}

// team reads a team but its version, last hash and sequence. Its maps
// come back allocated, empty ones too: Team.Apply clones them and then
// writes into the clone, which would panic on a nil one.
func (r *snapReader) team(t *domain.Team) {
	t.ID = r.string()
	t.Name = r.string()
	t.CreatedAt = r.time()
	t.Disabled = r.flag()
	nm := r.count(minMember)
	t.Members = make(map[string]domain.Member, nm)
	for range nm {
		mb := domain.Member{UserID: r.string(), Role: domain.TeamRole(r.string()), JoinedAt: r.time()}
		if _, dup := t.Members[mb.UserID]; dup {
			r.dup("member", mb.UserID)
		}
		t.Members[mb.UserID] = mb
	}
	ni := r.count(minTeamInvite)
	t.Invitations = make(map[string]domain.TeamInvitation, ni)
	for range ni {
		inv := domain.TeamInvitation{ID: r.string(), Role: domain.TeamRole(r.string()), TokenHash: r.hash(), ExpiresAt: r.time()}
		if _, dup := t.Invitations[inv.ID]; dup {
			r.dup("team invitation", inv.ID)
		}
		t.Invitations[inv.ID] = inv
	}
	ns := r.count(minAccount)
	t.ServiceAccounts = make(map[string]domain.ServiceAccount, ns)
	for range ns {
		sa := domain.ServiceAccount{ID: r.string(), Name: r.string(), CreatedBy: r.string(), CreatedAt: r.time()}
		sa.Disabled, sa.Deleted = r.flag(), r.flag()
		if _, dup := t.ServiceAccounts[sa.ID]; dup {
			r.dup("service account", sa.ID)
		}
		t.ServiceAccounts[sa.ID] = sa
	}
}
