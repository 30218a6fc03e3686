package limits

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// rateFlight starts a round trip that leases rate tokens for the key's
// current window, unless one is in flight; it returns a channel closed
// when the round trip is over. ks.mu is held.
func (l *Limiter) rateFlight(ks *keyState, now time.Time) chan struct{} {
	rs := ks.rate
	if rs.flight != nil {
		return rs.flight
	}
	mono := time.Now()
	rs.rate = estimate(rs.rate, rs.served, rs.lastFetch, mono)
	rs.served, rs.lastFetch = 0, mono
	horizon := leaseHorizon
	if rs.takenSeen < rs.limit/2 {
		horizon = quietHorizon
	}
	want := demand(rs.rate, horizon)
	if room := rs.limit - min(rs.accepted+rs.avail, rs.limit); want > room {
		want = max(room, 1)
	}
	done := make(chan struct{})
	rs.flight = done
	key := rateKey(ks.apiKey, rs.window, rs.index)
	limit, end, window := rs.limit, rs.end, rs.window
	started := l.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
		granted, taken, err := l.leaseTokens(ctx, key, limit, want, end, window, now)
		cancel()
		l.roundTripDone(err)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		defer close(done)
		mono := time.Now()
		cur := ks.rate
		if cur == rs || (cur.limit == limit && cur.window == window && cur.index == rs.index) {
			cur.avail += granted
			cur.lastLease = granted
			if err == nil {
				cur.takenSeen = taken
				if granted == 0 {
					cur.exhaustedUntil = mono.Add(recheckEvery)
				} else {
					cur.exhaustedUntil = time.Time{}
				}
			} else {
				cur.failedUntil = mono.Add(recheckEvery)
				l.log.Warn("limits: cannot lease rate limit tokens", "api_key", ks.apiKey, "err", err)
			}
		} else if granted > 0 && cur.window == window && cur.index == rs.index {
			l.spawn(func(ctx context.Context) { _ = l.returnTokens(ctx, key, granted, end, window, now) })
		}
		rs.flight = nil
	})
	if !started {
		rs.flight = nil
		close(done)
	}
	return done
}

// windowTTL is how long a window's record lives from now: past the
// window's end by one more window and windowGrace, for nodes whose clocks
// lag.
func windowTTL(end time.Time, window time.Duration, now time.Time) time.Duration {
	return max(end.Sub(now), 0) + window + windowGrace
}

// leaseTokens takes up to want tokens of a window's record, at most
// ceil(left/maxShare) of the left ones and never beyond limit. It returns
// the tokens granted and the record's count after.
func (l *Limiter) leaseTokens(ctx context.Context, key string, limit, want uint64, end time.Time, window time.Duration, now time.Time) (uint64, uint64, error) {
	for range casTries {
		data, rev, err := l.st.get(ctx, key)
		l.m.roundTrips.Inc()
		if err != nil {
			return 0, 0, err
		}
		r := rateRecord{Limit: limit}
		if data != nil {
			if r, err = decodeRate(data); err != nil {
				return 0, 0, err
			}
		}
		if r.Taken >= limit {
			return 0, r.Taken, nil
		}
		left := limit - r.Taken
		g := min(want, left, ceilDiv(left, maxShare))
		r.Limit, r.Taken = limit, r.Taken+g
		_, err = l.st.put(ctx, key, r.encode(), rev, windowTTL(end, window, now))
		l.m.roundTrips.Inc()
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		l.m.leases.WithLabelValues("rate", "granted").Add(float64(g))
		return g, r.Taken, nil
	}
	return 0, 0, fmt.Errorf("lease rate tokens: %d compare-and-set attempts lost", casTries)
}

// returnTokens gives n unused tokens back to a window's record, if the
// window has not ended.
func (l *Limiter) returnTokens(ctx context.Context, key string, n uint64, end time.Time, window time.Duration, now time.Time) error {
	if !now.Before(end) || n == 0 {
		return nil
	}
	ctx, cancel := l.giveBackContext(ctx)
	defer cancel()
	for range casTries {
		data, rev, err := l.st.get(ctx, key)
		l.m.roundTrips.Inc()
		if err != nil || data == nil {
			return err
		}
		r, err := decodeRate(data)
		if err != nil {
			return err
		}
		r.Taken -= min(n, r.Taken)
		_, err = l.st.put(ctx, key, r.encode(), rev, windowTTL(end, window, now))
		l.m.roundTrips.Inc()
		if errors.Is(err, errConflict) {
			continue
		}
		if err == nil {
			l.m.leases.WithLabelValues("rate", "returned").Add(float64(n))
		}
		return err
	}
	return fmt.Errorf("return rate tokens: %d compare-and-set attempts lost", casTries)
}

// creditFlight starts a round trip that renews the node's credits lease
// (settling what it spent, taking more from the pool), unless one is in
// flight. short is what the request waiting for it lacks (0: a prefetch
// or a renewal). ks.mu is held.
func (l *Limiter) creditFlight(ks *keyState, p domain.CreditPolicy, now time.Time, cost uint64) chan struct{} {
	cs := ks.cr
	if cs.flight != nil {
		return cs.flight
	}
	mono := time.Now()
	cs.rate = estimate(cs.rate, cs.served, cs.lastFetch, mono)
	cs.served, cs.lastFetch = 0, mono
	var short uint64
	if cost > cs.avail {
		short = cost - cs.avail
	}
	want := demand(cs.rate, leaseHorizon)
	if quiet := demand(cs.rate, quietHorizon); quiet <= cs.poolSeen/(maxShare*maxShare) {
		want = quiet
	}
	want = max(want, short)
	done := make(chan struct{})
	cs.flight = done
	snap, epoch, period := cs.avail, cs.epoch, cs.period
	started := l.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
		res, err := l.leaseCredits(ctx, ks.apiKey, p, now, snap, short, want)
		cancel()
		l.roundTripDone(err)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		defer close(done)
		cs.flight = nil
		mono := time.Now()
		if err != nil {
			// Whether the write landed is unknown: what it would have
			// granted is never used.
			cs.failedUntil = mono.Add(recheckEvery)
			l.log.Warn("limits: cannot lease credits", "api_key", ks.apiKey, "err", err)
			return
		}
		if cs.epoch != epoch || cs.period != period {
			// The node moved on to a new epoch or period meanwhile: the
			// lease is of the past one. The next round trip settles it.
			if res.rec.Epoch < cs.epoch || (res.rec.Epoch == cs.epoch && res.rec.Period < cs.period) {
				return
			}
		}
		if res.mine {
			cs.avail += res.granted
		} else {
			cs.avail = res.granted
		}
		cs.avail = min(cs.avail, res.amount)
		cs.epoch, cs.period = res.rec.Epoch, res.rec.Period
		cs.held = res.amount > 0
		cs.deadline = res.sent.Add(l.cfg.LeaseTTL)
		cs.poolSeen = res.rec.Pool
		cs.lastLease = res.granted
		cs.failedUntil = time.Time{}
		if res.granted < short {
			cs.exhaustedUntil = mono.Add(recheckEvery)
		} else {
			cs.exhaustedUntil = time.Time{}
		}
	})
	if !started {
		cs.flight = nil
		close(done)
	}
	return done
}

// leased is the outcome of leaseCredits.
type leased struct {
	rec     creditRecord
	granted uint64
	amount  uint64    // the node's lease in the record now
	mine    bool      // the record still held the node's previous lease
	sent    time.Time // monotonic time the successful write was sent
}

// leaseCredits settles a key's record (policy, refills, top-ups, expired
// leases), then renews the node's lease in one compare-and-set: what the
// node may still spend of it is snap, and it takes from the pool up to
// want (at least short if the pool has it, else what the pool has), at
// most ceil(pool/maxShare) beyond short.
func (l *Limiter) leaseCredits(ctx context.Context, apiKey string, p domain.CreditPolicy, now time.Time, snap, short, want uint64) (leased, error) {
	key := creditsKey(apiKey)
	for range casTries {
		data, rev, err := l.st.get(ctx, key)
		l.m.roundTrips.Inc()
		if err != nil {
			return leased{}, err
		}
		wall := time.Now()
		var r creditRecord
		var expired, voided uint64
		if data == nil {
			r = freshCredits(p, now)
		} else {
			if r, err = decodeCredits(data); err != nil {
				return leased{}, err
			}
			voided, expired, _ = r.settle(p, now, wall, l.cfg.LeaseTTL)
		}
		res := leased{}
		i := r.leaseOf(l.leaseID)
		keep := uint64(0)
		if i >= 0 {
			res.mine = true
			keep = min(snap, r.Leases[i].Amount)
			r.Leases = append(r.Leases[:i], r.Leases[i+1:]...)
		}
		g := min(r.Pool, max(short, min(want, ceilDiv(r.Pool, maxShare))))
		r.Pool -= g
		res.granted, res.amount = g, keep+g
		if res.amount > 0 {
			if len(r.Leases) >= maxLeases {
				return leased{}, fmt.Errorf("credits of %s: %d leases held already", apiKey, len(r.Leases))
			}
			r.Leases = append(r.Leases, lease{ID: l.leaseID, Amount: res.amount, Expires: wall.Add(l.cfg.LeaseTTL).UnixMilli()})
		}
		// The expiry is stamped from wall; the holder's deadline counts
		// from the same instant on the monotonic clock, so it is never
		// later.
		res.sent = wall
		_, err = l.st.put(ctx, key, r.encode(), rev, 0)
		l.m.roundTrips.Inc()
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return leased{}, err
		}
		l.m.leases.WithLabelValues("credits", "granted").Add(float64(g))
		l.m.leases.WithLabelValues("credits", "expired").Add(float64(expired))
		l.m.leases.WithLabelValues("credits", "voided").Add(float64(voided))
		res.rec = r
		return res, nil
	}
	return leased{}, fmt.Errorf("lease credits: %d compare-and-set attempts lost", casTries)
}

// releaseCredits gives the node's credits lease back: it stops spending
// it first, then returns what is left of it to the pool. If the write
// fails the lease is lost (written off at its expiry), never spent twice.
func (l *Limiter) releaseCredits(ctx context.Context, ks *keyState) error {
	ks.mu.Lock()
	cs := ks.cr
	if cs == nil || !cs.held || cs.flight != nil {
		ks.mu.Unlock()
		return nil
	}
	snap := cs.avail
	if !time.Now().Before(cs.deadline) {
		snap = 0
	}
	cs.avail, cs.held, cs.lastLease = 0, false, 0
	done := make(chan struct{})
	cs.flight = done
	ks.mu.Unlock()
	defer func() {
		ks.mu.Lock()
		cs.flight = nil
		close(done)
		ks.mu.Unlock()
	}()
	ctx, cancel := l.giveBackContext(ctx)
	defer cancel()
	key := creditsKey(ks.apiKey)
	for range casTries {
		data, rev, err := l.st.get(ctx, key)
		l.m.roundTrips.Inc()
		if err != nil || data == nil {
			return err
		}
		r, err := decodeCredits(data)
		if err != nil {
			return err
		}
		i := r.leaseOf(l.leaseID)
		if i < 0 {
			return nil // voided or expired meanwhile
		}
		back := min(snap, r.Leases[i].Amount)
		r.Leases = append(r.Leases[:i], r.Leases[i+1:]...)
		if len(r.Leases) == 0 {
			r.Leases = nil
		}
		r.Pool = satAdd(r.Pool, back)
		_, err = l.st.put(ctx, key, r.encode(), rev, 0)
		l.m.roundTrips.Inc()
		if errors.Is(err, errConflict) {
			continue
		}
		if err == nil {
			l.m.leases.WithLabelValues("credits", "returned").Add(float64(back))
		}
		return err
	}
	return fmt.Errorf("return credits: %d compare-and-set attempts lost", casTries)
}

// giveBack returns what the node holds of a key, all of it (Close) or
// what an idle key holds where others may want it:
//   - rate tokens of the current window, once the key is idle (unused for
//     the idle time) and the window is contended (at least half of it
//     taken when the node last asked); tokens of an ended window die;
//   - the credits lease, once the key is idle and the pool is small
//     beside it (less than maxShare times what the node holds), or when
//     the lease nears its expiry unused since it was last renewed; a
//     lease in use is renewed then instead.
//
// An idle key whose limits nobody else competes for keeps its tokens, so
// that a quiet key costs no waiting round trip per request.
func (l *Limiter) giveBack(ctx context.Context, ks *keyState, all bool) error {
	mono := time.Now()
	now := l.cfg.Clock()
	ks.mu.Lock()
	idle := all || mono.Sub(ks.lastUse) >= time.Duration(l.idle.Load())
	var rateBack func() error
	if rs := ks.rate; rs != nil && rs.avail > 0 && rs.flight == nil {
		switch {
		case !now.Before(rs.end):
			rs.avail = 0 // the window ended: its record counts them
		case all || (idle && rs.takenSeen >= rs.limit/2):
			n, key, end, w := rs.avail, rateKey(ks.apiKey, rs.window, rs.index), rs.end, rs.window
			rs.avail = 0
			rateBack = func() error { return l.returnTokens(ctx, key, n, end, w, now) }
		}
	}
	release := false
	if cs := ks.cr; cs != nil && cs.held && cs.flight == nil {
		expiring := cs.deadline.Sub(mono) < l.cfg.LeaseTTL/2
		usedSince := ks.lastUse.After(cs.lastFetch)
		switch {
		case all || (idle && cs.poolSeen < cs.avail*maxShare) || (expiring && !usedSince):
			release = true
		case expiring:
			l.creditFlight(ks, cs.policy, now, 0)
		}
	}
	ks.mu.Unlock()
	var errs []error
	if rateBack != nil {
		errs = append(errs, rateBack())
	}
	if release {
		errs = append(errs, l.releaseCredits(ctx, ks))
	}
	return errors.Join(errs...)
}

// janitor gives back what idle keys hold, renews the credits leases of
// busy ones before they expire, and forgets keys unused for evictAfter.
func (l *Limiter) janitor() {
	defer l.wg.Done()
	tick := time.NewTicker(min(l.cfg.LeaseTTL/4, 250*time.Millisecond))
	defer tick.Stop()
	lastEvict := time.Now()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-tick.C:
		}
		mono := time.Now()
		for _, ks := range l.snapshot() {
			if l.ctx.Err() != nil {
				return
			}
			if !l.reachable(mono) {
				break
			}
			_ = l.giveBack(l.ctx, ks, false)
		}
		if mono.Sub(lastEvict) >= evictAfter/4 {
			l.evict(mono)
			lastEvict = mono
		}
	}
}

// evict forgets the keys unused for evictAfter that hold nothing.
func (l *Limiter) evict(mono time.Time) {
	l.keys.Range(func(k, v any) bool {
		ks := v.(*keyState)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		quiet := mono.Sub(ks.lastUse) >= evictAfter &&
			(ks.rate == nil || (ks.rate.avail == 0 && ks.rate.flight == nil)) &&
			(ks.cr == nil || (!ks.cr.held && ks.cr.flight == nil))
		if quiet {
			// A Take that found it before it went holds it: dead tells
			// it to look again, so that a key never has two states.
			ks.dead = true
			l.keys.Delete(k)
		}
		return true
	})
}

// giveBackContext bounds a give-back: by the decision timeout while the
// Limiter runs, by the caller's context alone once Close began (shutdown
// may take longer than a decision, and what is not given back is lost).
func (l *Limiter) giveBackContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.isClosed() {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, l.cfg.Timeout)
}
