package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/limits"
	"github.com/keyledger/keyledger/internal/natsauth"
)

// TestNATSAuth_LimitsBucket: serve sets the limits bucket up on its
// embedded server, and a validation node's credentials lease from it.
func TestNATSAuth_LimitsBucket(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	nc, _ := connectAs(t, ts, natsauth.Validator)
	l, err := limits.New(limits.Config{Conn: nc, Stream: "KEYLEDGER", Node: "v1", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	lim := &domain.Limits{Credits: &domain.CreditPolicy{Epoch: 1, Initial: 1}}
	for i, want := range []domain.Reason{domain.ReasonOK, domain.ReasonUsageExceeded} {
		if d := l.Take(context.Background(), "ak_01J00000000000000000000000", lim, 1); d.Reason != want {
			t.Errorf("take %d: %s, want %s", i+1, d.Reason, want)
		}
	}
}
