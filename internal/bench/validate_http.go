package bench

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// serveHTTP serves h with net/http on a free loopback port until close.
func (e *env) serveHTTP(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the load fails on its own then
		}
	}()
	e.defer_(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	})
	return "http://" + ln.Addr().String(), nil
}

// LoadHTTP sends n requests made by newReq from clients concurrent
// keep-alive connections (opened before the clock starts), expects status
// want to each, and returns the requests per second and the sorted
// latencies.
func LoadHTTP(ctx context.Context, n, clients, want int, newReq func(ctx context.Context, i int) (*http.Request, error)) (float64, []time.Duration, error) {
	client := HTTPClient(clients)
	defer client.CloseIdleConnections()
	do := func(ctx context.Context, i int) error {
		req, err := newReq(ctx, i)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		return Drain(resp, want)
	}
	if _, _, err := Parallel(ctx, clients, clients, do); err != nil {
		return 0, nil, fmt.Errorf("warm-up: %w", err)
	}
	return Parallel(ctx, n, clients, do)
}

// runValidateHTTP measures /validate of a validation node's handler served
// by net/http on loopback, with valid credentials from keep-alive clients,
// and the same client code against a bare handler that answers 200.
func runValidateHTTP(ctx context.Context, cfg Config) ([]Result, error) {
	var e env
	defer e.close()
	v, q, err := validationNode(ctx, &e, cfg.N(5000, 100))
	if err != nil {
		return nil, err
	}
	creds := make([][2]string, len(q.keys))
	for j := range q.keys {
		creds[j] = [2]string{base64.StdEncoding.EncodeToString([]byte(q.keys[j])),
			base64.StdEncoding.EncodeToString([]byte(q.secrets[j]))}
	}
	validateURL, err := e.serveHTTP(v.Handler())
	if err != nil {
		return nil, err
	}
	bareURL, err := e.serveHTTP(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	if err != nil {
		return nil, err
	}
	load := func(base string) (float64, []time.Duration, error) {
		return LoadHTTP(ctx, cfg.N(40000, 200), cfg.Clients, http.StatusOK, func(ctx context.Context, i int) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/validate", nil)
			if err != nil {
				return nil, err
			}
			c := creds[i%len(creds)]
			req.Header.Set("X-Api-Key", c[0])
			req.Header.Set("X-Api-Secret", c[1])
			return req, nil
		})
	}
	bareRate, bareTook, err := load(bareURL)
	if err != nil {
		return nil, fmt.Errorf("bare handler: %w", err)
	}
	rate, took, err := load(validateURL)
	if err != nil {
		return nil, fmt.Errorf("/validate: %w", err)
	}
	r := newResult("validate-http", fmt.Sprintf("/validate clients=%d", cfg.Clients), "req/s", rate, bareRate,
		"bare net/http handler answering 200, same clients", len(took))
	r.Details["p50_us"] = micros(percentile(took, 50))
	r.Details["p99_us"] = micros(percentile(took, 99))
	r.Details["baseline_p50_us"] = micros(percentile(bareTook, 50))
	r.Details["baseline_p99_us"] = micros(percentile(bareTook, 99))
	r.ratioAtLeast(0.7)
	return []Result{r}, nil
}
