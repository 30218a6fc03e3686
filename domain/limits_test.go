package domain

import (
	"testing"
	"time"
)

func TestParsePeriod(t *testing.T) {
	for in, want := range map[string]time.Duration{"1s": time.Second, "90s": 90 * time.Second, "1m": time.Minute,
		"24h": 24 * time.Hour, "1d": 24 * time.Hour, "30d": 30 * 24 * time.Hour} {
		p, err := ParsePeriod(in, time.Second, MaxRefillInterval)
		if err != nil || p.Duration() != want {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v", in, p, err, want)
		}
	}
	for _, in := range []string{"", "s", "0s", "01m", "-1s", "+1s", "1", "1w", "1.5h", "1h30m", " 1s", "1000d", "99999999999d"} {
		if _, err := ParsePeriod(in, time.Second, MaxRefillInterval); KindOf(err) != Invalid {
			t.Errorf("ParsePeriod(%q): %v, want Invalid", in, err)
		}
	}
	for d, want := range map[time.Duration]string{time.Second: "1s", 90 * time.Second: "90s", time.Hour: "1h",
		36 * time.Hour: "36h", 48 * time.Hour: "2d", 0: "0s"} {
		if got := Period(d).String(); got != want {
			t.Errorf("Period(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestRateLimit_WindowAt(t *testing.T) {
	r := RateLimit{Limit: 5, Window: Period(time.Minute)}
	at := time.Date(2026, 12, 6, 10, 0, 59, 999e6, time.UTC)
	i, end := r.WindowAt(at)
	j, _ := r.WindowAt(at.Add(time.Millisecond))
	if j != i+1 || !end.Equal(at.Add(time.Millisecond)) {
		t.Fatalf("windows %d then %d, end %v", i, j, end)
	}
}

func TestCreditPolicy_PeriodAt(t *testing.T) {
	since := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	c := CreditPolicy{Since: since, Refill: &Refill{Amount: 10, Interval: Period(time.Hour)}}
	if i, next := c.PeriodAt(since.Add(59 * time.Minute)); i != 0 || !next.Equal(since.Add(time.Hour)) {
		t.Fatalf("period %d, next %v", i, next)
	}
	if i, _ := c.PeriodAt(since.Add(time.Hour)); i != 1 {
		t.Fatalf("period %d at the first refill", i)
	}
	if i, next := (CreditPolicy{Since: since}).PeriodAt(since.Add(1000 * time.Hour)); i != 0 || !next.IsZero() {
		t.Fatalf("no refill: period %d, next %v", i, next)
	}
}

func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"1s", "1m", "24h", "1d", "366d", "0s", "01m", "1w", "", "99999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeriod(s, time.Second, MaxRefillInterval)
		if err != nil {
			if KindOf(err) != Invalid {
				t.Fatalf("error of kind %v", KindOf(err))
			}
			return
		}
		if p.Duration() < time.Second || p.Duration() > MaxRefillInterval {
			t.Fatalf("%q: %v out of bounds", s, p)
		}
		q, err := ParsePeriod(p.String(), time.Second, MaxRefillInterval)
		if err != nil || q != p {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, p, p.String(), q, err)
		}
	})
}
