package app

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/audit"
	"github.com/keyledger/keyledger/internal/console"
)

// withConsole serves the web console under /console/ (and sends / and a
// sign-up mail's /verify link there)
// beside the API, which keeps every other path. The console calls the API
// in process, so its pages go through the API's gates, limits and use
// cases.
func withConsole(api http.Handler, store *eventstore.Store, tls bool, logger *slog.Logger) (http.Handler, error) {
	c, err := console.New(console.Config{API: api, History: keyHistory{store}, TLS: tls, Logger: logger.With("component", "console")})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, c)
	mux.HandleFunc("GET /{$}", console.RedirectRoot)
	// A sign-up mail links to <public-url>/verify?token=...: its page.
	mux.HandleFunc("GET /verify", console.RedirectVerify)
	mux.Handle("/", api)
	return mux, nil
}

// keyHistory replays a key's events for the console, as `audit key` does.
type keyHistory struct{ store *eventstore.Store }

// KeyHistory implements console.History.
func (h keyHistory) KeyHistory(ctx context.Context, apiKey string) ([]domain.Event, error) {
	_, events, err := audit.KeyAt(ctx, h.store, apiKey, time.Time{}, 0)
	return events, err
}
