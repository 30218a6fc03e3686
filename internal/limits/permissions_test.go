package limits_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/embedded"
	"github.com/keyledger/keyledger/internal/limits"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestPermissions: on a server that requires keyledger's credentials, the
// operator sets the bucket up, the validator and the ledger lease from it,
// and the auditor can neither read nor write it; no role but the operator
// can purge it or delete its messages.
func TestPermissions(t *testing.T) {
	a, err := natsauth.Open(t.TempDir(), stream)
	if err != nil {
		t.Fatal(err)
	}
	s, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Auth: a.Configure})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	connect := func(t *testing.T, r natsauth.Role) *nats.Conn {
		nc, err := nats.Connect(s.ClientURL(), nats.UserCredentials(a.CredsFile(r)))
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	op, _ := jetstream.New(connect(t, natsauth.Operator))
	if err := limits.SetUp(ctx, op, stream); err != nil {
		t.Fatal(err)
	}
	if err := limits.SetUp(ctx, op, stream); err != nil {
		t.Fatalf("set up again: %v", err)
	}
	rl := domain.RateLimit{Limit: 10, Window: domain.Period(time.Minute)}
	lim := &domain.Limits{RateLimit: &rl, Credits: &domain.CreditPolicy{Epoch: 1, Initial: 10}}
	for _, r := range []natsauth.Role{natsauth.Validator, natsauth.Ledger, natsauth.Auditor} {
		t.Run(string(r), func(t *testing.T) {
			t.Parallel()
			nc := connect(t, r)
			l, err := limits.New(limits.Config{Conn: nc, Stream: stream, Node: string(r), Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close(context.Background())
			d := l.Take(ctx, keyA, lim, 1)
			want := domain.ReasonOK
			if r == natsauth.Auditor {
				want = domain.ReasonLimitsUnavailable
			}
			if d.Reason != want {
				t.Errorf("take: %s, want %s", d.Reason, want)
			}
			js, _ := jetstream.New(nc)
			bucket := "KV_" + limits.BucketFor(stream)
			attacks := map[string]func(context.Context) error{
				"purge": func(c context.Context) error {
					_, err := js.Stream(c, bucket)
					if err != nil {
						return err
					}
					resp, err := nc.RequestWithContext(c, "$JS.API.STREAM.PURGE."+bucket, nil)
					if err == nil && !strings.Contains(string(resp.Data), `"success":true`) {
						return errRefused
					}
					return err
				},
				"message delete": func(c context.Context) error {
					resp, err := nc.RequestWithContext(c, "$JS.API.STREAM.MSG.DELETE."+bucket, []byte(`{"seq":1}`))
					if err == nil && !strings.Contains(string(resp.Data), `"success":true`) {
						return errRefused
					}
					return err
				},
			}
			if r == natsauth.Auditor {
				attacks["read"] = func(c context.Context) error {
					resp, err := nc.RequestWithContext(c, "$JS.API.DIRECT.GET."+bucket+".$KV."+limits.BucketFor(stream)+"."+limits.CreditsKey(keyA), nil)
					if err == nil && resp.Header.Get("Status") != "" {
						return errRefused
					}
					return err
				}
				attacks["write"] = func(c context.Context) error {
					_, err := js.Publish(c, "$KV."+limits.BucketFor(stream)+"."+limits.CreditsKey(keyA), []byte(`{}`))
					return err
				}
			}
			// At once: a refused request only times out.
			natstest.WantRefused(t, ctx, 2*time.Second, attacks)
		})
	}
}

type refusedError struct{}

func (refusedError) Error() string { return "refused" }

var errRefused error = refusedError{}
