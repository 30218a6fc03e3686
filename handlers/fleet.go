package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/fleet"
)

// Fleet is serve's view of the nodes that validate keys (internal/fleet).
type Fleet interface {
	// Nodes lists the nodes heard from, by name.
	Nodes() []fleet.Node
	// Wait blocks until every node live when it is called has applied
	// seq, or until ctx ends, and says how far it got.
	Wait(ctx context.Context, seq uint64) fleet.Confirmation
}

// DefaultWaitTimeout is how long ?wait=nodes waits for the fleet when
// Config.WaitTimeout is zero.
const DefaultWaitTimeout = 5 * time.Second

// HeaderNodesApplied, on a command asked with ?wait=nodes, says how many
// of the live nodes applied its event: "3/3".
const HeaderNodesApplied = "Keyledger-Nodes-Applied"

// nodeView is a node in GET /admin/nodes.
type nodeView struct {
	fleet.Node
	// Lag is how many stream sequences the node is behind serve.
	Lag uint64 `json:"lag"`
}

// adminNodes: GET /admin/nodes -> 200 {"head", "nodes":[...]}.
func (a *API) adminNodes(w http.ResponseWriter, r *http.Request) {
	if a.fleet == nil {
		writeError(w, r, a.logger, domain.Errorf(domain.Unavailable, "this server does not follow the fleet"))
		return
	}
	head := a.ready.Status().AppliedSeq
	nodes := a.fleet.Nodes()
	out := struct {
		Head  uint64     `json:"head"`
		Nodes []nodeView `json:"nodes"`
	}{Head: head, Nodes: make([]nodeView, len(nodes))}
	for i, n := range nodes {
		out.Nodes[i] = nodeView{Node: n}
		if head > n.AppliedSeq {
			out.Nodes[i].Lag = head - n.AppliedSeq
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// waitNodes runs a command that takes a key out of service and, when the
// request asks ?wait=nodes, answers only once every live node applied its
// event (HeaderNodesApplied: "3/3"), or with 202 naming the nodes that
// have not confirmed once WaitTimeout has passed. The command's own
// answer (a new secret, say) is kept: a 202 carries it too, with
// "nodes_applied" and "pending_nodes" added. Any other wait value is
// refused before the command runs.
func (a *API) waitNodes(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if _, ok := q["wait"]; !ok {
			next(w, r)
			return
		}
		if v := q["wait"]; len(v) != 1 || v[0] != "nodes" {
			writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "wait must be nodes"))
			return
		}
		if a.fleet == nil {
			writeError(w, r, a.logger, domain.Errorf(domain.Unavailable, "this server does not follow the fleet"))
			return
		}
		rec := &recorder{header: http.Header{}}
		next(rec, r)
		if rec.status != 0 && (rec.status < 200 || rec.status > 299) {
			rec.writeTo(w)
			return
		}
		// The command answered once its event was applied here, so serve's
		// applied sequence is at or past the event's: waiting for it asks
		// no less of the nodes.
		seq := a.ready.Status().AppliedSeq
		ctx, cancel := context.WithTimeout(r.Context(), a.waitTimeout)
		c := a.fleet.Wait(ctx, seq)
		cancel()
		applied := fmt.Sprintf("%d/%d", c.Applied, c.Total)
		rec.header.Set(HeaderNodesApplied, applied)
		if c.Complete() {
			rec.writeTo(w)
			return
		}
		pending := c.Pending
		if pending == nil {
			pending = []string{}
		}
		extra, err := json.Marshal(struct {
			NodesApplied string   `json:"nodes_applied"`
			PendingNodes []string `json:"pending_nodes"`
		}{applied, pending})
		if err != nil {
			writeError(w, r, a.logger, err)
			return
		}
		body := bytes.TrimSpace(rec.body.Bytes())
		if len(body) >= 2 && body[0] == '{' {
			inner := bytes.TrimSpace(body[1 : len(body)-1])
			if len(inner) > 0 {
				extra = append(append(extra[:len(extra)-1], ','), body[1:]...)
			}
		}
		rec.body.Reset()
		rec.body.Write(extra)
		rec.header.Set("Content-Type", "application/json")
		rec.header.Del("Content-Length")
		rec.status = http.StatusAccepted
		rec.writeTo(w)
	}
}
