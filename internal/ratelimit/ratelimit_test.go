package ratelimit_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/ratelimit"
)

// t0 is the fake clock's start; tests advance time by adding to it, never
// by sleeping.
var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func newFailures(t *testing.T, c ratelimit.FailuresConfig) *ratelimit.Failures {
	t.Helper()
	f, err := ratelimit.NewFailures(c)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newBucket(t *testing.T, c ratelimit.BucketConfig) *ratelimit.Bucket {
	t.Helper()
	b, err := ratelimit.NewBucket(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFailures_Fail(t *testing.T) {
	t.Run("BlocksAtTheLimitForBlock", func(t *testing.T) {
		f := newFailures(t, ratelimit.FailuresConfig{Limit: 3, Window: time.Minute})
		for i := range 2 {
			f.Fail("k", t0.Add(time.Duration(i)*time.Second))
			if got := f.Blocked("k", t0.Add(time.Duration(i)*time.Second)); got != 0 {
				t.Fatalf("after %d failures: got blocked %v, want 0", i+1, got)
			}
		}
		f.Fail("k", t0.Add(10*time.Second))
		if got, want := f.Blocked("k", t0.Add(10*time.Second)), time.Minute; got != want {
			t.Fatalf("after 3 failures: got blocked %v, want %v", got, want)
		}
		if got, want := f.Blocked("k", t0.Add(40*time.Second)), 30*time.Second; got != want {
			t.Fatalf("30s later: got blocked %v, want %v", got, want)
		}
		if got := f.Blocked("other", t0.Add(10*time.Second)); got != 0 {
			t.Fatalf("another key: got blocked %v, want 0", got)
		}
		if got := f.Blocked("k", t0.Add(70*time.Second)); got != 0 {
			t.Fatalf("after the block: got blocked %v, want 0", got)
		}
		// The count starts over after the block.
		f.Fail("k", t0.Add(70*time.Second))
		if got := f.Blocked("k", t0.Add(70*time.Second)); got != 0 {
			t.Fatalf("first failure after the block: got blocked %v, want 0", got)
		}
	})
	t.Run("WindowStartsOver", func(t *testing.T) {
		f := newFailures(t, ratelimit.FailuresConfig{Limit: 3, Window: time.Minute})
		f.Fail("k", t0)
		f.Fail("k", t0.Add(30*time.Second))
		f.Fail("k", t0.Add(61*time.Second)) // a new window: 1 failure
		f.Fail("k", t0.Add(62*time.Second))
		if got := f.Blocked("k", t0.Add(62*time.Second)); got != 0 {
			t.Fatalf("2 failures in the new window: got blocked %v, want 0", got)
		}
		f.Fail("k", t0.Add(63*time.Second))
		if got := f.Blocked("k", t0.Add(63*time.Second)); got != time.Minute {
			t.Fatalf("3 failures in the new window: got blocked %v, want %v", got, time.Minute)
		}
	})
	t.Run("ShorterBlock", func(t *testing.T) {
		f := newFailures(t, ratelimit.FailuresConfig{Limit: 2, Window: time.Hour, Block: time.Minute})
		f.Fail("k", t0)
		f.Fail("k", t0)
		if got := f.Blocked("k", t0); got != time.Minute {
			t.Fatalf("got blocked %v, want %v", got, time.Minute)
		}
		// Still within the window: the next failure blocks again at once.
		f.Fail("k", t0.Add(2*time.Minute))
		if got := f.Blocked("k", t0.Add(2*time.Minute)); got != time.Minute {
			t.Fatalf("failure after the block, same window: got blocked %v, want %v", got, time.Minute)
		}
	})
	t.Run("Nil", func(t *testing.T) {
		var f *ratelimit.Failures
		f.Fail("k", t0)
		f.Forgive("k")
		if f.Blocked("k", t0) != 0 || f.Attempt("k", t0) != 0 || f.Len() != 0 {
			t.Fatal("a nil Failures limited something")
		}
	})
}

func TestFailures_Attempt(t *testing.T) {
	t.Run("RefusesWhileBlocked", func(t *testing.T) {
		f := newFailures(t, ratelimit.FailuresConfig{Limit: 2, Window: time.Minute})
		for i := range 2 {
			if got := f.Attempt("k", t0); got != 0 {
				t.Fatalf("attempt %d: got wait %v, want 0", i+1, got)
			}
		}
		if got := f.Attempt("k", t0.Add(time.Second)); got != 59*time.Second {
			t.Fatalf("attempt 3: got wait %v, want %v", got, 59*time.Second)
		}
	})
	t.Run("ForgiveTakesBackOneAttempt", func(t *testing.T) {
		f := newFailures(t, ratelimit.FailuresConfig{Limit: 3, Window: time.Minute})
		f.Attempt("k", t0) // a failure
		f.Attempt("k", t0) // a failure
		f.Attempt("k", t0) // a success: forgiven
		f.Forgive("k")
		if got := f.Attempt("k", t0); got != 0 {
			t.Fatalf("after 2 failures and a success: got wait %v, want 0", got)
		}
		// That attempt was the third failure: blocked now, and a success
		// elsewhere does not wipe the earlier failures.
		if got := f.Attempt("k", t0); got != time.Minute {
			t.Fatalf("after 3 failures: got wait %v, want %v", got, time.Minute)
		}
	})
	t.Run("ForgiveLiftsABlockItCaused", func(t *testing.T) {
		f := newFailures(t, ratelimit.FailuresConfig{Limit: 2, Window: time.Minute})
		f.Attempt("k", t0)
		f.Attempt("k", t0) // reaches the limit, then turns out a success
		f.Forgive("k")
		if got := f.Attempt("k", t0); got != 0 {
			t.Fatalf("got wait %v, want 0", got)
		}
	})
	t.Run("ConcurrentAttemptsCannotSlipPast", func(t *testing.T) {
		const limit = 5
		f := newFailures(t, ratelimit.FailuresConfig{Limit: limit, Window: time.Minute})
		var wg sync.WaitGroup
		var mu sync.Mutex
		granted := 0
		for range 50 {
			wg.Go(func() {
				if f.Attempt("k", t0) == 0 {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if granted != limit {
			t.Fatalf("got %d attempts granted, want %d", granted, limit)
		}
	})
}

func TestFailures_BoundedMemory(t *testing.T) {
	const max = 1000
	f := newFailures(t, ratelimit.FailuresConfig{Limit: 2, Window: time.Minute, MaxEntries: max})
	// A flood of distinct keys that each fail once.
	for i := range 10 * max {
		f.Fail(fmt.Sprintf("flood-%d", i), t0.Add(time.Second))
		if n := f.Len(); n > max {
			t.Fatalf("after %d keys: got %d entries, want at most %d", i+1, n, max)
		}
	}
}

func TestFailures_EvictsExpiredBeforeLive(t *testing.T) {
	const max = 10
	f := newFailures(t, ratelimit.FailuresConfig{Limit: 1, Window: time.Minute, MaxEntries: max})
	for i := range max - 1 {
		f.Fail(fmt.Sprintf("old-%d", i), t0) // blocked until t0+1m
	}
	f.Fail("live", t0.Add(50*time.Second)) // blocked until t0+1m50s
	// At t0+1m10s the old entries have expired: a new key evicts them, not
	// the live block.
	f.Fail("new", t0.Add(70*time.Second))
	if got := f.Blocked("live", t0.Add(70*time.Second)); got != 40*time.Second {
		t.Fatalf("live: got blocked %v, want %v", got, 40*time.Second)
	}
	if n := f.Len(); n != 2 {
		t.Fatalf("got %d entries, want 2 (live and new)", n)
	}
}

func TestNewFailures_Invalid(t *testing.T) {
	for _, c := range []ratelimit.FailuresConfig{
		{}, {Limit: 1}, {Window: time.Minute}, {Limit: -1, Window: time.Minute},
		{Limit: 1, Window: time.Minute, Block: -1}, {Limit: 1, Window: time.Minute, MaxEntries: -1},
	} {
		if _, err := ratelimit.NewFailures(c); err == nil {
			t.Errorf("NewFailures(%+v): got nil error, want one", c)
		}
	}
}

func TestBucket_Take(t *testing.T) {
	t.Run("BurstThenPaced", func(t *testing.T) {
		b := newBucket(t, ratelimit.BucketConfig{Every: 6 * time.Minute, Burst: 3})
		for i := range 3 {
			if got := b.Take("a", t0); got != 0 {
				t.Fatalf("take %d: got wait %v, want 0", i+1, got)
			}
		}
		if got := b.Take("a", t0); got != 6*time.Minute {
			t.Fatalf("take 4: got wait %v, want %v", got, 6*time.Minute)
		}
		if got := b.Take("a", t0.Add(time.Minute)); got != 5*time.Minute {
			t.Fatalf("a minute later: got wait %v, want %v", got, 5*time.Minute)
		}
		if got := b.Take("b", t0); got != 0 {
			t.Fatalf("another key: got wait %v, want 0", got)
		}
		// One token back every 6 minutes, not more.
		if got := b.Take("a", t0.Add(6*time.Minute)); got != 0 {
			t.Fatalf("after 6 minutes: got wait %v, want 0", got)
		}
		if got := b.Take("a", t0.Add(6*time.Minute)); got != 6*time.Minute {
			t.Fatalf("again after 6 minutes: got wait %v, want %v", got, 6*time.Minute)
		}
		// A long quiet spell refills the bucket to Burst, no more.
		for i := range 3 {
			if got := b.Take("a", t0.Add(24*time.Hour)); got != 0 {
				t.Fatalf("next day, take %d: got wait %v, want 0", i+1, got)
			}
		}
		if got := b.Take("a", t0.Add(24*time.Hour)); got == 0 {
			t.Fatal("next day, take 4: got a token, want none")
		}
	})
	t.Run("RefusedTakesNothing", func(t *testing.T) {
		b := newBucket(t, ratelimit.BucketConfig{Every: time.Minute, Burst: 1})
		b.Take("a", t0)
		for range 100 {
			b.Take("a", t0.Add(30*time.Second))
		}
		if got := b.Take("a", t0.Add(time.Minute)); got != 0 {
			t.Fatalf("refused takes delayed the next token: got wait %v, want 0", got)
		}
	})
	t.Run("Nil", func(t *testing.T) {
		var b *ratelimit.Bucket
		if b.Take("a", t0) != 0 || b.Len() != 0 {
			t.Fatal("a nil Bucket limited something")
		}
	})
}

func TestBucket_BoundedMemory(t *testing.T) {
	const max = 1000
	b := newBucket(t, ratelimit.BucketConfig{Every: time.Minute, Burst: 2, MaxEntries: max})
	for i := range 10 * max {
		b.Take(fmt.Sprintf("k-%d", i), t0)
		if n := b.Len(); n > max {
			t.Fatalf("after %d keys: got %d entries, want at most %d", i+1, n, max)
		}
	}
}

func TestNewBucket_Invalid(t *testing.T) {
	for _, c := range []ratelimit.BucketConfig{
		{}, {Every: time.Minute}, {Burst: 1}, {Every: -1, Burst: 1}, {Every: time.Minute, Burst: 1, MaxEntries: -1},
	} {
		if _, err := ratelimit.NewBucket(c); err == nil {
			t.Errorf("NewBucket(%+v): got nil error, want one", c)
		}
	}
}
