package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/bench"
	"github.com/keyledger/keyledger/internal/natsauth"
)

// runBench runs `keyledger bench`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench")
	scale := fs.Float64("scale", 1, "multiply the data set and request counts by this factor")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	only := fs.String("only", "", "comma-separated scenarios to run (default: all)")
	clients := fs.Int("clients", 16, "concurrent keep-alive HTTP clients (http-create, validate-http)")
	// Hidden from help (docs["bench"]): for profiling the goals not met
	// (docs/performance.md).
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the scenarios run to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *scale <= 0 || *clients <= 0 {
		return usageError{errors.New("--scale and --clients must be positive")}
	}
	scenarios := bench.Scenarios()
	scenarios = slices.Insert(scenarios, 1, bench.Scenario{Name: "http-create",
		Doc: "POST /api-keys requests/s through a real in-process serve vs raw JetStream publishes", Run: benchHTTPCreate})
	if *only != "" {
		var picked []bench.Scenario
		for name := range strings.SplitSeq(*only, ",") {
			i := slices.IndexFunc(scenarios, func(s bench.Scenario) bool { return s.Name == strings.TrimSpace(name) })
			if i < 0 {
				return usageError{fmt.Errorf("--only: unknown scenario %q", name)}
			}
			picked = append(picked, scenarios[i])
		}
		scenarios = picked
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(ctx, bench.Config{Scale: *scale, Clients: *clients, Progress: stderr}, scenarios)
	if rep != nil && len(rep.Results) > 0 || err == nil {
		var werr error
		if *asJSON {
			werr = bench.WriteJSON(stdout, rep)
		} else {
			werr = bench.WriteTable(stdout, rep)
		}
		err = errors.Join(err, werr)
	}
	return err
}

// benchHTTPCreate is the http-create scenario: a real Server (the serve
// wiring) on loopback with its data in a temporary directory; one user
// registers and logs in, then keep-alive clients POST /api-keys. The
// baseline is raw JetStream publishes, with ack, of a stored key.created
// event's bytes to a file-storage stream on the same NATS server, from as
// many clients, in interleaved rounds (bench.Interleave): the round with
// the median ratio is reported.
func benchHTTPCreate(ctx context.Context, cfg bench.Config) (_ []bench.Result, err error) {
	dir, err := os.MkdirTemp("", "keyledger-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	s := &app.Server{Config: app.ServeConfig{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		CheckpointInterval: -1, Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1},
		MaxKeysPerUser: -1}, Logger: discardLogger()} // one user creates every key
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		err = errors.Join(err, s.Close(cctx))
	}()
	if err := s.Open(ctx); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); !s.Ready(); {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, errors.New("server not ready within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	base := "http://" + s.HTTPAddr()
	client := bench.HTTPClient(1)
	defer client.CloseIdleConnections()
	creds := map[string]string{"email": "bench@example.com", "password": "correct horse battery staple"}
	if err := benchPost(ctx, client, base+"/users", "", creds, http.StatusCreated, nil); err != nil {
		return nil, err
	}
	var session struct{ Token string }
	if err := benchPost(ctx, client, base+"/sessions", "", creds, http.StatusOK, &session); err != nil {
		return nil, err
	}
	body := []byte(`{"name":"bench key"}`)
	// Warm up, and store a key.created event for the baseline's message.
	if err := benchPost(ctx, client, base+"/api-keys", session.Token, map[string]string{"name": "bench key"}, http.StatusCreated, nil); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(s.NATSURL(), nats.UserCredentials(s.CredsFile(natsauth.Operator)))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	like, err := bench.SampleEvent(ctx, nc, s.Config.Stream)
	if err != nil {
		return nil, fmt.Errorf("sample event: %w", err)
	}
	n := cfg.N(5000, 50)
	per := max(n/bench.DefaultRounds, cfg.Clients)
	in, err := bench.Interleave(ctx, bench.DefaultRounds, func(ctx context.Context, round int) (float64, int, error) {
		rate, err := bench.RawPublish(ctx, nc, fmt.Sprintf("BENCHRAWHTTP%d", round), like, per, cfg.Clients)
		if err != nil {
			return 0, 0, fmt.Errorf("raw publish: %w", err)
		}
		return rate, per, nil
	}, func(ctx context.Context, _ int) (float64, []time.Duration, error) {
		rate, took, err := bench.LoadHTTP(ctx, per, cfg.Clients, http.StatusCreated, func(ctx context.Context, _ int) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api-keys", bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+session.Token)
			return req, nil
		})
		if err != nil {
			return 0, nil, fmt.Errorf("POST /api-keys: %w", err)
		}
		return rate, took, nil
	})
	if err != nil {
		return nil, err
	}
	m := in.Median
	r := bench.Result{Scenario: "http-create", Case: fmt.Sprintf("POST /api-keys clients=%d", cfg.Clients), Unit: "req/s",
		Value: m.Value, Baseline: m.Baseline, Ratio: m.Ratio(), Samples: len(in.Took),
		BaselineName: fmt.Sprintf("raw js.PublishMsg with ack of a key.created event, file storage, clients=%d, the median of %d interleaved rounds",
			cfg.Clients, bench.DefaultRounds),
		Details: map[string]float64{"p50_us": benchMicros(in.Took, 50), "p99_us": benchMicros(in.Took, 99)}}
	r.AddRounds(in)
	r.Goal, r.Met = "ratio >= 0.40", r.Ratio >= 0.40
	return []bench.Result{r}, nil
}

// benchPost POSTs v as JSON and decodes the answer into out (if set).
func benchPost(ctx context.Context, client *http.Client, url, token string, v any, want int, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("POST %s: status %d, want %d: %s", req.URL.Path, resp.StatusCode, want, msg)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// benchMicros is the p-th percentile of sorted latencies in microseconds.
func benchMicros(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(max(int(float64(len(sorted))*p/100+0.999999)-1, 0), len(sorted)-1)
	return float64(sorted[i].Nanoseconds()) / 1e3
}
