package main

import (
	"context"
	"fmt"

	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type editorNew struct {
	name, out, passphraseFile string
	classic                   bool
}

func (*editorNew) Name() string { return "editor new" }
func (*editorNew) Usage() string {
	return "--name LABEL --out FILE [--classic] [--passphrase-file F]"
}
func (*editorNew) Summary() string {
	return "Create an editor's keys (FILE, passphrase-protected) and their public half (FILE.pub)."
}
func (c *editorNew) Flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.name, "name", "", "the editor's label in bundles: 1-32 of a-z 0-9 _ - (a pseudonym is wise)")
	fs.StringVar(&c.out, "out", "", "where to write the key file (required; never replaced)")
	fs.BoolVar(&c.classic, "classic", false, "use an X25519 age key instead of the hybrid post-quantum one")
	fs.StringVar(&c.passphraseFile, "passphrase-file", "", "read the new passphrase from this file instead of the terminal")
}

func (c *editorNew) Run(ctx context.Context, env *cli.Env, args []string) error {
	if c.name == "" || c.out == "" || len(args) != 0 {
		return cli.Usagef("want --name LABEL --out FILE and no arguments")
	}
	pass, err := env.Passphrase(c.passphraseFile, "Passphrase for the new editor key", true)
	if err != nil {
		return err
	}
	e, err := newsdesk.EditorNew(c.name, c.out, pass, c.classic, keyOptions())
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "newsdesk: wrote %s and %s.pub\n", c.out, c.out)
	fmt.Fprintln(env.Stdout, e.Label)
	return nil
}
