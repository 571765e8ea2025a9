package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"fieldtip/crypto"
	"fieldtip/storage"
)

// seeds hands out the signed proof-of-work seed of each epoch. There is
// one seed per epoch, stored once and handed to every source unchanged
// (FIELD.md: a seed handed to one session only would be a tracking cookie
// linking that source's next upload to this one); clients refuse a second
// seed for an epoch they know.
type seeds struct {
	mu    sync.Mutex
	known map[int64]*epochSeed
}

type epochSeed struct {
	seed   *crypto.PoWSeed
	signed []byte
}

// currentSeed returns the seed of the epoch of s.now(), creating and storing it
// if this is the epoch's first use.
func (s *Server) currentSeed(ctx context.Context) (*epochSeed, error) {
	epoch := crypto.EpochAt(s.now(), s.epochSeconds())
	if es, err := s.seedOf(ctx, epoch); !errors.Is(err, storage.ErrNotFound) {
		return es, err
	}
	ps := &crypto.PoWSeed{Epoch: epoch, EpochSeconds: s.epochSeconds(), Params: s.cfg.PoWParams}
	if _, err := rand.Read(ps.Seed[:]); err != nil {
		return nil, fmt.Errorf("pow seed: %w", err)
	}
	signed, err := crypto.SignPoWSeed(ps, s.logKey.Signer)
	if err != nil {
		return nil, fmt.Errorf("pow seed: %w", err)
	}
	// Two sessions may race to create the epoch's seed; the store keeps
	// the first, and both hand out whatever it kept.
	if err := s.store.PutPoWSeed(ctx, epoch, signed); err != nil && !errors.Is(err, storage.ErrDuplicate) {
		return nil, fmt.Errorf("pow seed: %w", err)
	}
	return s.seedOf(ctx, epoch)
}

// seedOf returns the stored seed of an epoch, or storage.ErrNotFound.
func (s *Server) seedOf(ctx context.Context, epoch int64) (*epochSeed, error) {
	s.seeds.mu.Lock()
	defer s.seeds.mu.Unlock()
	if es, ok := s.seeds.known[epoch]; ok {
		return es, nil
	}
	signed, err := s.store.PoWSeed(ctx, epoch)
	if err != nil {
		return nil, err
	}
	ps, err := crypto.OpenPoWSeed(signed, s.logKey.Verifier)
	if err != nil {
		return nil, fmt.Errorf("stored pow seed of epoch %d: %w", epoch, err)
	}
	if s.seeds.known == nil {
		s.seeds.known = map[int64]*epochSeed{}
	}
	// Only the current and previous epochs are ever asked for; forget the
	// rest so the map stays small on a long-running server.
	for e := range s.seeds.known {
		if e < epoch-1 {
			delete(s.seeds.known, e)
		}
	}
	es := &epochSeed{seed: ps, signed: signed}
	s.seeds.known[epoch] = es
	return es, nil
}

func (s *Server) epochSeconds() int64 { return int64(s.cfg.PoWEpoch.Seconds()) }
