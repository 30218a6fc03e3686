package readme

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/testclock"
)

// TestREADME_LimitsAndUsage runs the "Limits and usage" section verbatim:
// a key with a limit of 5 a minute and 100 credits; a request of cost 10
// and four more pass, the sixth is 429 with the RateLimit headers, the
// key view shows 86 credits left, and the usage shows 5 valid and 1
// refused. serve's limits clock stands at the start of a minute, so that
// the six requests share one window whatever the time of the run, and
// usage is reported every 200ms instead of 10s.
func TestREADME_LimitsAndUsage(t *testing.T) {
	t.Parallel()
	requireTools(t, "sh", "curl", "sed", "base64", "grep", "sort", "tr")
	clock := testclock.New(time.Now().UTC().Truncate(time.Minute))
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		c.KeyLimits = app.KeyLimitsConfig{Clock: clock.Now}
		c.UsageInterval = 200 * time.Millisecond
	})
	defer ts.Stop(t)
	out := runSection(t, ts, "Limits and usage")
	want := []string{
		`^"rate_limit":\{"limit":5,"remaining":4,"reset":60\},"credits":\{"remaining":90\}$`,
		`^200$`, `^200$`, `^200$`, `^200$`,
		`^HTTP/1\.1 429 Too Many Requests$`,
		`^(?i:ratelimit-policy): "key";q=5;w=60$`,
		`^(?i:ratelimit): "key";r=0;t=60$`,
		`^(?i:retry-after): 60$`,
		`^credits remaining: 86$`,
		`^\{"buckets":\[\{"start":"[0-9T:Z-]+",.*\]\}$`,
	}
	lines := wantLines(t, out, want)
	// The requests fall in one hourly bucket, or two when an hour turned
	// between them: the sums are what was sent.
	var usage struct {
		Buckets []struct {
			Valid   int            `json:"valid"`
			Refused map[string]int `json:"refused"`
		} `json:"buckets"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &usage); err != nil {
		t.Fatalf("usage: %v", err)
	}
	valid, refused := 0, map[string]int{}
	for _, b := range usage.Buckets {
		valid += b.Valid
		for r, n := range b.Refused {
			refused[r] += n
		}
	}
	if valid != 5 || len(refused) != 1 || refused["rate_limit_exceeded"] != 1 {
		t.Errorf("usage: %d valid, refused %v; want 5 valid and 1 rate_limit_exceeded", valid, refused)
	}
}
