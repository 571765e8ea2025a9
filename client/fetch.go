package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"golang.org/x/mod/sumdb/note"
)

// ErrOtherNewsroom: Init was asked to pin a newsroom key other than the
// one the config dir pins, without InitOptions.ReplaceNewsroom.
var ErrOtherNewsroom = errors.New("the config already pins another newsroom key")

// InitOptions tune Init. The zero value is valid.
type InitOptions struct {
	// Proxy, if set, is the SOCKS5 proxy to connect through
	// (socks5h://HOST:PORT), stored in the config for every later
	// connection. Empty keeps the proxy the config has, if any.
	Proxy string
	// NoProxy clears the stored proxy: connect directly.
	NoProxy bool
	// ReplaceNewsroom allows pinning a newsroom key other than the one the
	// config pins: the stored bundle, seeds and highest version seen are
	// forgotten with it.
	ReplaceNewsroom bool
	// NetDialContext, if set, dials the TCP connection instead of the
	// proxy or a direct dial (a test relay).
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock for the bundle's expiry and the seed's epoch
	// (default time.Now).
	Now func() time.Time
}

// Init pins the newsroom verifier key and the server URL in dir, after
// fetching the server's bundle and proof-of-work seed and verifying both
// against that key, so that Compose works with no network. It writes the
// config only once everything verified, in one atomic replace: a refused
// or failed Init (a bad URL, a server that does not answer, a key that did
// not sign the bundle) leaves dir as it was.
//
// Run again with the same newsroom key, it keeps the highest bundle
// version seen (a rollback stays refused) and replaces the seeds (which is
// how a source accepts a changed epoch length, acceptSeed). A different
// newsroom key is refused with ErrOtherNewsroom unless
// opts.ReplaceNewsroom is set, so that a tampered instruction cannot
// silently repin.
func Init(ctx context.Context, dir, server, newsroom string, opts InitOptions) (*Config, *crypto.Bundle, *crypto.PoWSeed, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if _, err := protocol.ParseServerURL(server); err != nil {
		return nil, nil, nil, err
	}
	if _, err := note.NewVerifier(newsroom); err != nil {
		return nil, nil, nil, fmt.Errorf("newsroom key %q is not a verifier key: %w", newsroom, err)
	}
	if opts.Proxy != "" && opts.NoProxy {
		return nil, nil, nil, errors.New("a proxy and no proxy at once")
	}
	cfg := &Config{Version: configVersion, Server: server, Newsroom: newsroom, dir: dir}
	old, err := LoadConfig(dir)
	switch {
	case errors.Is(err, ErrNotInitialized):
	case err != nil:
		return nil, nil, nil, err
	case old.Newsroom != newsroom && !opts.ReplaceNewsroom:
		return nil, nil, nil, fmt.Errorf("%s: %w (%s)", filepath.Join(dir, ConfigFile), ErrOtherNewsroom, old.Newsroom)
	case old.Newsroom != newsroom:
		cfg.Proxy = old.Proxy
	default:
		cfg.HighestBundleVersion = old.HighestBundleVersion
		cfg.Proxy = old.Proxy
	}
	switch {
	case opts.NoProxy:
		cfg.Proxy = ""
	case opts.Proxy != "":
		if _, err := ProxyDialer(opts.Proxy); err != nil {
			return nil, nil, nil, err
		}
		cfg.Proxy = opts.Proxy
	}
	l, err := dialServer(ctx, cfg, opts.NetDialContext)
	if err != nil {
		return nil, nil, nil, err
	}
	defer l.close()
	b, seed, err := l.fetchBundle(ctx, cfg, opts.Now())
	if err != nil {
		return nil, nil, nil, err
	}
	l.closeCleanly()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, nil, err
	}
	if err := cfg.save(); err != nil {
		return nil, nil, nil, err
	}
	return cfg, b, seed, nil
}

// fetchBundle asks for the bundle in force and the current seed, verifies
// both and records them in cfg, which the caller saves.
func (l *link) fetchBundle(ctx context.Context, cfg *Config, now time.Time) (*crypto.Bundle, *crypto.PoWSeed, error) {
	if err := l.send(&protocol.BundleRequest{Version: protocol.Version}); err != nil {
		return nil, nil, err
	}
	msg, err := l.receive(ctx)
	if err != nil {
		return nil, nil, err
	}
	reply, ok := msg.(*protocol.BundleReply)
	if !ok {
		return nil, nil, fmt.Errorf("%w: it answered the bundle request with %T", ErrBadServerMessage, msg)
	}
	// Work on a copy: cfg changes only if both verify.
	next := *cfg
	next.Seeds = append([]string(nil), cfg.Seeds...)
	b, err := verifyBundle(&next, reply.Bundle, now)
	if err != nil {
		return nil, nil, err
	}
	seed, err := acceptSeed(&next, b, reply.Seed, now)
	if err != nil {
		return nil, nil, err
	}
	*cfg = next
	return b, seed, nil
}

// verifyBundle checks a bundle from the server against the pinned
// newsroom key, its expiry and the highest version seen, and records it
// in cfg as the newest seen (the caller saves cfg).
func verifyBundle(cfg *Config, msg []byte, now time.Time) (*crypto.Bundle, error) {
	b, err := crypto.OpenBundle(msg, cfg.Newsroom)
	if err != nil {
		// The key given may be the log key, which the bundle names: say
		// so, since both are verifier keys and look alike. The unverified
		// parse only chooses the message.
		if u, uerr := crypto.OpenBundleSelfSigned(msg); uerr == nil && u.Log == cfg.Newsroom {
			return nil, fmt.Errorf("bundle from server refused: the key pinned as the newsroom's is the server's log key; give the newsroom's key (newsroom.vkey): %w", err)
		}
		return nil, fmt.Errorf("bundle from server refused: %w", err)
	}
	if b.Expired(now) {
		return nil, fmt.Errorf("bundle from server refused: version %d %w on %s", b.Version, crypto.ErrExpired, b.Expires.Format(time.RFC3339))
	}
	if b.Version < cfg.HighestBundleVersion {
		return nil, fmt.Errorf("bundle from server refused: version %d: %w (version %d)", b.Version, ErrBundleRollback, cfg.HighestBundleVersion)
	}
	cfg.HighestBundleVersion = b.Version
	cfg.Bundle = string(msg)
	return b, nil
}

// checkSeed verifies and records the seed an offset message carried,
// saving the config if it learnt a new one.
func checkSeed(cfg *Config, b *crypto.Bundle, signed []byte, now time.Time) error {
	before := len(cfg.Seeds)
	if _, err := acceptSeed(cfg, b, signed, now); err != nil {
		return err
	}
	if len(cfg.Seeds) != before || cfg.Seeds[len(cfg.Seeds)-1] != string(signed) {
		return cfg.save()
	}
	return nil
}
