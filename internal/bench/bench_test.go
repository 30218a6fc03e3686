package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBenchPercentile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {99, 10}, {100, 10}, {10, 1}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestBenchWriteTable(t *testing.T) {
	r := newResult("append", "CreateKey clients=1", "ops/s", 600, 1000, "raw publish", 10)
	r.ratioAtLeast(0.5)
	rep := &Report{Machine: ThisMachine(), Scale: 1, Clients: 16, Results: []Result{r}}
	var buf bytes.Buffer
	if err := WriteTable(&buf, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CPUs", "600 ops/s", "1000 ops/s", "0.60", "ratio >= 0.50", "yes", "raw publish"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}
