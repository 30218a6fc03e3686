package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// adminNodes: keyledger admin nodes: the fleet as serve hears it.
func adminNodes(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("admin nodes")
	var af apiFlags
	af.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	var list struct {
		Head  uint64 `json:"head"`
		Nodes []struct {
			Name             string    `json:"name"`
			Version          string    `json:"version"`
			AppliedSeq       uint64    `json:"applied_seq"`
			Lag              uint64    `json:"lag"`
			StalenessSeconds float64   `json:"staleness_seconds"`
			LastHeard        time.Time `json:"last_heard"`
			Live             bool      `json:"live"`
		} `json:"nodes"`
	}
	return api.list(ctx, "/admin/nodes", af.asJSON, stdout, &list, func(tw io.Writer) {
		fmt.Fprintln(tw, "NODE\tLIVE\tVERSION\tAPPLIED\tLAG\tSTALENESS\tLAST HEARD")
		for _, n := range list.Nodes {
			live := "yes"
			if !n.Live {
				live = "no"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.1fs\t%s\n", n.Name, live, n.Version, n.AppliedSeq, n.Lag,
				n.StalenessSeconds, n.LastHeard.UTC().Format(time.RFC3339))
		}
	})
}

// registerWaitNodes adds --wait-nodes to a command that takes a key out
// of service.
func registerWaitNodes(fs *flag.FlagSet, wait *bool) {
	fs.BoolVar(wait, "wait-nodes", false, "return once every live validation node applied it (?wait=nodes); exit 4 naming the nodes that did not confirm within serve's --wait-timeout")
}

// doWait sends a command without an answer body, with ?wait=nodes if
// wait. A 202 (in force, some live node did not confirm) is exit 4.
func (a *adminAPI) doWait(ctx context.Context, wait bool, method, path string, body any) error {
	if !wait {
		return a.do(ctx, method, path, body, nil)
	}
	var pending struct {
		NodesApplied string   `json:"nodes_applied"`
		PendingNodes []string `json:"pending_nodes"`
	}
	if err := a.do(ctx, method, path+"?wait=nodes", body, &pending); err != nil {
		return err
	}
	if pending.NodesApplied != "" {
		return exitError{4, fmt.Errorf("in force, but only %s live nodes confirmed within serve's --wait-timeout; not confirmed: %s",
			pending.NodesApplied, strings.Join(pending.PendingNodes, ", "))}
	}
	return nil
}
