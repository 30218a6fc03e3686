package handlers

import (
	"context"
	"strings"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
)

func withUser(ctx context.Context, u domain.User) context.Context {
	return context.WithValue(ctx, userIDKey{}, u)
}

func userFrom(ctx context.Context) domain.User {
	u, _ := ctx.Value(userIDKey{}).(domain.User)
	return u
}

func userIDFrom(ctx context.Context) string { return userFrom(ctx).ID }

type sessionKey struct{}

func withSession(ctx context.Context, s auth.Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// sessionFrom returns the verified session of an authenticated request.
func sessionFrom(ctx context.Context) auth.Session {
	s, _ := ctx.Value(sessionKey{}).(auth.Session)
	return s
}

// cutScheme splits an Authorization header into scheme and parameter.
func cutScheme(h string) (scheme, param string, ok bool) {
	scheme, param, ok = strings.Cut(strings.TrimSpace(h), " ")
	return scheme, strings.TrimSpace(param), ok
}
