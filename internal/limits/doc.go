// Package limits enforces keys' rate limits and credits across every
// validation node together, exactly, without a NATS round trip per
// request in the steady state.
//
// # Shared counters, local leases
//
// The nodes share one JetStream bucket, <stream>_LIMITS (SetUp, by the
// operator: `keyledger setup`, or serve on its embedded server). Every
// write is a compare-and-set on the record's revision, so two nodes never
// both spend the same token. A node leases a block from a record in one
// round trip and hands it out locally, under a per-key mutex, with no
// NATS: a decision waits for NATS only when the node holds nothing that
// covers the request, and then at most Config.Timeout.
//
// # Rate limits
//
// Windows are fixed and aligned to the Unix epoch (domain.RateLimit
// .WindowAt). The record rl.<key>.<window seconds>.<window index> counts
// the tokens taken in that window ({"v":1,"limit":L,"taken":T}); a lease
// adds to T, never past L. The lease size is the demand the node expects
// over the next 100ms at its observed rate (over the next second while
// the window is less than half taken), at least 1, and at most a quarter
// of what is left (rounded up), so that busy nodes share the rest and the
// last tokens go one by one. When the block runs down to half the
// last lease, the node prefetches the next one in the background: a hot
// key waits for no round trip. A window found spent is remembered for
// 100ms (then asked again, to notice tokens given back), so a refused
// hot key costs no round trip either. No node ever accepts more than the
// limit in a window by itself, whatever the record says.
//
// Unused tokens go back (compare-and-set decrement) at Close, when a
// policy changes within the window, and when the key has been idle for a
// second in a contended window (half of it taken): a node that leased the
// last tokens may refuse while another still holds some, for at most
// that second. In an uncontended window an idle node keeps its tokens,
// so a quiet key costs one background round trip per lease and no
// waiting. Tokens die with their window: those of a killed node come
// back at the window's end. A record lives one window and a minute past
// its window's end (a per-message TTL on every write: the bucket allows
// message TTLs), so the windows of old keys do not accumulate, and nodes
// whose clocks lag still find the record. A node counts into the window
// its own clock is in; clocks that disagree move requests between
// adjacent windows, never past a window's limit.
//
// # Credits
//
// The record cr.<key> holds a key's pool for the policy's epoch
// (domain.CreditPolicy.Epoch, the version of the event that set the
// credits): the refill period it was last refilled for, the cumulative
// top-ups already added, the pool no node holds, and the leases nodes
// hold, each with its holder and an expiry. Every write first brings the
// record forward to the writing node's policy: a newer epoch resets it
// (the policy's credits, leases voided); a newer refill period sets the
// pool to max(pool, refill amount) and voids the leases of the past
// period (their holders drop them when their clock reaches the new
// period); top-ups not yet in it are added once (the record remembers the
// cumulative amount added, so three nodes seeing one top-up add it once);
// expired leases are removed. A policy older than the record (a node
// whose read model lags) changes nothing.
//
// A lease is renewed in one compare-and-set that settles what its holder
// spent: the lease's amount becomes what the holder may still spend plus
// what it takes from the pool now (the shortfall of the request waiting,
// or its demand over 100ms, over a second while that is at most a
// sixteenth of the pool; at most a quarter of the pool beyond the
// shortfall). The holder stops using a lease at its deadline, LeaseTTL
// after the write was sent, by its monotonic clock; the record's expiry
// is the same instant by its wall clock, and other nodes remove the lease
// only LeaseTTL after that, so node clocks must agree within LeaseTTL. A
// node renews a lease in use before its deadline and gives an unused one
// back (the pool gets what is left of it) when it nears expiry, when the
// key goes idle with the pool small beside the lease, and at Close.
//
// Exactness is the invariant: the credits accepted across all nodes never
// exceed those granted (initial, top-ups, refills). At every moment
// granted = accepted + pool + what the nodes still hold, minus what was
// written off. Written off, and never spent twice: the lease of a node
// killed (or cut off and never back) while holding it, at expiry: it may
// have spent part of it and nobody can know how much, so at most one
// lease per such node is lost (a lease is at most a quarter of the pool
// beyond the request it serves, small when the pool is small); the
// leases voided by a refill or a new epoch; what a renewal took when its
// answer was lost (timeout). Credits a node gave back are in the pool
// again at once.
//
// # NATS out of reach
//
// Tokens and leases already held keep being used. A decision that needs a
// round trip and cannot have it within Config.Timeout (NATS down, the
// connection reconnecting, or a failure in the last 100ms) is decided
// without NATS, by Config.Unreachable:
//   - Deny (the default): refused with limits_unavailable. Limits are a
//     promise of exactness, often billing; a node that cannot count
//     refuses rather than over-grant. Keys without limits are unaffected.
//   - Local: a rate limit is enforced by the node alone at
//     ceil(limit/ExpectedNodes) per window (counting what it accepted
//     from leases), so a fleet split from NATS accepts about the limit,
//     but one window may then see up to limit + ceil(limit/ExpectedNodes)
//     per node cut off; credits are never spent beyond what the node
//     holds (never an overdraft): past it, limits_unavailable.
//
// After a failed round trip the node leaves NATS alone (no round trip at
// all) for 100ms, doubling up to 5s while failures go on.
//
// # Trust
//
// Whoever may write the bucket (the validator and ledger credentials)
// can write any record: loosen a key's limits (reset a window's count or
// a pool) or tighten them (spend them). A stolen validator credential can
// already answer validations falsely on its own node; through the bucket
// it reaches every node's limits, not the keys' validity. Each honest
// node still accepts at most the limit per window by itself. A record
// that is not one the nodes write (unknown or repeated members, other
// versions, counters out of bounds, more than 256 leases, more than 32
// KiB) is refused: the decision fails closed with limits_unavailable,
// never panics and never grants. The auditor's credentials cannot read
// the bucket. Records hold API key ids, never secrets.
package limits
