package bench

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestInterleave: the baseline and the measurement alternate which runs
// first, the round with the median ratio is reported with its own value
// and baseline, and every round's durations are kept, sorted.
func TestInterleave(t *testing.T) {
	t.Parallel()
	var order []string
	values := []float64{50, 10, 30} // ratios 0.5, 0.1, 0.3 over a baseline of 100
	in, err := Interleave(context.Background(), 3, func(_ context.Context, round int) (float64, int, error) {
		order = append(order, "baseline")
		return 100, 10, nil
	}, func(_ context.Context, round int) (float64, []time.Duration, error) {
		order = append(order, "measured")
		return values[round], []time.Duration{time.Duration(3 - round)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []string{"baseline", "measured", "measured", "baseline", "baseline", "measured"}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("order %v, want %v", order, wantOrder)
	}
	if in.Median.Value != 30 || in.Median.Baseline != 100 || in.Median.Ratio() != 0.3 {
		t.Errorf("median round %+v, want value 30 over 100", in.Median)
	}
	if !slices.Equal(in.Ratios, []float64{0.5, 0.1, 0.3}) {
		t.Errorf("ratios %v", in.Ratios)
	}
	if !slices.Equal(in.Took, []time.Duration{1, 2, 3}) {
		t.Errorf("took %v, want every round's, sorted", in.Took)
	}
	r := newResult("s", "c", "ops/s", in.Median.Value, in.Median.Baseline, "b", len(in.Took))
	r.AddRounds(in)
	if r.Details["rounds"] != 3 || r.Details["ratio_min"] != 0.1 || r.Details["ratio_max"] != 0.5 {
		t.Errorf("details %v", r.Details)
	}

	boom := errors.New("boom")
	if _, err := Interleave(context.Background(), 3, func(context.Context, int) (float64, int, error) { return 0, 0, boom },
		func(context.Context, int) (float64, []time.Duration, error) { return 1, nil, nil }); !errors.Is(err, boom) {
		t.Errorf("got %v, want the baseline's error", err)
	}
}
