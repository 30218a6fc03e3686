package bench

import (
	"context"
	"slices"
	"time"
)

// DefaultRounds is how many interleaved rounds Interleave runs for the
// throughput scenarios: on a machine shared with other work, a load that
// comes and goes then hits the measurement and its baseline alike, and
// the median round is reported.
const DefaultRounds = 3

// Round is one round of Interleave: the measured rate, its baseline's
// rate measured beside it, and the measured operations' durations.
type Round struct {
	Value, Baseline float64
	Took            []time.Duration
	// CPU and BaselineCPU are the process's CPU time (user and system,
	// embedded servers included) per operation of each, in seconds, or 0
	// where the platform does not tell. Unlike rates, they hardly move
	// when other programs load the machine.
	CPU, BaselineCPU float64
}

// Ratio is Value/Baseline (0 without a baseline).
func (r Round) Ratio() float64 {
	if r.Baseline <= 0 {
		return 0
	}
	return r.Value / r.Baseline
}

// Interleaved is the outcome of Interleave.
type Interleaved struct {
	// Median is the round with the median ratio (the lower middle one
	// for an even count).
	Median Round
	// Ratios are every round's ratio, in the order run.
	Ratios []float64
	// Took is every measured operation's duration, over all rounds,
	// sorted.
	Took []time.Duration
	// CPU and BaselineCPU are the medians over the rounds of Round's.
	CPU, BaselineCPU float64
}

// Interleave runs rounds rounds of the baseline and the measurement, one
// right after the other, the baseline first in even rounds and last in odd
// ones, so that neither always runs on a warmer or a quieter machine. The
// baseline returns its rate and how many operations it ran, the
// measurement its rate and each operation's duration. It stops at the
// first error.
func Interleave(ctx context.Context, rounds int,
	baseline func(ctx context.Context, round int) (rate float64, ops int, err error),
	measured func(ctx context.Context, round int) (float64, []time.Duration, error)) (Interleaved, error) {
	var out Interleaved
	var all []Round
	for i := range max(rounds, 1) {
		var r Round
		var err error
		runBaseline := func() error {
			start, ok := processCPU()
			var ops int
			r.Baseline, ops, err = baseline(ctx, i)
			if end, ok2 := processCPU(); ok && ok2 && ops > 0 {
				r.BaselineCPU = (end - start).Seconds() / float64(ops)
			}
			return err
		}
		runMeasured := func() error {
			start, ok := processCPU()
			r.Value, r.Took, err = measured(ctx, i)
			if end, ok2 := processCPU(); ok && ok2 && len(r.Took) > 0 {
				r.CPU = (end - start).Seconds() / float64(len(r.Took))
			}
			return err
		}
		first, second := runBaseline, runMeasured
		if i%2 == 1 {
			first, second = runMeasured, runBaseline
		}
		if err := first(); err != nil {
			return out, err
		}
		if err := second(); err != nil {
			return out, err
		}
		all = append(all, r)
		out.Ratios = append(out.Ratios, r.Ratio())
		out.Took = append(out.Took, r.Took...)
	}
	slices.Sort(out.Took)
	cpu, baseCPU := make([]float64, len(all)), make([]float64, len(all))
	for i, r := range all {
		cpu[i], baseCPU[i] = r.CPU, r.BaselineCPU
	}
	out.CPU, out.BaselineCPU = median(cpu), median(baseCPU)
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, func(a, b Round) int {
		switch {
		case a.Ratio() < b.Ratio():
			return -1
		case a.Ratio() > b.Ratio():
			return 1
		}
		return 0
	})
	out.Median = sorted[(len(sorted)-1)/2]
	return out, nil
}

// median is the middle value of xs (the lower middle one for an even
// count), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// AddRounds notes the interleaved rounds in r's details: how many, and
// the lowest and highest ratio.
func (r *Result) AddRounds(in Interleaved) {
	if r.Details == nil {
		r.Details = map[string]float64{}
	}
	r.Details["rounds"] = float64(len(in.Ratios))
	r.Details["ratio_min"] = slices.Min(in.Ratios)
	r.Details["ratio_max"] = slices.Max(in.Ratios)
	if in.CPU > 0 && in.BaselineCPU > 0 {
		r.Details["cpu_us_per_op"] = in.CPU * 1e6
		r.Details["baseline_cpu_us_per_op"] = in.BaselineCPU * 1e6
		// Baseline CPU per op over measured: the ratio the rates would
		// have on a machine this process has to itself, CPU-bound.
		r.Details["cpu_ratio"] = in.BaselineCPU / in.CPU
	}
}
