package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/domain"
)

// History replays a key's events from the log, oldest first (the audit
// replay the CLI's `audit key` uses). The console asks it only for a key
// the API has just shown the session's user: ownership is the API's to
// decide.
type History interface {
	// KeyHistory returns the key's events. Errors: NotFound, Unavailable.
	KeyHistory(ctx context.Context, apiKey string) ([]domain.Event, error)
}

// historyEntry is one event as the history page shows it.
type historyEntry struct {
	Time    string
	Actor   string
	Type    string
	Changes []string
}

// hiddenFields are event fields the history never shows: digests and
// public keys say nothing to a person, and the owner is the reader.
var hiddenFields = []string{"secret_hash", "public_key", "user_id"}

// describe lists what an event changed, "field: value" in field order.
func describe(e domain.Event) []string {
	b, err := json.Marshal(e.Data)
	if err != nil {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return nil
	}
	var out []string
	for name, v := range fields {
		if slices.Contains(hiddenFields, name) {
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s", strings.ReplaceAll(name, "_", " "), v))
	}
	slices.Sort(out)
	return out
}

type historyView struct {
	Key     client.Key
	Entries []historyEntry
}

func (c *Console) keyHistory(w http.ResponseWriter, r *http.Request, api *client.Client) {
	k, err := api.GetKey(r.Context(), r.PathValue("key"))
	if err != nil {
		c.apiFailed(w, r, "History", "message", page{SignedIn: true}, err)
		return
	}
	if c.history == nil {
		c.render(w, r, http.StatusServiceUnavailable, "message", page{Title: "History", SignedIn: true,
			Error: "this server cannot replay the log"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	events, err := c.history.KeyHistory(ctx, k.APIKey)
	if err != nil {
		status, msg := http.StatusServiceUnavailable, "the key's history cannot be read now; try again"
		if domain.KindOf(err) == domain.NotFound {
			status, msg = http.StatusNotFound, "no history for this key"
		}
		c.logger.Warn("console: key history", "err", err)
		c.render(w, r, status, "message", page{Title: "History", SignedIn: true, Error: msg})
		return
	}
	v := historyView{Key: k}
	for _, e := range slices.Backward(events) {
		v.Entries = append(v.Entries, historyEntry{Time: at(e.Time), Actor: e.Actor, Type: e.Type, Changes: describe(e)})
	}
	c.render(w, r, http.StatusOK, "history", page{Title: "History of " + keyTitle(k), SignedIn: true, Data: v})
}
