package main

import (
	"context"
	"time"

	"fieldtip/internal/cli"
	"fieldtip/server"

	"github.com/spf13/pflag"
)

// uploads is fieldtipd uploads: what the unfinished uploads hold, by state
// and age, and --drop-stalled to clear the stalled ones.
type uploads struct {
	dataDir string
	opts    server.UploadsOptions
}

func (*uploads) Name() string  { return "uploads" }
func (*uploads) Usage() string { return "--data DIR [--drop-stalled]" }
func (*uploads) Summary() string {
	return "Count the unfinished uploads by state and days since their last progress (counts only), and drop the stalled ones; with the server stopped or running."
}

func (c *uploads) Flags(fs *pflag.FlagSet) {
	d := server.DefaultConfig()
	fs.StringVar(&c.dataDir, "data", d.DataDir, "the server's data directory")
	fs.BoolVar(&c.opts.DropStalled, "drop-stalled", false, "delete the stalled uploads: those with no byte acknowledged, and those past their lifetime since their last progress (their ids stay spent)")
	fs.DurationVar(&c.opts.StallTimeout, "stall-timeout", d.StallTimeout, "the server's --stall-timeout: how long an upload with no byte acknowledged lives")
	fs.DurationVar(&c.opts.UploadExpiry, "upload-expiry", d.UploadExpiry, "the server's --upload-expiry: how long an upload with 64 KiB acknowledged lives")
}

func (c *uploads) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	c.opts.Now = time.Now
	r, err := server.Uploads(ctx, c.dataDir, c.opts)
	if r != nil {
		r.Print(env.Stdout)
	}
	return err
}
