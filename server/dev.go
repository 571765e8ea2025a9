package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"fieldtip/crypto"
)

// DevPassphrase protects the throwaway keys of --dev. age refuses an empty
// passphrase, so development keys use this one, written next to them in a
// passphrase file; it is not a secret.
const DevPassphrase = "fieldtip-dev-not-secret"

// DevEditor is the label of the development editor.
const DevEditor = "dev-editor"

// DevSetup prepares a data directory for trying fieldtip out: a throwaway
// newsroom key, one editor key and a bundle naming the server's log key,
// each created only if missing. It returns the bundle's path and the
// newsroom verifier key.
func DevSetup(dir string) (bundlePath, newsroom string, err error) {
	devDir := filepath.Join(dir, "dev")
	if err := os.MkdirAll(devDir, 0o700); err != nil {
		return "", "", fmt.Errorf("dev setup: %w", err)
	}
	logKey, err := LoadOrCreateLogKey(dir)
	if err != nil {
		return "", "", err
	}
	bundlePath = filepath.Join(dir, "bundle.txt")
	if msg, err := os.ReadFile(bundlePath); err == nil {
		b, err := crypto.OpenBundleSelfSigned(msg)
		if err != nil {
			return "", "", fmt.Errorf("dev setup: %s: %w", bundlePath, err)
		}
		return bundlePath, b.Newsroom, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("dev setup: %w", err)
	}
	pass := filepath.Join(devDir, "passphrase")
	if err := WriteFileAtomic(pass, []byte(DevPassphrase+"\n"), 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", "", fmt.Errorf("dev setup: %w", err)
	}
	nk, err := crypto.GenerateSignerKey(crypto.NewsroomKeyHeader, "fieldtip-dev-newsroom")
	if err != nil {
		return "", "", err
	}
	ek, err := crypto.GenerateEditorKey(DevEditor, false)
	if err != nil {
		return "", "", err
	}
	for _, f := range []struct {
		name  string
		plain []byte
	}{{"newsroom.key", nk.Marshal()}, {DevEditor + ".key", ek.Marshal()}} {
		sealed, err := crypto.SealWithPassphrase(f.plain, DevPassphrase, crypto.DefaultScryptWorkFactor)
		if err != nil {
			return "", "", err
		}
		path := filepath.Join(devDir, f.name)
		os.Remove(path) // a leftover from an interrupted setup
		if err := WriteFileAtomic(path, sealed, 0o600); err != nil {
			return "", "", fmt.Errorf("dev setup: %w", err)
		}
	}
	pub := filepath.Join(devDir, DevEditor+".key.pub")
	os.Remove(pub)
	if err := WriteFileAtomic(pub, crypto.MarshalEditorPublic(ek.Public), 0o644); err != nil {
		return "", "", fmt.Errorf("dev setup: %w", err)
	}
	b := &crypto.Bundle{
		Newsroom: nk.Verifier,
		Version:  1,
		Expires:  time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second),
		Log:      logKey.Verifier,
		Policy:   crypto.DefaultPolicy,
		Editors:  []crypto.Editor{ek.Public},
	}
	msg, err := crypto.SignBundle(b, nk.Signer)
	if err != nil {
		return "", "", err
	}
	if err := WriteFileAtomic(bundlePath, msg, 0o644); err != nil {
		return "", "", fmt.Errorf("dev setup: %w", err)
	}
	return bundlePath, nk.Verifier, nil
}

// PrintDevBanner tells a person trying fieldtip out what to type next.
func PrintDevBanner(w io.Writer, dir, origin, newsroom string) {
	dev := filepath.Join(dir, "dev")
	key := filepath.Join(dev, DevEditor+".key")
	pass := filepath.Join(dev, "passphrase")
	cache := filepath.Join(dev, "newsdesk")
	src := filepath.Join(dev, "source")
	fmt.Fprintf(w, `
************************************************************************
*  DEVELOPMENT MODE: throwaway keys kept next to the server, plain     *
*  HTTP, a passphrase that is written down. For trying fieldtip out    *
*  only. Never send a real tip to this server.                         *
************************************************************************

Serving on %[1]s (data in %[2]s).

As a source, in another terminal:
  go run ./cmd/fieldtip init --config %[3]s --server %[1]s --newsroom %[4]s
  go run ./cmd/fieldtip send --config %[3]s --text 'copper trucks at the river crossing'

As an editor:
  go run ./cmd/newsdesk pull  --server %[1]s --key %[5]s --passphrase-file %[6]s --cache %[7]s
  go run ./cmd/newsdesk inbox --key %[5]s --passphrase-file %[6]s --cache %[7]s
  go run ./cmd/newsdesk read TIP-ID --key %[5]s --passphrase-file %[6]s --cache %[7]s

`, origin, dir, src, newsroom, key, pass, cache)
}
