package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type claimsCmd struct {
	sessionFlags
	json bool
}

func (*claimsCmd) Name() string  { return "claims" }
func (*claimsCmd) Usage() string { return "[--json] [--server URL] --key FILE [--cache DIR]" }
func (*claimsCmd) Summary() string {
	return "List the claims, one a line: id, state, version, supporting clusters, approvals, then what the policy still lacks or the publication day, and the text (syncs first with --server)."
}
func (c *claimsCmd) Flags(fs *pflag.FlagSet) {
	c.sessionFlags.declare(fs, "sync with this server first (default: offline, from the cache)")
	fs.BoolVar(&c.json, "json", false, "print one JSON document: {\"claims\":[…]}")
}

func (c *claimsCmd) Run(ctx context.Context, env *cli.Env, args []string) (err error) {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	s, err := c.openReader(ctx, env)
	if err != nil {
		return err
	}
	defer closeSession(s, &err)
	if s.View() == nil {
		return errNoLog
	}
	list, err := newsdesk.NewDesk(s).Claims()
	if err != nil {
		return err
	}
	if c.json {
		if list == nil {
			list = []newsdesk.ClaimSummary{}
		}
		b, err := json.Marshal(struct {
			Claims []newsdesk.ClaimSummary `json:"claims"`
		}{list})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s\n", b)
		return nil
	}
	for _, s := range list {
		fmt.Fprintln(env.Stdout, claimLine(s))
	}
	return nil
}

// claimLine is one line of newsdesk claims, tab-separated: id, state,
// version, clusters, approvals, what is lacking (or the publication),
// the text's first line; safe for a terminal.
func claimLine(s newsdesk.ClaimSummary) string {
	list := func(xs []string) string {
		if len(xs) == 0 {
			return "-"
		}
		return strings.Join(xs, ",")
	}
	status := "ready to publish"
	switch {
	case s.Publication != 0:
		status = fmt.Sprintf("published %s (event %d)", s.Published, s.Publication)
		if s.Corrections > 0 {
			status += fmt.Sprintf(", %d correction(s)", s.Corrections)
		}
	case len(s.Lacking) > 0:
		status = strings.Join(s.Lacking, "; ")
	}
	return cli.TerminalSafe(fmt.Sprintf("%s\t%s\t%d\tclusters %s\tapprovals %s\t%s\t%s",
		s.ID, s.State, s.Version, list(s.Clusters), list(s.Approvals), status, newsdesk.FirstLine(s.Text, 60)))
}
