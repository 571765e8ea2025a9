// Package client is the source's side of fieldtip: it pins the newsroom's
// key, fetches and verifies the key bundle, seals a tip to every editor in
// it and uploads it to the server over one WebSocket.
//
// It promises that a tip is reported sent only after the server's receipt
// verified against the log key named in a bundle that verified against the
// pinned newsroom key, was not expired and was not older than the newest
// bundle this client has seen; and that nothing it writes to disk holds tip
// plaintext (its config holds the server URL, the pinned key and that
// version number). It imports neither storage nor server and builds with
// CGO_ENABLED=0.
package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"fieldtip/internal/atomicfile"
	"fieldtip/protocol"

	"golang.org/x/mod/sumdb/note"
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
//	{"version":2,"server":"https://…","newsroom":"<verifier key>","highest_bundle_version":3,
//	 "bundle":"<signed bundle>","seeds":["<signed proof-of-work seed>",…]}
//
// Everything in it is public: the newsroom's key and bundle, the server's
// URL and seeds. It holds no tip, no codename and nothing derived from one.
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
}

// configVersion is the version this program writes. Version 1 (before the
// outbox: no bundle, no seeds) is read and upgraded on the next save.
const configVersion = 2

// DefaultConfigDir returns the default config dir, fieldtip under the
// user's config directory.
func DefaultConfigDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config dir: %w (use --config)", err)
	}
	return filepath.Join(d, "fieldtip"), nil
}

// Init pins the newsroom verifier key and the server URL in dir. Running it
// again with the same newsroom key keeps the highest bundle version seen;
// a different newsroom key is refused unless the old config is removed by
// hand, so a tampered instruction cannot silently repin.
func Init(dir, server, newsroom string) error {
	if _, err := protocol.ParseServerURL(server); err != nil {
		return err
	}
	if _, err := note.NewVerifier(newsroom); err != nil {
		return fmt.Errorf("newsroom key %q is not a verifier key: %w", newsroom, err)
	}
	cfg := &Config{Version: configVersion, Server: server, Newsroom: newsroom}
	old, err := LoadConfig(dir)
	switch {
	case errors.Is(err, ErrNotInitialized):
	case err != nil:
		return err
	case old.Newsroom != newsroom:
		return fmt.Errorf("%s already pins another newsroom key; remove it first if you mean to change newsrooms", filepath.Join(dir, ConfigFile))
	default:
		// The bundle, seeds and highest version stay (a rollback stays
		// refused, and compose keeps working if the fetch that follows
		// fails); Fetch replaces the seeds when it succeeds.
		cfg.HighestBundleVersion = old.HighestBundleVersion
		cfg.Bundle, cfg.Seeds = old.Bundle, old.Seeds
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return saveConfig(dir, cfg)
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
	if c.Version != configVersion && c.Version != 1 {
		return nil, fmt.Errorf("config %s: version %d, this program reads 1 and %d", filepath.Join(dir, ConfigFile), c.Version, configVersion)
	}
	c.Version = configVersion
	return &c, nil
}

// saveConfig writes the config durably (internal/atomicfile).
func saveConfig(dir string, c *Config) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := atomicfile.Replace(filepath.Join(dir, ConfigFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
