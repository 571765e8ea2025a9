// Command fieldtip is the source's client: it pins the newsroom's key and
// sends tips, encrypted on this device to the newsroom's editors. See
// fieldtip --help.
package main

import (
	"os"

	"fieldtip/client"
	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

func main() {
	os.Exit(cli.Main("fieldtip", []cli.Command{&initCmd{}, &send{}}, false, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type configFlag struct{ dir string }

func (f *configFlag) declare(fs *pflag.FlagSet) {
	fs.StringVar(&f.dir, "config", "", "config directory (default: fieldtip in the user config dir)")
}

func (f *configFlag) path() (string, error) {
	if f.dir != "" {
		return f.dir, nil
	}
	return client.DefaultConfigDir()
}
