package main

import (
	"context"
	"fmt"
	"os"

	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type bundlePublish struct {
	server string
}

func (*bundlePublish) Name() string  { return "bundle publish" }
func (*bundlePublish) Usage() string { return "--server URL BUNDLE" }
func (*bundlePublish) Summary() string {
	return "Hand a newer signed bundle to a running server, which puts it in force."
}
func (c *bundlePublish) Flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "the server's URL (required)")
}

func (c *bundlePublish) Run(ctx context.Context, env *cli.Env, args []string) error {
	if c.server == "" || len(args) != 1 {
		return cli.Usagef("want --server URL and one bundle file")
	}
	msg, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	b, err := crypto.OpenBundleSelfSigned(msg)
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	if err := newsdesk.PublishBundle(ctx, c.server, msg); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	fmt.Fprintf(env.Stdout, "bundle version %d in force\n", b.Version)
	return nil
}
