package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/bench"
)

func TestBench(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"bench", "--scale", "0.01", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("decode JSON: %v\n%s", err, stdout.String())
	}
	if rep.Machine.NumCPU <= 0 || rep.Machine.GOMAXPROCS <= 0 || rep.Machine.GOOS == "" || rep.Machine.GOARCH == "" {
		t.Errorf("machine = %+v, want CPU count, GOMAXPROCS, GOOS and GOARCH", rep.Machine)
	}
	want := []string{"append", "http-create", "validate", "validate-signed", "validate-http", "revocation", "replay", "limits", "usage-flush", "ready", "memory", "failover"}
	if !slices.Equal(rep.Scenarios, want) {
		t.Errorf("scenarios = %v, want %v", rep.Scenarios, want)
	}
	for _, name := range want {
		var n int
		for _, r := range rep.Results {
			if r.Scenario != name {
				continue
			}
			n++
			if r.Value <= 0 || r.Baseline <= 0 || r.Ratio <= 0 || r.Samples <= 0 || r.BaselineName == "" {
				t.Errorf("%s/%s: got value %v, baseline %v (%q), ratio %v, samples %d, want all positive",
					r.Scenario, r.Case, r.Value, r.Baseline, r.BaselineName, r.Ratio, r.Samples)
			}
		}
		if n == 0 {
			t.Errorf("no results for scenario %s", name)
		}
	}
}

func TestBench_Help(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"bench", "-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if !strings.Contains(stdout.String(), "Example:") || !strings.Contains(stdout.String(), "--only") {
		t.Errorf("help lacks an example:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "cpuprofile") {
		t.Errorf("help shows the hidden --cpuprofile:\n%s", stdout.String())
	}
}

func TestBench_UnknownScenario(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"bench", "--only", "nope"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr.String())
	}
}
