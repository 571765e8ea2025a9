package main

import (
	"context"
	"fmt"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

type bundleSign struct {
	newsroom, passphraseFile, log, out string
	editors, revoke                    []string
	version                            int64
	expires                            time.Duration
	clusters, approvals                int64
}

func (*bundleSign) Name() string { return "bundle sign" }
func (*bundleSign) Usage() string {
	return "--newsroom KEY --log VERIFIER --editor A.key.pub [--editor B.key.pub]... [--revoke LABEL]... [--version N] [--expires 2160h] --out FILE"
}
func (*bundleSign) Summary() string {
	return "Sign a key bundle: the editors sources encrypt to, the server's log key, the policy."
}
func (c *bundleSign) Flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.newsroom, "newsroom", "", "the newsroom key file (required)")
	fs.StringVar(&c.passphraseFile, "passphrase-file", "", "read the newsroom key's passphrase from this file instead of the terminal")
	fs.StringVar(&c.log, "log", "", "the server's log verifier key, from fieldtipd --print-log-key (required)")
	fs.StringArrayVar(&c.editors, "editor", nil, "an editor's public key file (repeatable; at least one)")
	fs.StringArrayVar(&c.revoke, "revoke", nil, "label of an editor whose keys are revoked (repeatable)")
	fs.Int64Var(&c.version, "version", 0, "bundle version (default: one more than the last this newsroom key signed)")
	fs.DurationVar(&c.expires, "expires", 2160*time.Hour, "how long sources trust the bundle")
	fs.Int64Var(&c.clusters, "policy-clusters", crypto.DefaultPolicy.Clusters, "independent supporting clusters a claim needs")
	fs.Int64Var(&c.approvals, "policy-approvals", crypto.DefaultPolicy.Approvals, "approvals by distinct editors, not the author, a claim needs")
	fs.StringVar(&c.out, "out", "", "where to write the signed bundle (required)")
}

func (c *bundleSign) Run(ctx context.Context, env *cli.Env, args []string) error {
	if c.newsroom == "" || c.log == "" || c.out == "" || len(c.editors) == 0 || len(args) != 0 {
		return cli.Usagef("want --newsroom, --log, --out, at least one --editor, and no arguments")
	}
	if c.version < 0 {
		return cli.Usagef("--version must be positive")
	}
	if err := checkKeyFile("--newsroom", c.newsroom, "the newsroom key file newsdesk newsroom init wrote"); err != nil {
		return err
	}
	pass, err := env.Passphrase(c.passphraseFile, "Newsroom key passphrase", false)
	if err != nil {
		return err
	}
	nk, err := newsdesk.LoadNewsroomKey(c.newsroom, pass)
	if err != nil {
		return err
	}
	b, err := newsdesk.BundleSign(c.newsroom, nk, newsdesk.BundleSpec{
		Log: c.log, EditorFiles: c.editors, Revoke: c.revoke, Version: c.version,
		Expires: c.expires, Policy: crypto.Policy{Clusters: c.clusters, Approvals: c.approvals},
	})
	if err != nil {
		return err
	}
	if err := newsdesk.WriteBundle(c.out, b.Signed()); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "bundle version %d, %d editor(s), expires %s\n%d\n", b.Version, len(b.Editors), b.Expires.Format(time.RFC3339), b.Version)
	return nil
}
