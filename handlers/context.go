package handlers

import (
	"context"
	"strings"

	"github.com/keyledger/keyledger/domain"
)

func withUser(ctx context.Context, u domain.User) context.Context {
	return context.WithValue(ctx, userIDKey{}, u)
}

func userFrom(ctx context.Context) domain.User {
	u, _ := ctx.Value(userIDKey{}).(domain.User)
	return u
}

func userIDFrom(ctx context.Context) string { return userFrom(ctx).ID }

// cutScheme splits an Authorization header into scheme and parameter.
func cutScheme(h string) (scheme, param string, ok bool) {
	scheme, param, ok = strings.Cut(strings.TrimSpace(h), " ")
	return scheme, strings.TrimSpace(param), ok
}
