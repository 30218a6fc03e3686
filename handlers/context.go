package handlers

import (
	"context"
	"strings"
)

func withUserID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, userIDKey{}, id)
}

func userIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(userIDKey{}).(string)
	return id
}

// cutScheme splits an Authorization header into scheme and parameter.
func cutScheme(h string) (scheme, param string, ok bool) {
	scheme, param, ok = strings.Cut(strings.TrimSpace(h), " ")
	return scheme, strings.TrimSpace(param), ok
}

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }
