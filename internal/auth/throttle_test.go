package auth

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var throttleT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// failFree spends the account's free attempts at now.
func failFree(t *testing.T, th *Throttle, account string, now time.Time) {
	t.Helper()
	for i := range th.Free {
		if got := th.Attempt(account, "", now); got != 0 {
			t.Fatalf("free attempt %d: got wait %v, want 0", i+1, got)
		}
	}
}

func TestNewThrottle(t *testing.T) {
	t.Parallel()
	th := NewThrottle()
	if th.Free != 5 || th.Window != 15*time.Minute || th.BaseWait != time.Second || th.MaxDelay != 15*time.Minute ||
		th.UnderAttack != 10 {
		t.Errorf("got Free %v, Window %v, BaseWait %v, MaxDelay %v, UnderAttack %v, want 5, 15m, 1s, 15m, 10",
			th.Free, th.Window, th.BaseWait, th.MaxDelay, th.UnderAttack)
	}
}

func TestThrottle_Attempt(t *testing.T) {
	t.Parallel()
	t.Run("FreeThenWait", func(t *testing.T) {
		th := NewThrottle()
		failFree(t, th, "alice", throttleT0)
		if got := th.Attempt("alice", "", throttleT0); got != th.BaseWait {
			t.Errorf("attempt %d: got %v, want %v", th.Free+1, got, th.BaseWait)
		}
	})

	t.Run("LockedAttemptsDoNotCount", func(t *testing.T) {
		th := NewThrottle()
		failFree(t, th, "alice", throttleT0)
		for range 10 {
			th.Attempt("alice", "", throttleT0.Add(time.Second/2))
		}
		if got := th.Attempt("alice", "", throttleT0.Add(time.Second/2)); got != time.Second/2 {
			t.Errorf("got %v, want %v", got, time.Second/2)
		}
	})

	t.Run("AllowedAfterWait", func(t *testing.T) {
		th := NewThrottle()
		failFree(t, th, "alice", throttleT0)
		end := throttleT0.Add(th.BaseWait)
		if got := th.Attempt("alice", "", end.Add(-time.Nanosecond)); got != time.Nanosecond {
			t.Errorf("just before: got %v, want %v", got, time.Nanosecond)
		}
		if got := th.Attempt("alice", "", end); got != 0 {
			t.Errorf("at the end of the wait: got %v, want 0", got)
		}
		if got := th.Attempt("alice", "", end); got != 2*th.BaseWait {
			t.Errorf("right after: got %v, want %v", got, 2*th.BaseWait)
		}
	})

	t.Run("WaitsDouble", func(t *testing.T) {
		// One client alone: the per-email attack rule stays out of it.
		th := NewThrottle()
		th.UnderAttack = 0
		failFree(t, th, "alice", throttleT0)
		now := throttleT0
		want := th.BaseWait
		// 1 s .. 256 s: 511 s in all, inside the window.
		for i := range 9 {
			got := th.Attempt("alice", "", now)
			if got != want {
				t.Fatalf("failure %d: got wait %v, want %v", th.Free+i, got, want)
			}
			now = now.Add(got)
			if got := th.Attempt("alice", "", now); got != 0 {
				t.Fatalf("after waiting %v: got %v, want 0", want, got)
			}
			want *= 2
		}
	})

	t.Run("CappedAtMaxDelay", func(t *testing.T) {
		// One client alone: the per-email attack rule stays out of it.
		// A window longer than the whole run, so that the count keeps
		// growing: past MaxDelay and past the shift cap of 30.
		th := NewThrottle()
		th.UnderAttack = 0
		th.Window = 365 * 24 * time.Hour
		failFree(t, th, "alice", throttleT0)
		now := throttleT0
		want := th.BaseWait
		for over := range 70 {
			got := th.Attempt("alice", "", now)
			if got != want {
				t.Fatalf("failure %d: got wait %v, want %v", th.Free+over, got, want)
			}
			now = now.Add(got)
			if got := th.Attempt("alice", "", now); got != 0 {
				t.Fatalf("after waiting: got %v, want 0", got)
			}
			want = min(2*want, th.MaxDelay)
		}
	})

	t.Run("HugeBaseWait", func(t *testing.T) {
		// One client alone: the per-email attack rule stays out of it.
		// BaseWait << over overflows; the wait must still be MaxDelay.
		th := NewThrottle()
		th.UnderAttack = 0
		th.BaseWait = 1 << 40 // ~18 min; << 23 is negative, << 24 is 0
		th.MaxDelay = 1 << 50
		th.Window = 1 << 62
		failFree(t, th, "alice", throttleT0)
		now := throttleT0
		for range 35 {
			got := th.Attempt("alice", "", now)
			if got <= 0 || got > th.MaxDelay {
				t.Fatalf("got %v, want in (0, %v]", got, th.MaxDelay)
			}
			now = now.Add(got)
			th.Attempt("alice", "", now)
		}
	})

	// Exposes a bug: the window runs from the first failure and resets the
	// count when it ends, whatever happened since. With the defaults the
	// waits 1 s + 2 s + ... + 512 s add up to 1023 s > 15 min, so the count
	// resets (5 free guesses again) before a wait ever reaches MaxDelay.
	t.Run("DefaultsReachMaxDelay", func(t *testing.T) {
		// One client alone: the per-email attack rule stays out of it.
		th := NewThrottle()
		th.UnderAttack = 0
		failFree(t, th, "alice", throttleT0)
		now := throttleT0
		prev := time.Duration(0)
		for over := range 15 {
			want := min(th.BaseWait<<over, th.MaxDelay)
			got := th.Attempt("alice", "", now)
			if got != want {
				t.Errorf("failure %d, %v after the first, after a wait of %v: got wait %v, want %v",
					th.Free+over, now.Sub(throttleT0), prev, got, want)
				return
			}
			prev = got
			now = now.Add(got)
			if got := th.Attempt("alice", "", now); got != 0 {
				t.Fatalf("after waiting: got %v, want 0", got)
			}
		}
	})

	t.Run("SucceedClears", func(t *testing.T) {
		th := NewThrottle()
		failFree(t, th, "alice", throttleT0)
		if got := th.Attempt("alice", "", throttleT0); got == 0 {
			t.Fatalf("locked: got 0, want > 0")
		}
		th.Succeed("alice", "")
		if _, ok := th.entries[pairKey("alice", "")]; ok {
			t.Errorf("entry after Succeed: got one, want none")
		}
		failFree(t, th, "alice", throttleT0)
		if got := th.Attempt("alice", "", throttleT0); got != th.BaseWait {
			t.Errorf("got %v, want %v", got, th.BaseWait)
		}
		th.Succeed("nobody", "") // no entry: no-op
	})

	t.Run("WindowCounts", func(t *testing.T) {
		// Failures spread over less than the window add up.
		th := NewThrottle()
		for i := range th.Free {
			now := throttleT0.Add(time.Duration(i) * (th.Window - time.Second) / time.Duration(th.Free-1))
			if got := th.Attempt("alice", "", now); got != 0 {
				t.Fatalf("attempt %d: got %v, want 0", i+1, got)
			}
		}
		if got := th.Attempt("alice", "", throttleT0.Add(th.Window-time.Second)); got == 0 {
			t.Errorf("attempt %d: got 0, want > 0", th.Free+1)
		}
	})

	t.Run("WindowResets", func(t *testing.T) {
		th := NewThrottle()
		for range th.Free - 1 {
			th.Attempt("alice", "", throttleT0)
		}
		later := throttleT0.Add(th.Window + time.Second)
		failFree(t, th, "alice", later)
		if got := th.Attempt("alice", "", later); got != th.BaseWait {
			t.Errorf("attempt %d after the window: got %v, want %v", th.Free+1, got, th.BaseWait)
		}
	})

	t.Run("AccountsIndependent", func(t *testing.T) {
		th := NewThrottle()
		failFree(t, th, "alice", throttleT0)
		if got := th.Attempt("alice", "", throttleT0); got == 0 {
			t.Fatalf("alice: got 0, want > 0")
		}
		failFree(t, th, "bob", throttleT0)
		th.Succeed("bob", "")
		if got := th.Attempt("alice", "", throttleT0); got == 0 {
			t.Errorf("alice after bob's success: got 0, want > 0")
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		th := NewThrottle()
		var granted atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 50 {
			wg.Go(func() {
				<-start
				if th.Attempt("alice", "", throttleT0) == 0 {
					granted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := int(granted.Load()); got != th.Free {
			t.Errorf("granted: got %v, want %v", got, th.Free)
		}
	})
}

func TestThrottle_Bounded(t *testing.T) {
	t.Parallel()
	t.Run("Flood", func(t *testing.T) {
		th := NewThrottle()
		peak := 0
		for i := range 2*maxThrottleEntries + 500 {
			th.Attempt("flood-"+strconv.Itoa(i), "", throttleT0.Add(time.Duration(i)*time.Millisecond))
			peak = max(peak, len(th.entries))
		}
		if peak > maxThrottleEntries {
			t.Errorf("peak entries: got %v, want <= %v", peak, maxThrottleEntries)
		}
	})

	t.Run("EvictsExpiredFirst", func(t *testing.T) {
		th := NewThrottle()
		for i := range maxThrottleEntries - 2 {
			th.Attempt("old-"+strconv.Itoa(i), "", throttleT0)
		}
		later := throttleT0.Add(2 * th.Window)
		// alice was locked out, but that and her window ended long ago.
		failFree(t, th, "alice", throttleT0)
		// bob is recent, and locked out: he must survive.
		failFree(t, th, "bob", later.Add(-time.Millisecond))
		if got := len(th.entries); got != maxThrottleEntries {
			t.Fatalf("entries: got %v, want %v", got, maxThrottleEntries)
		}
		th.Attempt("new", "", later)
		if got := len(th.entries); got != 2 {
			t.Errorf("entries after eviction: got %v, want %v", got, 2)
		}
		if got := th.Attempt("bob", "", later); got == 0 {
			t.Errorf("bob after eviction: got 0, want > 0")
		}
	})
}

func TestThrottle_Refund(t *testing.T) {
	t.Parallel()
	t.Run("LiftsTheWaitItCaused", func(t *testing.T) {
		th := NewThrottle()
		failFree(t, th, "alice", throttleT0) // the last one starts a wait...
		th.Refund("alice", "")               // ...but checked no password
		if got := th.Attempt("alice", "", throttleT0); got != 0 {
			t.Fatalf("got wait %v, want 0", got)
		}
		if got := th.Attempt("alice", "", throttleT0); got != th.BaseWait {
			t.Fatalf("next attempt: got wait %v, want %v", got, th.BaseWait)
		}
	})
	t.Run("KeepsEarlierFailures", func(t *testing.T) {
		th := NewThrottle()
		failFree(t, th, "alice", throttleT0)
		th.Attempt("alice", "", throttleT0.Add(th.BaseWait)) // the 6th: a wait of 2 s
		th.Refund("alice", "")
		if got := th.Attempt("alice", "", throttleT0.Add(th.BaseWait)); got == 0 {
			t.Fatal("got no wait after 5 failures and a refunded attempt, want one")
		}
	})
	t.Run("UnknownAccount", func(t *testing.T) {
		th := NewThrottle()
		th.Refund("nobody", "")
		if got := th.Attempt("nobody", "", throttleT0); got != 0 {
			t.Fatalf("got wait %v, want 0", got)
		}
	})
}

// TestThrottle_NotWeaponised: wrong passwords for someone's email from
// other addresses never delay the owner's own clean address, however many.
func TestThrottle_NotWeaponised(t *testing.T) {
	t.Parallel()
	th := NewThrottle()
	now := throttleT0
	for c := range 200 {
		client := "198.51.100." + strconv.Itoa(c)
		for range th.Free + 3 {
			th.Attempt("alice@example.com", client, now)
		}
		now = now.Add(time.Second)
	}
	for range 3 { // the owner, from an address that has not failed: checked every time
		if got := th.Attempt("alice@example.com", "192.0.2.1", now); got != 0 {
			t.Fatalf("owner's clean address: got wait %v, want 0", got)
		}
		th.Succeed("alice@example.com", "192.0.2.1")
	}
	if got := th.Attempt("alice@example.com", "198.51.100.7", now); got == 0 {
		t.Error("an attacking address: got no wait, want one")
	}
}

// TestThrottle_UnderAttack: once an email has had UnderAttack failures,
// each client that failed for it is refused until its window ends; a
// client that has not failed still gets its attempt.
func TestThrottle_UnderAttack(t *testing.T) {
	t.Parallel()
	th := NewThrottle()
	const email = "alice@example.com"
	client := func(i int) string { return "198.51.100." + strconv.Itoa(i) }
	// One failure each from UnderAttack-1 addresses: not yet under attack,
	// each may fail again.
	for i := range th.UnderAttack - 1 {
		if got := th.Attempt(email, client(i), throttleT0); got != 0 {
			t.Fatalf("client %d: got wait %v, want 0", i, got)
		}
	}
	if got := th.Attempt(email, client(0), throttleT0.Add(time.Minute)); got != 0 {
		t.Fatalf("second failure before the attack: got wait %v, want 0", got)
	}
	// That made UnderAttack failures: every failing client now waits for
	// its own window to end.
	at := throttleT0.Add(2 * time.Minute)
	for i := range th.UnderAttack - 1 {
		if got, want := th.Attempt(email, client(i), at), th.Window-2*time.Minute; got != want {
			t.Fatalf("failing client %d: got wait %v, want %v", i, got, want)
		}
	}
	// A fresh address gets one attempt, then it is one of the failing.
	if got := th.Attempt(email, client(100), at); got != 0 {
		t.Fatalf("fresh client: got wait %v, want 0", got)
	}
	if got := th.Attempt(email, client(100), at); got != th.Window {
		t.Fatalf("fresh client's second attempt: got wait %v, want %v", got, th.Window)
	}
	// The owner's success does not end the attack for the others.
	if got := th.Attempt(email, "192.0.2.1", at); got != 0 {
		t.Fatalf("owner: got wait %v, want 0", got)
	}
	th.Succeed(email, "192.0.2.1")
	if got := th.Attempt(email, client(1), at); got == 0 {
		t.Fatal("failing client after the owner's success: got no wait, want one")
	}
	// Other emails are not under attack.
	failFree(t, th, "bob@example.com", at)
	// Once the window is over the count starts afresh.
	later := throttleT0.Add(th.Window + time.Second)
	if got := th.Attempt(email, client(1), later); got != 0 {
		t.Fatalf("after the window: got wait %v, want 0", got)
	}
}

// TestThrottle_BoundedEmails: a flood of distinct emails keeps both
// tables within their bound.
func TestThrottle_BoundedEmails(t *testing.T) {
	t.Parallel()
	th := NewThrottle()
	peakPairs, peakEmails := 0, 0
	for i := range maxThrottleEntries + maxThrottleEntries/2 {
		th.Attempt("flood-"+strconv.Itoa(i)+"@example.com", "198.51.100.1", throttleT0)
		p, e := th.Len()
		peakPairs, peakEmails = max(peakPairs, p), max(peakEmails, e)
	}
	if peakPairs > maxThrottleEntries || peakEmails > maxThrottleEntries {
		t.Errorf("peak entries: got %d pairs, %d emails, want <= %d each", peakPairs, peakEmails, maxThrottleEntries)
	}
}
