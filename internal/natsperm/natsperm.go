// Package natsperm tells a JetStream request the server refused for want
// of a permission from one that timed out: NATS answers a publish it does
// not permit with an asynchronous error, not a reply, so the request itself
// only times out.
package natsperm

import (
	"errors"
	"strings"

	"github.com/nats-io/nats.go"
)

// Denied reports whether the connection's last error is the server
// refusing a publish to one of subjects.
func Denied(nc *nats.Conn, subjects ...string) bool {
	if nc == nil {
		return false
	}
	err := nc.LastError()
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return false
	}
	for _, s := range subjects {
		if strings.Contains(err.Error(), `"`+s+`"`) || strings.HasSuffix(err.Error(), " "+s) {
			return true
		}
	}
	return false
}
