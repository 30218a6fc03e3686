package main

import (
	"context"
	"fmt"
	"io"
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
