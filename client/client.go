// Package client is the source's side of fieldtip: it pins the newsroom's
// key, fetches and verifies the key bundle, composes tips offline into an
// encrypted outbox and sends them to the server in short sessions over one
// WebSocket at a time.
//
// It promises that a tip leaves the outbox only after the server's receipt
// verified against the log key named in a bundle that verified against the
// pinned newsroom key, was not expired and was not older than the newest
// bundle this client has seen (or, for a tip that can never be delivered,
// after such a bundle confirmed it); that nothing it writes to disk holds
// tip plaintext (its config holds the server URL, the pinned key, the
// newest bundle and seeds, and the proxy to use; the outbox is encrypted
// under the codename); that a failed Init changes nothing on disk; and that
// a reply fetch rides a connection of its own, reveals at most
// protocol.MaxReplyBits bits of the mailbox id whatever the server says,
// writes nothing to disk, and deletes a reply only after handing it to the
// caller (replies_test.go). It imports neither storage nor server and
// builds with CGO_ENABLED=0.
//
// Its files: client.go the config; fetch.go Init and the verified bundle
// and seeds; compose.go sealing a tip offline; outbox.go the outbox
// container; session.go the send session (SendOutbox); link.go the
// WebSocket transport of one session; seed.go the proof-of-work seeds;
// scrub.go and attach.go attachments; proxy.go SOCKS5; replies.go the
// newsroom's replies (FetchReplies: a bucket on a connection of its own,
// opened with the reply keys the codename derives).
package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"fieldtip/internal/atomicfile"
)

// ConfigFile is the name of the client's state file in its config dir.
const ConfigFile = "config.json"

// Errors callers branch on.
var (
	// ErrNotInitialized: fieldtip init has not been run for this config dir.
	ErrNotInitialized = errors.New("not initialized: run fieldtip init first")
	// ErrBundleRollback: the server offered a bundle older than one this
	// client has seen (an old bundle could list a revoked editor).
	ErrBundleRollback = errors.New("bundle is older than one this client has seen")
	// ErrBadServerMessage: the server sent something the protocol does not
	// allow (the link or the server is broken or hostile).
	ErrBadServerMessage = errors.New("server broke the protocol")
)

// Config is the client's state, kept in DIR/config.json:
//
//	{"version":3,"server":"https://…","newsroom":"<verifier key>","highest_bundle_version":3,
//	 "bundle":"<signed bundle>","seeds":["<signed proof-of-work seed>",…],"proxy":"socks5h://…"}
//
// Everything in it is public: the newsroom's key and bundle, the server's
// URL and seeds, the proxy's address. It holds no tip, no codename and
// nothing derived from one.
type Config struct {
	Version              int    `json:"version"`
	Server               string `json:"server"`
	Newsroom             string `json:"newsroom"`
	HighestBundleVersion int64  `json:"highest_bundle_version"`
	// Bundle is the newest bundle this client verified, so compose can
	// encrypt with no network.
	Bundle string `json:"bundle,omitempty"`
	// Seeds are the signed proof-of-work seeds of the newest epochs this
	// client saw (at most two, oldest first), so compose can compute proofs
	// of work with no network, and a second, different seed for a known
	// epoch is caught.
	Seeds []string `json:"seeds,omitempty"`
	// Proxy, if set, is the SOCKS5 proxy every connection goes through
	// (socks5h://HOST:PORT): once given it stays, so that forgetting the
	// flag once never connects without Tor. Empty: connect directly.
	Proxy string `json:"proxy,omitempty"`

	// dir is the config dir the config was loaded from or is saved to.
	dir string
}

// configVersion is the version this program writes. Version 1 (before the
// outbox: no bundle, no seeds) and version 2 (no proxy) are read and
// upgraded on the next save. Version 3 added the proxy: a program that
// knows only version 2 would ignore it and connect without Tor, so it
// must refuse the file instead, which a new version number makes it do.
const configVersion = 3

// DefaultConfigDir returns the default config dir, fieldtip under the
// user's config directory.
func DefaultConfigDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config dir: %w (use --config)", err)
	}
	return filepath.Join(d, "fieldtip"), nil
}

// LoadConfig reads DIR/config.json.
func LoadConfig(dir string) (*Config, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotInitialized
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("config %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	if c.Version < 1 || c.Version > configVersion {
		return nil, fmt.Errorf("config %s: version %d, this program reads 1 to %d", filepath.Join(dir, ConfigFile), c.Version, configVersion)
	}
	if c.Proxy != "" {
		if _, err := ProxyDialer(c.Proxy); err != nil {
			return nil, fmt.Errorf("config %s: %w", filepath.Join(dir, ConfigFile), err)
		}
	}
	c.Version = configVersion
	c.dir = dir
	return &c, nil
}

// Dir returns the config dir the config belongs to.
func (c *Config) Dir() string { return c.dir }

// save writes the config durably (internal/atomicfile).
func (c *Config) save() error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := atomicfile.Replace(filepath.Join(c.dir, ConfigFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// SetProxy sets the proxy every later connection goes through
// (socks5h://HOST:PORT; "" to connect directly) and saves the config.
func (c *Config) SetProxy(proxyURL string) error {
	if proxyURL != "" {
		if _, err := ProxyDialer(proxyURL); err != nil {
			return err
		}
	}
	if c.Proxy == proxyURL {
		return nil
	}
	old := c.Proxy
	c.Proxy = proxyURL
	if err := c.save(); err != nil {
		c.Proxy = old
		return err
	}
	return nil
}
