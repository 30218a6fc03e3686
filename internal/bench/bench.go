// Package bench measures keyledger end to end against embedded servers and
// compares every number with a baseline measured in the same run on the
// same machine: raw JetStream publishes for appends, a SHA-256 and a map
// lookup for validation, a bare net/http handler for /validate, raw
// JetStream delivery for revocation propagation, a raw ordered consumer for
// replay, and a naive map for the lookup's memory. `keyledger bench` runs
// it.
//
// Every scenario starts its own servers in temporary directories on
// loopback, and stops every goroutine and removes every directory before it
// returns.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Config sizes a run. The zero Config means scale 1 and 16 HTTP clients.
type Config struct {
	// Scale multiplies the data set and the request counts (default 1).
	Scale float64
	// Clients is the number of concurrent keep-alive HTTP clients
	// (default 16).
	Clients int
	// Progress, if set, receives a line as each scenario starts and ends.
	Progress io.Writer
}

func (c Config) withDefaults() Config {
	if c.Scale <= 0 {
		c.Scale = 1
	}
	if c.Clients <= 0 {
		c.Clients = 16
	}
	return c
}

// N scales base by c.Scale, but never below floor.
func (c Config) N(base, floor int) int {
	return max(int(math.Round(float64(base)*c.withDefaults().Scale)), floor)
}

// Scenario is one measurement: Run returns its results, each with its
// baseline, and stops everything it started before returning.
type Scenario struct {
	Name string
	Doc  string
	Run  func(ctx context.Context, cfg Config) ([]Result, error)
}

// Result is one measured number and its baseline. Ratio is Value/Baseline
// for every unit: above 1 is faster for rates, slower for times.
type Result struct {
	Scenario string `json:"scenario"`
	Case     string `json:"case"`
	// Unit is "ops/s", "req/s", "events/s", "ns/op", "B/key" or "us" (a
	// latency percentile).
	Unit     string  `json:"unit"`
	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline"`
	// BaselineName says what the baseline measured.
	BaselineName string  `json:"baseline_name"`
	Ratio        float64 `json:"ratio"`
	// Goal is the target in words; Met whether this run reached it.
	Goal string `json:"goal,omitempty"`
	Met  bool   `json:"met"`
	// Samples is how many operations (or latency samples) Value is over.
	Samples int `json:"samples"`
	// Details holds secondary numbers, such as other percentiles in us.
	Details map[string]float64 `json:"details,omitempty"`
}

// newResult fills Ratio from value and baseline.
func newResult(scenario, kase, unit string, value, baseline float64, baselineName string, samples int) Result {
	r := Result{Scenario: scenario, Case: kase, Unit: unit, Value: value, Baseline: baseline,
		BaselineName: baselineName, Samples: samples, Details: map[string]float64{}}
	if baseline > 0 {
		r.Ratio = value / baseline
	}
	return r
}

// ratioAtLeast sets a goal of Ratio >= min.
func (r *Result) ratioAtLeast(min float64) {
	r.Goal = fmt.Sprintf("ratio >= %.2f", min)
	r.Met = r.Ratio >= min
}

// ratioAtMost sets a goal of Ratio <= max.
func (r *Result) ratioAtMost(max float64) {
	r.Goal = fmt.Sprintf("ratio <= %.2f", max)
	r.Met = r.Ratio > 0 && r.Ratio <= max
}

// Machine describes where a run happened.
type Machine struct {
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	CPUModel   string `json:"cpu_model,omitempty"`
	GoVersion  string `json:"go_version"`
}

// ThisMachine describes the running machine; CPUModel comes from
// /proc/cpuinfo when it is readable.
func ThisMachine() Machine {
	return Machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GOOS: runtime.GOOS,
		GOARCH: runtime.GOARCH, CPUModel: cpuModel(), GoVersion: runtime.Version()}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Report is the outcome of a run.
type Report struct {
	Machine   Machine  `json:"machine"`
	Scale     float64  `json:"scale"`
	Clients   int      `json:"clients"`
	Scenarios []string `json:"scenarios"`
	Results   []Result `json:"results"`
	// WallSeconds is how long the whole run took.
	WallSeconds float64 `json:"wall_seconds"`
}

// Run runs scenarios one after another and collects their results. It
// stops at the first error, returning the report so far with it.
func Run(ctx context.Context, cfg Config, scenarios []Scenario) (*Report, error) {
	cfg = cfg.withDefaults()
	start := time.Now()
	rep := &Report{Machine: ThisMachine(), Scale: cfg.Scale, Clients: cfg.Clients}
	defer func() { rep.WallSeconds = time.Since(start).Seconds() }()
	for _, s := range scenarios {
		rep.Scenarios = append(rep.Scenarios, s.Name)
		t0 := time.Now()
		progress(cfg, "bench: %s: %s", s.Name, s.Doc)
		results, err := s.Run(ctx, cfg)
		rep.Results = append(rep.Results, results...)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", s.Name, err)
		}
		progress(cfg, "bench: %s done in %v", s.Name, time.Since(t0).Round(time.Millisecond))
	}
	return rep, nil
}

func progress(cfg Config, format string, args ...any) {
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, format+"\n", args...)
	}
}

// Scenarios returns the scenarios this package runs on its own, in order:
// append, validate, validate-signed, validate-http, revocation, replay,
// limits, usage-flush, ready, memory and failover.
// (http-create needs the whole server, which `keyledger bench` brings.)
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "append", Doc: "key creations/s through ledger.Service.CreateKey vs raw JetStream publishes", Run: runAppend},
		{Name: "validate", Doc: "Validator.Validate ns/op vs one SHA-256 and a map lookup", Run: runValidate},
		{Name: "validate-signed", Doc: "a signed request's check (RFC 9421, Ed25519) ns/op vs one bare ed25519.Verify; plain validation beside it", Run: runValidateSigned},
		{Name: "validate-http", Doc: "/validate over loopback HTTP vs a bare 200 handler", Run: runValidateHTTP},
		{Name: "revocation", Doc: "revocation propagation to 3 validation nodes vs raw JetStream delivery", Run: runRevocation},
		{Name: "replay", Doc: "projection rebuild and validation node time to ready, events/s, without and with a checkpoint, vs a raw ordered consumer", Run: runReplay},
		{Name: "limits", Doc: "Validate of keys with a rate limit and credits vs keys without, hot key and 10k cold keys, and the share of decisions that waited for NATS", Run: runLimits},
		{Name: "usage-flush", Doc: "usage counting on the hot path and one flush of an interval's reports at 50k validations/s vs the same validations uncounted", Run: runUsageFlush},
		{Name: "ready", Doc: "validation node time to ready at 1M keys from a snapshot, from a checkpoint, from neither, vs a raw ordered consumer reading the whole log; memory per key of the lookup read from a snapshot", Run: runReady},
		{Name: "memory", Doc: "heap bytes per key of the validation lookup vs a naive map[string]*record", Run: runMemory},
		{Name: "failover", Doc: "write outage when the stream leader's nats-server process is SIGKILLed (3 processes, serve --replicas 3, create/revoke load) vs raw JetStream publishes retried", Run: runFailover},
	}
}

// WriteJSON writes rep as indented JSON.
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteTable writes rep as a table for people.
func WriteTable(w io.Writer, rep *Report) error {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d) %s/%s %s; %s; scale %g; %d HTTP clients; %.1fs\n\n",
		m.NumCPU, m.GOMAXPROCS, m.GOOS, m.GOARCH, orUnknown(m.CPUModel), m.GoVersion, rep.Scale, rep.Clients, rep.WallSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tcase\tvalue\tbaseline\tratio\tgoal\tmet\tn\t")
	for _, r := range rep.Results {
		met := "no"
		if r.Goal == "" {
			met = "-"
		} else if r.Met {
			met = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t%d\t\n", r.Scenario, r.Case, number(r.Value, r.Unit),
			number(r.Baseline, r.Unit), r.Ratio, orDash(r.Goal), met, r.Samples)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nbaselines and details:")
	for _, r := range rep.Results {
		keys := make([]string, 0, len(r.Details))
		for k := range r.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, r.Details[k]))
		}
		fmt.Fprintf(w, "  %s/%s: baseline = %s; %s\n", r.Scenario, r.Case, r.BaselineName, strings.Join(parts, " "))
	}
	return nil
}

func number(v float64, unit string) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

func orUnknown(s string) string {
	if s == "" {
		return "(CPU model unknown)"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
