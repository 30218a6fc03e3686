package app

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Where ServeConfig.MetricsAddr and NodeConfig.MetricsAddr put /metrics,
// besides an address of a listener of its own.
const (
	// MetricsOff (or "") serves no /metrics at all.
	MetricsOff = "off"
	// MetricsOnAPI serves /metrics on the API's listener, to whoever can
	// reach the API: only for an API that is not public.
	MetricsOnAPI = "api"
	// DefaultServeMetricsAddr and DefaultNodeMetricsAddr are the command
	// line's defaults: loopback, apart from the API.
	DefaultServeMetricsAddr = "127.0.0.1:9464"
	DefaultNodeMetricsAddr  = "127.0.0.1:9465"
)

// openMetrics opens the listener of /metrics at addr, plain HTTP and
// nothing else on it; nil, nil, nil for MetricsOff, "" and MetricsOnAPI.
func openMetrics(addr string, h http.Handler, logger *slog.Logger) (*http.Server, net.Listener, error) {
	switch addr {
	case "", MetricsOff, MetricsOnAPI:
		return nil, nil, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, nil, ConfigError{fmt.Errorf("--metrics-addr %q: want host:port, %q or %q", addr, MetricsOnAPI, MetricsOff)}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv, ln, _, err := listenHTTP(addr, mux, nil, 15*time.Second, 30*time.Second, logger)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	return srv, ln, nil
}
