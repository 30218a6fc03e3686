package app

import (
	"log/slog"
	"net/http"

	"github.com/keyledger/keyledger/internal/console"
)

// withConsole serves the web console under /console/ (and sends / there)
// beside the API, which keeps every other path. The console calls the API
// in process, so its pages go through the API's gates, limits and use
// cases.
func withConsole(api http.Handler, tls bool, logger *slog.Logger) (http.Handler, error) {
	c, err := console.New(console.Config{API: api, TLS: tls, Logger: logger.With("component", "console")})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, c)
	mux.HandleFunc("GET /{$}", console.RedirectRoot)
	mux.Handle("/", api)
	return mux, nil
}
