package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"
)

// adminTeamsList: keyledger admin teams list.
func adminTeamsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin teams list")
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
		Teams []struct {
			ID        string    `json:"id"`
			Name      string    `json:"name"`
			Status    string    `json:"status"`
			CreatedAt time.Time `json:"created_at"`
			Members   int       `json:"members"`
		} `json:"teams"`
	}
	return api.list(ctx, "/admin/teams", af.asJSON, stdout, &list, func(tw io.Writer) {
		fmt.Fprintln(tw, "TEAM\tNAME\tSTATUS\tMEMBERS\tCREATED")
		for _, t := range list.Teams {
			fmt.Fprintf(tw, "%s\t%q\t%s\t%d\t%s\n", t.ID, t.Name, t.Status, t.Members, t.CreatedAt.Format(time.RFC3339))
		}
	})
}

// adminTeamsTransfer: keyledger admin teams transfer <team> --owner USER.
func adminTeamsTransfer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin teams transfer")
	var af apiFlags
	af.register(fs)
	owner := fs.String("owner", "", "the user id who becomes an owner")
	reason := fs.String("reason", "", "why (recorded in the event)")
	team, err := positional(fs, args, "team id")
	if err != nil {
		return err
	}
	if *owner == "" {
		return usageError{errors.New("--owner is required")}
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	body := map[string]string{"owner": *owner}
	if *reason != "" {
		body["reason"] = *reason
	}
	if err := api.do(ctx, "POST", "/admin/teams/"+url.PathEscape(team)+"/transfer", body, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is an owner of %s\n", *owner, team)
	return nil
}

// adminTeamsAct: keyledger admin teams disable|enable <team>.
func adminTeamsAct(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin teams " + verb)
	var af apiFlags
	af.register(fs)
	reason := fs.String("reason", "", "why (recorded in the event)")
	team, err := positional(fs, args, "team id")
	if err != nil {
		return err
	}
	if *reason == "" && verb != "enable" {
		return usageError{errors.New("--reason is required")}
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	var body any
	if *reason != "" {
		body = map[string]string{"reason": *reason}
	}
	if err := api.do(ctx, "POST", "/admin/teams/"+url.PathEscape(team)+"/"+verb, body, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%sd %s\n", verb, team)
	return nil
}
