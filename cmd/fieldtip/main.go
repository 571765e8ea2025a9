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
	os.Exit(cli.Main("fieldtip", []cli.Command{&initCmd{}, &compose{}, &send{}}, false, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
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
type netFlags struct{ proxy string }

func (f *netFlags) declare(fs *pflag.FlagSet) {
	fs.StringVar(&f.proxy, "proxy", "", "connect through a SOCKS5 proxy such as Tor: socks5h://HOST:PORT (the proxy resolves names)")
}

func (f *netFlags) options() (client.SendOptions, error) {
	var o client.SendOptions
	if f.proxy != "" {
		d, err := client.ProxyDialer(f.proxy)
		if err != nil {
			return o, cli.Usagef("%v", err)
		}
		o.NetDialContext = d
	}
	return o, nil
}
