package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"
	"fieldtip/server"

	"github.com/spf13/pflag"
)

type backup struct {
	data, out string
}

func (*backup) Name() string  { return "backup" }
func (*backup) Usage() string { return "--data DIR --out FILE" }
func (*backup) Summary() string {
	return "Write a consistent copy of the database to a new file, while the server runs or not (restore: README, \"Backups\")."
}

func (c *backup) Flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.data, "data", server.DefaultConfig().DataDir, "data directory of the server")
	fs.StringVar(&c.out, "out", "", "the copy to write, a file that does not exist yet (required)")
}

func (c *backup) Run(ctx context.Context, env *cli.Env, args []string) error {
	if c.out == "" || len(args) != 0 {
		return cli.Usagef("want --out FILE and no arguments")
	}
	n, err := server.Backup(ctx, c.data, c.out)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "fieldtipd: backed up %d tips, a log of %d entries and %d unfinished uploads; keep log.key apart, and restore as the README's \"Backups\" says\n", n.Tips, n.LogSize, n.Uploads)
	fmt.Fprintln(env.Stdout, c.out)
	return nil
}
