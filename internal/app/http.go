package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// listenHTTP listens on addr, with TLS when tlsConfig is set, and returns
// a server for h with every timeout and the header size limit set, the
// listener to serve it on, and its URL scheme.
func listenHTTP(addr string, h http.Handler, tlsConfig *tls.Config, read, write time.Duration, logger *slog.Logger) (*http.Server, net.Listener, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	scheme := "http"
	if tlsConfig != nil {
		ln, scheme = tls.NewListener(ln, tlsConfig), "https"
	}
	srv := &http.Server{
		TLSConfig:         tlsConfig,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       read,
		WriteTimeout:      write,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return srv, ln, scheme, nil
}

// serveHTTP serves srv on ln in a goroutine owned by wg, until Shutdown.
func serveHTTP(wg *sync.WaitGroup, srv *http.Server, ln net.Listener, logger *slog.Logger) {
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("HTTP server stopped", "addr", ln.Addr().String(), "err", err)
		}
	})
}
