package apptest

import (
	"context"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

// CreateUser creates a user with Password (admin role if isAdmin) as
// `keyledger admin users create --name root` does, and returns the new
// user's id. The server's read models may not show it yet: see CaughtUp.
func (ts *Server) CreateUser(t *testing.T, email string, isAdmin bool) string {
	t.Helper()
	role := domain.RoleUser
	if isAdmin {
		role = domain.RoleAdmin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := ts.Service().CreateUser(ctx, ledger.CreateUser{Actor: domain.AdminActor("root"), Email: email, Password: Password, Role: role})
	if err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	return u.ID
}

// CaughtUp waits until the server's read models show everything in the
// log, such as what an admin command just wrote straight to NATS.
func (ts *Server) CaughtUp(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Projector().WaitFor(ctx, StreamHead(t, ts)); err != nil {
		t.Fatalf("server catching up with the log: %v", err)
	}
}

// Bearer is the header pair of a session token, for Server.Do.
func Bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }
