package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type newsroomInit struct {
	out, name, passphraseFile string
}

func (*newsroomInit) Name() string  { return "newsroom init" }
func (*newsroomInit) Usage() string { return "--out FILE [--name NAME] [--passphrase-file F]" }
func (*newsroomInit) Summary() string {
	return "Create the newsroom's signing key (passphrase-protected) and print its verifier key."
}
func (c *newsroomInit) Flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.out, "out", "", "where to write the key file (required; never replaced)")
	fs.StringVar(&c.name, "name", newsdesk.DefaultNewsroomName, "the key's name, shown in signatures")
	fs.StringVar(&c.passphraseFile, "passphrase-file", "", "read the new passphrase from this file instead of the terminal")
}

func (c *newsroomInit) Run(ctx context.Context, env *cli.Env, args []string) error {
	if c.out == "" || len(args) != 0 {
		return cli.Usagef("want --out FILE and no arguments")
	}
	pass, err := env.Passphrase(c.passphraseFile, "Passphrase for the new newsroom key", true)
	if err != nil {
		return err
	}
	v, err := newsdesk.NewsroomInit(c.out, c.name, pass, keyOptions())
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, v)
	return nil
}
