// Command fieldtip is the source's client: it pins the newsroom's key,
// composes tips offline into an encrypted outbox, and sends them in short
// sessions. See fieldtip --help.
package main

import (
	"os"

	"fieldtip/client"
	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

func main() {
	os.Exit(cli.Main("fieldtip", commands(), false, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func commands() []cli.Command {
	return []cli.Command{&initCmd{}, &compose{}, &send{}, &outboxDrop{}, &outboxList{}, &repliesCmd{}}
}

type configFlag struct{ dir string }

func (f *configFlag) declare(fs *pflag.FlagSet) {
	fs.StringVar(&f.dir, "config", "", "config directory, which also holds the outbox (default: fieldtip in the user config dir)")
}

func (f *configFlag) path() (string, error) {
	if f.dir != "" {
		return f.dir, nil
	}
	return client.DefaultConfigDir()
}

// netFlags are the flags of commands that connect.
type netFlags struct {
	proxy   string
	noProxy bool
}

func (f *netFlags) declare(fs *pflag.FlagSet) {
	fs.StringVar(&f.proxy, "proxy", "", "connect through a SOCKS5 proxy such as Tor, socks5h://HOST:PORT (the proxy resolves names); remembered for every later connection")
	fs.BoolVar(&f.noProxy, "no-proxy", false, "forget the remembered proxy and connect directly")
}

// check refuses a malformed proxy URL or both flags at once: usage errors.
func (f *netFlags) check() error {
	if f.proxy != "" && f.noProxy {
		return cli.Usagef("--proxy and --no-proxy together")
	}
	if f.proxy != "" {
		if _, err := client.ProxyDialer(f.proxy); err != nil {
			return cli.Usagef("%v", err)
		}
	}
	return nil
}

// apply stores the proxy flags in cfg, if given.
func (f *netFlags) apply(cfg *client.Config) error {
	switch {
	case f.noProxy:
		return cfg.SetProxy("")
	case f.proxy != "":
		return cfg.SetProxy(f.proxy)
	}
	return nil
}
