package validator

import (
	"fmt"
	"testing"
	"time"
)

func TestReplayCache(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	const span = 10 * time.Minute

	t.Run("OncePerPair", func(t *testing.T) {
		c := newReplayCache(span, 100)
		if got := c.add("ak_1", "n1", t0); got != replayFresh {
			t.Fatalf("first: got %d, want fresh", got)
		}
		if got := c.add("ak_1", "n1", t0.Add(time.Second)); got != replaySeen {
			t.Errorf("again: got %d, want seen", got)
		}
		if got := c.add("ak_2", "n1", t0); got != replayFresh {
			t.Errorf("same nonce, other key: got %d, want fresh", got)
		}
		if got := c.add("ak_1n", "1", t0); got != replayFresh {
			t.Errorf("key and nonce split differently: got %d, want fresh", got)
		}
	})

	t.Run("RemembersAtLeastSpan", func(t *testing.T) {
		c := newReplayCache(span, 100)
		c.add("ak_0", "first", t0) // starts the first generation
		at := t0.Add(span - time.Second)
		c.add("ak_1", "late", at) // the last moment of the first generation
		for _, d := range []time.Duration{time.Second, span - time.Second, span} {
			if got := c.add("ak_1", "late", at.Add(d)); got != replaySeen {
				t.Errorf("%v after: got %d, want seen", d, got)
			}
		}
	})

	t.Run("ForgetsAfterTwoSpans", func(t *testing.T) {
		c := newReplayCache(span, 100)
		c.add("ak_1", "n", t0)
		if got := c.add("ak_1", "n", t0.Add(2*span)); got != replayFresh {
			t.Errorf("two spans later: got %d, want fresh (forgotten)", got)
		}
		if c.len() != 1 {
			t.Errorf("len: got %d, want 1", c.len())
		}
	})

	t.Run("FullRefuses", func(t *testing.T) {
		c := newReplayCache(span, 3)
		for i := range 3 {
			if got := c.add("ak_1", fmt.Sprint(i), t0); got != replayFresh {
				t.Fatalf("add %d: got %d, want fresh", i, got)
			}
		}
		if got := c.add("ak_1", "x", t0); got != replayFull {
			t.Errorf("over capacity: got %d, want full", got)
		}
		if got := c.add("ak_1", "0", t0); got != replaySeen {
			t.Errorf("a remembered pair when full: got %d, want seen", got)
		}
		if got := c.add("ak_1", "x", t0.Add(2*span)); got != replayFresh {
			t.Errorf("after the entries age out: got %d, want fresh", got)
		}
	})
}
