package app_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
)

// TestNATSAuth_Fleet: validation nodes may announce themselves on
// keyledger_fleet.<name> and serve's ledger credentials hear them; the
// auditor cannot announce a node, and no reader can publish on the log's
// subjects through the fleet's.
func TestNATSAuth_Fleet(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ledger, _ := connectAs(t, ts, natsauth.Ledger)
	sub, err := ledger.SubscribeSync("keyledger_fleet.*")
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := ledger.LastError(); err != nil {
		t.Fatalf("the ledger role subscribing to heartbeats: %v", err)
	}
	// published reports whether a role's publish on subject reached the
	// ledger's subscription: after the role's Flush its message, if
	// allowed, is delivered before the ledger's own sentinel.
	published := func(r natsauth.Role, subject string) bool {
		t.Helper()
		nc, _ := connectAs(t, ts, r)
		if err := nc.Publish(subject, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := ledger.Publish("keyledger_fleet.sentinel", nil); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := sub.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatalf("no sentinel: %v", err)
			}
			if m.Subject == "keyledger_fleet.sentinel" {
				return false
			}
			if m.Subject == subject {
				// Drain the sentinel.
				if m, err := sub.NextMsg(10 * time.Second); err != nil || m.Subject != "keyledger_fleet.sentinel" {
					t.Fatalf("got %v, %v, want the sentinel", m, err)
				}
				return true
			}
		}
	}
	if !published(natsauth.Validator, "keyledger_fleet.node-1") {
		t.Error("a validator's heartbeat did not reach serve")
	}
	if published(natsauth.Auditor, "keyledger_fleet.node-1") {
		t.Error("the auditor announced a node, want refused")
	}
	// A validator hears no heartbeats: it has no business with the fleet.
	nc, _ := connectAs(t, ts, natsauth.Validator)
	errs := make(chan error, 1)
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	})
	if _, err := nc.SubscribeSync("keyledger_fleet.*"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-errs:
	case <-time.After(10 * time.Second):
		t.Error("a validator subscribed to the heartbeats, want a permissions violation")
	}
}
