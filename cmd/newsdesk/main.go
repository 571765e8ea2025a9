// Command newsdesk is the editors' tool: newsroom and editor keys, key
// bundles, and pulling, listing and reading tips, decrypted on this machine
// only. See newsdesk --help.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

func main() {
	os.Exit(cli.Main("newsdesk", commands(), false, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func commands() []cli.Command {
	return []cli.Command{
		&newsroomInit{}, &editorNew{}, &bundleSign{}, &bundlePublish{},
		&pull{}, &syncCmd{}, &inbox{}, &read{},
		&triage{}, &assignCmd{}, &noteCmd{}, &replyCmd{}, &threadCmd{}, &deleteCmd{}, &handover{}, &logCmd{},
		&auditVerify{},
		&consoleCmd{},
		&claimNew{}, &claimEdit{}, &link{}, &unlink{}, &signoff{}, &publish{}, &correct{}, &claimsCmd{}, &periodClose{}, &auditTrail{},
	}
}

// testOnlyWorkFactor, when set, replaces the scrypt work factor of new key
// files so that tests need not spend a second per key.
var testOnlyWorkFactor int

func keyOptions() newsdesk.KeyOptions {
	return newsdesk.KeyOptions{WorkFactor: testOnlyWorkFactor}
}

// editorFlags are the flags of every command that opens an editor key.
type editorFlags struct {
	key, passphraseFile, cache string
}

func (f *editorFlags) declare(fs *pflag.FlagSet) {
	fs.StringVar(&f.key, "key", "", "editor key file (required)")
	fs.StringVar(&f.passphraseFile, "passphrase-file", "", "read the key's passphrase from this file instead of the terminal")
	fs.StringVar(&f.cache, "cache", "", "local cache of ciphertext (default: fieldtip-newsdesk in the user cache dir)")
}

// cacheDir checks --key and returns the cache directory.
func (f *editorFlags) cacheDir() (string, error) {
	if f.key == "" {
		return "", cli.Usagef("--key is required")
	}
	if f.cache != "" {
		return f.cache, nil
	}
	return newsdesk.DefaultCacheDir()
}

// loadKey asks for the passphrase and opens the editor key.
func loadKey(env *cli.Env, f *editorFlags) (*crypto.EditorKey, error) {
	if err := checkKeyFile("--key", f.key, "the editor's key file"); err != nil {
		return nil, err
	}
	pass, err := env.Passphrase(f.passphraseFile, "Editor key passphrase", false)
	if err != nil {
		return nil, err
	}
	return newsdesk.LoadEditorKey(f.key, pass)
}

// checkKeyFile checks, before a passphrase is asked, that the file given
// as flag is a key file, and says what was expected if it is another file
// fieldtip makes (issue 12: a .pub file given as --key).
func checkKeyFile(flag, path, want string) error {
	err := newsdesk.CheckKeyFile(path)
	var nk *crypto.NotKeyFileError
	if !errors.As(err, &nk) {
		return err
	}
	hint := "give " + want
	if base, ok := strings.CutSuffix(path, ".pub"); ok && nk.Public {
		if _, statErr := os.Stat(base); statErr == nil {
			hint += ", " + base
		}
	}
	return fmt.Errorf("%s %w; %s", flag, err, hint)
}
