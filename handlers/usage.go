package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/usage"
)

// Usage is the usage read model the API answers from (internal/usage's
// Fold).
type Usage interface {
	LastUsed(apiKey string) (time.Time, bool)
	Buckets(apiKey string, from, to time.Time, size time.Duration) []usage.Bucket
	Top(since time.Time, n int) []usage.KeyTotal
}

// Limits of the usage queries.
const (
	defaultTop    = 20
	maxTop        = 1000
	defaultWindow = 24 * time.Hour
)

// bucketResponse is one bucket of a key's usage.
type bucketResponse struct {
	Start   time.Time                `json:"start"`
	Valid   uint64                   `json:"valid"`
	Refused map[domain.Reason]uint64 `json:"refused"`
}

func bucketView(start time.Time, c usage.Counts) bucketResponse {
	b := bucketResponse{Start: start, Valid: c.Valid, Refused: c.Refused}
	if b.Refused == nil {
		b.Refused = map[domain.Reason]uint64{}
	}
	return b
}

// lastUsed is a key's last use as the view shows it: nil when never used
// (or when serve has no usage read model).
func (a *API) lastUsed(apiKey string) *time.Time {
	if a.usage == nil {
		return nil
	}
	t, ok := a.usage.LastUsed(apiKey)
	if !ok {
		return nil
	}
	return &t
}

// keyUsage: GET /api-keys/{key}/usage?from=&to=&bucket=1h|1d -> 200
// {"buckets":[...]}, oldest first, buckets with counts only; the owner's
// keys only (others' are 404, as GET /api-keys/{key}).
func (a *API) keyUsage(w http.ResponseWriter, r *http.Request) {
	k, err := a.ledger.GetKey(userIDFrom(r.Context()), r.PathValue("key"))
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	q := r.URL.Query()
	size, err := usage.ParseBucket(q.Get("bucket"))
	if err != nil {
		writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "bucket must be 1h or 1d"))
		return
	}
	to, from := a.ledger.Now(), time.Time{}
	if s := q.Get("to"); s != "" {
		if to, err = time.Parse(time.RFC3339, s); err != nil {
			writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "to must be an RFC 3339 time"))
			return
		}
	}
	from = to.Add(-7 * 24 * time.Hour)
	if size == usage.Day {
		from = to.Add(-usage.DefaultDailyRetention)
	}
	if s := q.Get("from"); s != "" {
		if from, err = time.Parse(time.RFC3339, s); err != nil {
			writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "from must be an RFC 3339 time"))
			return
		}
	}
	if from.After(to) {
		writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "from must not be after to"))
		return
	}
	out := struct {
		Buckets []bucketResponse `json:"buckets"`
	}{Buckets: []bucketResponse{}}
	if a.usage != nil {
		for _, b := range a.usage.Buckets(k.APIKey, from, to, size) {
			out.Buckets = append(out.Buckets, bucketView(b.Start, b.Counts))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// topKeyResponse is one of the busiest keys.
type topKeyResponse struct {
	APIKey     string                   `json:"api_key"`
	Valid      uint64                   `json:"valid"`
	Refused    map[domain.Reason]uint64 `json:"refused"`
	LastUsedAt *time.Time               `json:"last_used_at"`
}

// adminUsage: GET /admin/usage?window=24h&top=20 -> 200 {"keys":[...]},
// the keys with the most validations within the window (at most a week:
// the hourly buckets' retention), busiest first.
func (a *API) adminUsage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	window, top := defaultWindow, defaultTop
	if s := q.Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > usage.DefaultHourlyRetention {
			writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "window must be a duration from 1h to 168h"))
			return
		}
		window = d
	}
	if s := q.Get("top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxTop {
			writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "top must be from 1 to %d", maxTop))
			return
		}
		top = n
	}
	out := struct {
		Keys []topKeyResponse `json:"keys"`
	}{Keys: []topKeyResponse{}}
	if a.usage != nil {
		for _, k := range a.usage.Top(a.ledger.Now().Add(-window), top) {
			v := topKeyResponse{APIKey: k.APIKey, Valid: k.Valid, Refused: k.Refused}
			if v.Refused == nil {
				v.Refused = map[domain.Reason]uint64{}
			}
			if !k.LastUsed.IsZero() {
				t := k.LastUsed
				v.LastUsedAt = &t
			}
			out.Keys = append(out.Keys, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
