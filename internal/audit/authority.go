package audit

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// Who asked for each event. serve records an admin's command with the
// admin as the actor (admin:<name>) and keeps the admin's signed request
// (RFC 9421, tag keyledger-admin-v1) in every event the command causes.
// The ledger's signing key vouches that the ledger wrote an event, not that
// an admin asked for it: whoever holds that key can write any event, with
// any actor. The kept request is what an auditor can check without the
// ledger: authority follows the admins and their keys as the log enrolls
// and revokes them (the same fold serve's read model uses) and checks each
// kept request against the keys active at its event's position.
//
// What is checked: the admin key (so the admin), the method and the path
// of the route (so, for routes with an id in the path, which key, user or
// admin key the command was about), and that one request is one command.
// What is not: the body is not kept, only its digest, so what it said (a
// reason, the email, password and role of a created user, the name and
// key of an enrolled admin key) is not bound to the event by anything the
// auditor can check. The host and the signature's created and expires
// times are not compared with the log either: the log's times are the
// ledger's own, which the signing key's holder writes, and the auditor
// does not know which host names serve answered to. So a request signed
// for another deployment where the same admin key is enrolled, for a
// route without an id, could be kept once here too (enrol a key per
// deployment). An admin user acting with a session (actor admin:<user
// id>) signs nothing: the auditor checks only that the actor was an
// enabled admin user at that point.

// authority is the state Verify keeps to check who asked for each event.
// It is not safe for concurrent use.
type authority struct {
	admins     *projections.Admins
	enrolled   map[string]string    // key id -> admin name, every admin key the fold accepted
	enrolments int                  // admin key enrolments the fold accepted
	adminUsers map[string]bool      // user id -> enabled, for users registered with the admin role
	keys       map[string]keyOrigin // api key -> who owns it, since when
	requests   map[[sha256.Size]byte]keptUse
	verified   uint64 // events whose kept request checked out
}

// keyOrigin is what authority remembers of an API key.
type keyOrigin struct {
	owner   string // user id
	created uint64 // stream sequence of its key.created
}

// keptUse is the first event that kept a request, per request and
// category.
type keptUse struct {
	seq       uint64
	aggregate string
	version   uint64 // the aggregate's version at the request's latest use
	bad       string // why the request does not verify with its admin's key ("": it does)
}

func newAuthority() *authority {
	return &authority{admins: projections.NewAdmins(), enrolled: map[string]string{},
		adminUsers: map[string]bool{}, keys: map[string]keyOrigin{}, requests: map[[sha256.Size]byte]keptUse{}}
}

// check returns what is wrong with who asked for e, then folds e. Events
// of the trust category (ledger.*) are outside it: `admin ledger-keys`
// writes them over NATS with the ledger's own key and the actor the
// operator names, and no admin request is kept.
func (a *authority) check(e domain.Event) []string {
	var problems []string
	switch cat := e.Category(); {
	case e.Request != nil:
		problems = a.checkRequest(e)
	case cat == domain.CategoryAdmin:
		if _, ok := e.Data.(domain.AdminKeyEnrolled); ok && e.Actor == domain.ActorBootstrap {
			if a.enrolments > 0 {
				problems = append(problems, fmt.Sprintf("a bootstrap enrolment (actor %s) after %d admin key enrolment(s): only the first admin key is enrolled without an admin's request", domain.ActorBootstrap, a.enrolments))
			}
		} else {
			problems = append(problems, fmt.Sprintf("%s by %q carries no kept request: every admin event but the first enrolment needs an admin's signed request", e.Type, e.Actor))
		}
	case cat == domain.CategoryUser || cat == domain.CategoryKey || cat == domain.CategoryEmail || cat == domain.CategoryInvitation ||
		cat == domain.CategoryIdentity || cat == domain.CategoryTeam:
		if name, ok := strings.CutPrefix(e.Actor, domain.AdminActor("")); ok {
			if domain.ValidUserID(name) {
				if !a.adminUsers[name] {
					problems = append(problems, fmt.Sprintf("%s by %s, an admin's session, but %s is not an enabled admin user here", e.Type, e.Actor, name))
				}
			} else {
				problems = append(problems, fmt.Sprintf("%s is recorded as %s's act but carries no kept request", e.Type, e.Actor))
			}
		}
	}
	a.fold(e, len(problems) == 0, &problems)
	if e.Request != nil && len(problems) == 0 {
		a.verified++
	}
	return problems
}

// checkRequest checks the request e keeps.
func (a *authority) checkRequest(e domain.Event) []string {
	r := *e.Request
	name, pub, active := a.admins.Lookup(r.KeyID)
	if !active {
		if owner, ever := a.enrolled[r.KeyID]; ever {
			return []string{fmt.Sprintf("%s keeps a request signed by admin key %s of %s, revoked before this event", e.Type, r.KeyID, owner)}
		}
		return []string{fmt.Sprintf("%s keeps a request signed by key %q, never enrolled as an admin key", e.Type, r.KeyID)}
	}
	var problems []string
	if e.Actor != domain.AdminActor(name) {
		problems = append(problems, fmt.Sprintf("%s is recorded as %q's act, but its kept request was signed by %s's key %s", e.Type, e.Actor, domain.AdminActor(name), r.KeyID))
	}
	// A request is verified once per category: revoke-keys keeps one
	// request in every key.revoked it causes.
	id := requestID(r, e.Category())
	use, seen := a.requests[id]
	if !seen {
		use = keptUse{seq: e.Sequence, aggregate: e.Aggregate, version: e.Version}
		if err := r.Verify(pub); err != nil {
			use.bad = err.Error()
		}
		a.requests[id] = use
	}
	if use.bad != "" {
		return append(problems, fmt.Sprintf("%s keeps a request that does not verify with %s's key %s: %s", e.Type, domain.AdminActor(name), r.KeyID, use.bad))
	}
	kind, routeProblem := fitRoute(e, r, a.keys)
	if routeProblem != "" {
		problems = append(problems, routeProblem)
	}
	switch {
	case seen && kind == routeEdit && use.aggregate == e.Aggregate && e.Version == use.version+1:
		// One PATCH records each changed field as an event of its own,
		// appended together: the aggregate's next versions.
		use.version = e.Version
		a.requests[id] = use
	case seen && (kind != routeManyKeys && kind != routeManyTeams || use.aggregate == e.Aggregate):
		problems = append(problems, fmt.Sprintf("%s keeps the same signed request as sequence %d (%s): one request is one command", e.Type, use.seq, use.aggregate))
	case seen && kind == routeManyKeys && a.keys[e.Aggregate].created > use.seq:
		// revoke-keys lists the user's keys newest first and pages
		// towards older ones, so a key created once the command had
		// begun is not among those it revokes.
		problems = append(problems, fmt.Sprintf("%s keeps the revoke-keys request first kept at sequence %d, but the key was created after it, at sequence %d: replayed", e.Type, use.seq, a.keys[e.Aggregate].created))
	}
	return problems
}

// requestID identifies a kept request within a category.
func requestID(r domain.SignedRequest, category string) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range []string{category, r.KeyID, r.Input, r.Base, string(r.Signature)} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// routeKind is how many events one admin request may cause.
type routeKind int

const (
	routeOne       routeKind = iota // one event
	routeManyKeys                   // one key.revoked per key of a user (revoke-keys, erase)
	routeEdit                       // one event per changed field of a key (PATCH), in one batch
	routeManyTeams                  // one team.member_removed per team of an erased user (erase)
)

// fitRoute checks that the kept request's method and path are those of
// the admin route that causes e, and reports how many events that
// route may cause (routeKind). The admin routes and the events
// they record (handlers.go):
//
//	DELETE /admin/keys/{key}                key.revoked of {key}
//	PATCH  /admin/keys/{key}                key.renamed, key.scopes_changed, key.metadata_changed, key.expiry_changed,
//	                                        key.rate_limit_changed, key.credits_changed of {key}, one batch
//	POST   /admin/keys/{key}/credits        key.credits_added of {key}
//	POST   /admin/keys/{key}/disable        key.disabled of {key}
//	POST   /admin/keys/{key}/enable         key.enabled of {key}
//	POST   /admin/users/{id}/revoke-keys    key.revoked of every key {id} owns
//	POST   /admin/users/{id}/disable        user.disabled of {id}
//	POST   /admin/users/{id}/enable         user.enabled of {id}
//	POST   /admin/users/{id}/erase          user.erased of {id}, key.revoked of every key {id} owns
//	POST   /admin/users/{id}/revoke-sessions user.sessions_revoked of {id}
//	POST   /admin/users                     email.reserved and user.registered (the id is the ledger's choice)
//	POST   /admin/admin-keys                admin.key_enrolled (name and key are in the body)
//	POST   /admin/invitations               invitation.issued (the id is the ledger's choice)
//	DELETE /admin/admin-keys/{key_id}       admin.key_revoked of {key_id}
//	POST   /admin/teams/{team}/transfer     team.ownership_transferred of {team}
//	POST   /admin/teams/{team}/disable      team.disabled of {team}
//	POST   /admin/teams/{team}/enable       team.enabled of {team}
//	POST   /admin/users/{id}/erase          also team.member_removed of {id} in every team {id} was in
//
// A request on any other event type fits no route.
func fitRoute(e domain.Event, r domain.SignedRequest, keys map[string]keyOrigin) (kind routeKind, problem string) {
	method, path, ok := requestRoute(r)
	if !ok {
		return routeOne, fmt.Sprintf("%s keeps a request that does not record exactly one method and path", e.Type)
	}
	route := method + " " + path
	var want []string
	switch d := e.Data.(type) {
	case domain.KeyRevoked:
		owner := keys[e.Aggregate].owner
		if owner != "" && (route == "POST /admin/users/"+owner+"/revoke-keys" || route == "POST /admin/users/"+owner+"/erase") {
			return routeManyKeys, ""
		}
		want = []string{"DELETE /admin/keys/" + e.Aggregate, "POST /admin/users/" + cmp.Or(owner, "{owner}") + "/revoke-keys",
			"POST /admin/users/" + cmp.Or(owner, "{owner}") + "/erase"}
	case domain.KeyDisabled:
		want = []string{"POST /admin/keys/" + e.Aggregate + "/disable"}
	case domain.KeyEnabled:
		want = []string{"POST /admin/keys/" + e.Aggregate + "/enable"}
	case domain.KeyCreditsAdded:
		want = []string{"POST /admin/keys/" + e.Aggregate + "/credits"}
	case domain.KeyRenamed, domain.KeyScopesChanged, domain.KeyMetadataChanged, domain.KeyExpiryChanged,
		domain.KeyRateLimitChanged, domain.KeyCreditsChanged:
		if route == "PATCH /admin/keys/"+e.Aggregate {
			return routeEdit, ""
		}
		want = []string{"PATCH /admin/keys/" + e.Aggregate}
	case domain.UserDisabled:
		want = []string{"POST /admin/users/" + e.Aggregate + "/disable"}
	case domain.UserEnabled:
		want = []string{"POST /admin/users/" + e.Aggregate + "/enable"}
	case domain.UserErased:
		want = []string{"POST /admin/users/" + e.Aggregate + "/erase"}
	case domain.UserSessionsRevoked:
		want = []string{"POST /admin/users/" + e.Aggregate + "/revoke-sessions"}
	case domain.UserRegistered, domain.EmailReserved:
		want = []string{"POST /admin/users"}
	case domain.AdminKeyEnrolled:
		want = []string{"POST /admin/admin-keys"}
	case domain.InvitationIssued:
		want = []string{"POST /admin/invitations"}
	case domain.AdminKeyRevoked:
		want = []string{"DELETE /admin/admin-keys/" + domain.AdminKeyID(d.Key)}
	case domain.TeamOwnershipTransferred:
		want = []string{"POST /admin/teams/" + e.Aggregate + "/transfer"}
	case domain.TeamDisabled:
		want = []string{"POST /admin/teams/" + e.Aggregate + "/disable"}
	case domain.TeamEnabled:
		want = []string{"POST /admin/teams/" + e.Aggregate + "/enable"}
	case domain.TeamMemberRemoved:
		if route == "POST /admin/users/"+d.UserID+"/erase" {
			return routeManyTeams, ""
		}
		want = []string{"POST /admin/users/" + d.UserID + "/erase"}
	default:
		return routeOne, fmt.Sprintf("%s keeps an admin request (%s), but no admin route causes a %s event", e.Type, route, e.Type)
	}
	for _, w := range want {
		if route == w {
			return routeOne, ""
		}
	}
	return routeOne, fmt.Sprintf("%s keeps a request for %s, which does not cause it (want %s)", e.Type, route, strings.Join(want, " or "))
}

// requestRoute returns the method and the decoded path the kept request's
// signature base covers (@target-uri, or @path), if it records exactly
// one of each.
func requestRoute(r domain.SignedRequest) (method, path string, ok bool) {
	method, n := component(r.Base, "@method")
	if n != 1 || method == "" {
		return "", "", false
	}
	raw, n := component(r.Base, "@target-uri")
	if n == 0 {
		raw, n = component(r.Base, "@path")
	}
	if n != 1 {
		return "", "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Path == "" {
		return "", "", false
	}
	return method, u.Path, true
}

// component returns the value of a covered component as the signature
// base records it, and how many lines record it (one, if the base is
// well formed).
func component(base, name string) (value string, n int) {
	prefix := `"` + name + `": `
	for line := range strings.SplitSeq(base, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			value = v
			n++
		}
	}
	return value, n
}

// fold keeps what the checks need from e. Admin events go through the
// admin fold serve's read model uses, which refuses an admin event whose
// authority does not hold; that refusal is a problem of its own when the
// checks above found none.
func (a *authority) fold(e domain.Event, clean bool, problems *[]string) {
	switch d := e.Data.(type) {
	case domain.AdminKeyEnrolled, domain.AdminKeyRevoked:
		if err := a.admins.Apply(e); err != nil {
			if clean {
				*problems = append(*problems, "the admin fold refuses it: "+err.Error())
			}
			return
		}
		if enrolled, ok := d.(domain.AdminKeyEnrolled); ok {
			a.enrolled[domain.AdminKeyID(enrolled.Key)] = e.Aggregate
			a.enrolments++
		}
	case domain.UserRegistered:
		if d.Role == domain.RoleAdmin {
			a.adminUsers[e.Aggregate] = true
		}
	case domain.UserDisabled:
		if _, ok := a.adminUsers[e.Aggregate]; ok {
			a.adminUsers[e.Aggregate] = false
		}
	case domain.UserEnabled:
		if _, ok := a.adminUsers[e.Aggregate]; ok {
			a.adminUsers[e.Aggregate] = true
		}
	case domain.KeyCreated:
		// A team's key is no user's: revoke-keys and erase never revoke it.
		owner := d.UserID
		if d.TeamID != "" {
			owner = ""
		}
		a.keys[e.Aggregate] = keyOrigin{owner: owner, created: e.Sequence}
	}
}
