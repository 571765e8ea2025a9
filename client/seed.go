package client

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"fieldtip/crypto"
)

// Errors about proof-of-work seeds.
var (
	// ErrBadSeed: the server's proof-of-work seed is not signed by the
	// bundle's log key, or is not of the current or previous epoch.
	ErrBadSeed = errors.New("proof-of-work seed refused")
	// ErrSeedEquivocation: the server handed out two different seeds for
	// one epoch. A seed that differs per session would let the server link
	// a source's uploads (FIELD.md), so the client stops.
	ErrSeedEquivocation = errors.New("the server handed out two different proof-of-work seeds for one epoch")
)

// The most proof of work a seed may ask this client for: a cheap phone must
// compute it in seconds per 64 KiB with memory to spare (FIELD.md: 1 MiB,
// one pass, 8 bits by default).
const (
	MaxPoWMemoryKiB = 64 << 10
	MaxPoWTime      = 4
	MaxPoWBits      = 12
)

// acceptSeed verifies a signed seed from the server against the bundle's
// log key, the clock and the seeds this client knows, and records it in
// cfg (the caller saves cfg).
func acceptSeed(cfg *Config, b *crypto.Bundle, signed []byte, now time.Time) (*crypto.PoWSeed, error) {
	s, err := crypto.OpenPoWSeed(signed, b.Log)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSeed, err)
	}
	if err := s.CheckCurrent(now); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSeed, err)
	}
	if p := s.Params; p.MemoryKiB > MaxPoWMemoryKiB || p.Time > MaxPoWTime || p.Bits > MaxPoWBits {
		return nil, fmt.Errorf("%w: it asks for Argon2id with %d KiB, %d passes and %d bits, more than this client computes (%d KiB, %d, %d)",
			ErrBadSeed, p.MemoryKiB, p.Time, p.Bits, MaxPoWMemoryKiB, MaxPoWTime, MaxPoWBits)
	}
	known, err := cfg.seeds(b.Log)
	if err != nil {
		return nil, err
	}
	for i, k := range known {
		// The epoch length is the server's choice: a server that changed
		// it for every session would hand out a new epoch, and so a new
		// seed, each time. The first length seen is kept until the source
		// runs init again.
		if k.EpochSeconds != s.EpochSeconds {
			return nil, fmt.Errorf("%w: its epochs last %d s, the seeds seen before %d s (run fieldtip init again if the newsroom says it changed)", ErrSeedEquivocation, s.EpochSeconds, k.EpochSeconds)
		}
		if k.Epoch == s.Epoch {
			if !bytes.Equal([]byte(cfg.Seeds[i]), signed) {
				return nil, fmt.Errorf("%w (epoch %d)", ErrSeedEquivocation, s.Epoch)
			}
			return s, nil
		}
	}
	// Keep the newest two epochs, oldest first.
	cfg.Seeds = append(cfg.Seeds, string(signed))
	all := append(known, s)
	for len(cfg.Seeds) > 2 {
		oldest := 0
		for i := range all {
			if all[i].Epoch < all[oldest].Epoch {
				oldest = i
			}
		}
		cfg.Seeds = append(cfg.Seeds[:oldest], cfg.Seeds[oldest+1:]...)
		all = append(all[:oldest], all[oldest+1:]...)
	}
	return s, nil
}

// seeds opens the stored seeds.
func (c *Config) seeds(logKey string) ([]*crypto.PoWSeed, error) {
	var out []*crypto.PoWSeed
	for _, signed := range c.Seeds {
		s, err := crypto.OpenPoWSeed([]byte(signed), logKey)
		if err != nil {
			return nil, fmt.Errorf("config: stored proof-of-work seed: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// newestSeed returns the stored seed of the highest epoch, or an error
// saying to run init.
func (c *Config) newestSeed(logKey string) (*crypto.PoWSeed, error) {
	all, err := c.seeds(logKey)
	if err != nil {
		return nil, err
	}
	var best *crypto.PoWSeed
	for _, s := range all {
		if best == nil || s.Epoch > best.Epoch {
			best = s
		}
	}
	if best == nil {
		return nil, errors.New("no proof-of-work seed stored: run fieldtip init (or send) while connected")
	}
	return best, nil
}

// storedBundle opens the bundle this client stored, against the pinned key.
func (c *Config) storedBundle(now time.Time) (*crypto.Bundle, error) {
	if c.Bundle == "" {
		return nil, errors.New("no bundle stored: run fieldtip init while connected")
	}
	b, err := crypto.OpenBundle([]byte(c.Bundle), c.Newsroom)
	if err != nil {
		return nil, fmt.Errorf("config: stored bundle: %w", err)
	}
	if b.Expired(now) {
		return nil, fmt.Errorf("the stored bundle (version %d) %w on %s: connect with fieldtip init to fetch a new one", b.Version, crypto.ErrExpired, b.Expires.Format(time.RFC3339))
	}
	return b, nil
}
