package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

type waitNodesKey struct{}

// WithWaitForNodes returns a context whose commands that take a key out
// of service (RevokeKey, RegenerateSecret, EditKey, DisableKey and their
// Admin counterparts) ask ?wait=nodes: the server answers only once every
// live validation node applied the command. When some node has not
// confirmed within the server's --wait-timeout, the command is in force
// all the same and the call returns its result (a new secret, say) with a
// *NodesPendingError.
func WithWaitForNodes(ctx context.Context) context.Context {
	return context.WithValue(ctx, waitNodesKey{}, true)
}

func waitsForNodes(ctx context.Context) bool {
	v, _ := ctx.Value(waitNodesKey{}).(bool)
	return v
}

// NodesPendingError is the answer 202 to a command asked with
// WithWaitForNodes: the command is stored and in force, but the nodes
// named in Pending have not confirmed applying it.
type NodesPendingError struct {
	// Applied is "confirmed/live", like "2/3".
	Applied string `json:"nodes_applied"`
	// Pending names the live nodes that have not confirmed.
	Pending []string `json:"pending_nodes"`
}

// Error says the command is in force and which nodes have not confirmed.
func (e *NodesPendingError) Error() string {
	return fmt.Sprintf("keyledger: in force, but %s nodes confirmed (pending: %v)", e.Applied, e.Pending)
}

// nodesPending decodes a 202 to a command asked with ?wait=nodes: the
// command's own answer into out, and the nodes that did not confirm into
// the error returned.
func nodesPending(req request, resp *http.Response, out any) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil || len(b) > maxResponseBytes {
		return fmt.Errorf("keyledger: %s %s: read response: %v", req.method, req.path, err)
	}
	var pending NodesPendingError
	if err := json.Unmarshal(b, &pending); err != nil {
		return fmt.Errorf("keyledger: %s %s: response %d is not the expected JSON", req.method, req.path, resp.StatusCode)
	}
	if out != nil {
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if err := decodeBody(req, resp, out); err != nil {
			return err
		}
	}
	return &pending
}

// Node is a validation node (or a serve) as serve hears it.
type Node struct {
	Name             string    `json:"name"`
	Version          string    `json:"version"`
	AppliedSeq       uint64    `json:"applied_seq"`
	Lag              uint64    `json:"lag"`
	StalenessSeconds float64   `json:"staleness_seconds"`
	LastHeard        time.Time `json:"last_heard"`
	// Live is true while the node is heard within serve's --node-liveness.
	Live bool `json:"live"`
}

// AdminListNodes lists the nodes heard from: GET /admin/nodes. Errors:
// ErrNoSession; *Error with status 401 or 403 (not an admin).
func (c *Client) AdminListNodes(ctx context.Context) ([]Node, error) {
	var out struct {
		Nodes []Node `json:"nodes"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/admin/nodes", auth: true}, &out)
	return out.Nodes, err
}
