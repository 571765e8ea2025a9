package server

import (
	"bytes"
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
//
// Every seed is in the editorial log (a fieldtip/pow-seed/v1 entry, the
// exact bytes sources get) before any source gets it, and is logged once,
// so anyone can check that all sources of an epoch got the one seed
// (docs/audit.md). The order is: store, log, hand out. A crash or a failed
// append between the first two leaves a seed stored and not logged, which
// nobody has seen: it is logged at the next start (logStoredSeeds) or
// before its first use, whichever comes first. A seed logged and missing
// from the store (a database restored from an older copy and recovered
// from a replica) is stored again from the log, so the epoch keeps the
// seed its sources already have; where the two differ, the logged one is
// handed out.
type seeds struct {
	// mu serializes creating, logging and caching seeds, so that no seed
	// is logged twice. It is held across a log append only while an
	// epoch's seed is new.
	mu sync.Mutex
	// known are the seeds both stored and logged, by epoch: the only ones
	// handed out.
	known map[int64]*epochSeed
	// logged are the seed entries in the log, by epoch (one small entry
	// per epoch of at least a day, so all of them are kept).
	logged map[int64][]byte
}

// attrEpoch is the log attribute of a proof-of-work epoch.
const attrEpoch = "epoch"

type epochSeed struct {
	seed   *crypto.PoWSeed
	signed []byte
}

// loadLoggedSeeds records the seed entries openLog found in the log. The
// log is append-only, so a fault found here cannot be undone and must not
// stop the server for good: a seed entry that does not verify with the
// log key is skipped, and of two seeds for one epoch the first is kept
// (the log shows both to anyone who audits it); each with a warning.
func (s *Server) loadLoggedSeeds(entries [][]byte) {
	s.seeds.mu.Lock()
	defer s.seeds.mu.Unlock()
	s.seeds.logged = map[int64][]byte{}
	for _, e := range entries {
		ps, err := crypto.OpenPoWSeed(e, s.logKey.Verifier)
		if err != nil {
			s.log.Warn("a logged pow seed does not verify with the log key", attrErr, err)
			continue
		}
		if _, dup := s.seeds.logged[ps.Epoch]; dup {
			s.log.Warn("the log holds two pow seeds of one epoch; handing out the first", attrEpoch, ps.Epoch)
			continue
		}
		s.seeds.logged[ps.Epoch] = e
	}
}

// logStoredSeeds logs the stored seeds of the current and previous epochs
// that the log lacks (a crash between storing and logging). Older seeds
// need nothing: a seed is handed out only once it is logged, and sources
// can use only those two epochs' seeds.
func (s *Server) logStoredSeeds(ctx context.Context) error {
	cur := crypto.EpochAt(s.now(), s.epochSeconds())
	for _, epoch := range []int64{cur - 1, cur} {
		if _, err := s.seedOf(ctx, epoch); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	return nil
}

// currentSeed returns the seed of the epoch of s.now(), creating, storing
// and logging it if this is the epoch's first use. It returns only a seed
// that is in the log.
func (s *Server) currentSeed(ctx context.Context) (*epochSeed, error) {
	epoch := crypto.EpochAt(s.now(), s.epochSeconds())
	s.seeds.mu.Lock()
	defer s.seeds.mu.Unlock()
	if es, err := s.seedOfLocked(ctx, epoch); !errors.Is(err, storage.ErrNotFound) {
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
	// The store keeps the first seed of an epoch (one written by an
	// earlier attempt whose outcome was unknown, say); seedOfLocked logs
	// and hands out whatever it kept.
	if err := s.store.PutPoWSeed(ctx, epoch, signed); err != nil && !errors.Is(err, storage.ErrDuplicate) {
		return nil, fmt.Errorf("pow seed: %w", err)
	}
	return s.seedOfLocked(ctx, epoch)
}

// seedOf returns the seed of an epoch, logged, or storage.ErrNotFound if
// the server never made one.
func (s *Server) seedOf(ctx context.Context, epoch int64) (*epochSeed, error) {
	s.seeds.mu.Lock()
	defer s.seeds.mu.Unlock()
	return s.seedOfLocked(ctx, epoch)
}

// seedOfLocked is seedOf; the caller holds s.seeds.mu. The logged seed of
// an epoch wins: it is the one sources got. A stored seed the log lacks is
// logged first; a logged seed the store lacks is stored again; a stored
// seed that differs from the logged one is never handed out.
func (s *Server) seedOfLocked(ctx context.Context, epoch int64) (*epochSeed, error) {
	if es, ok := s.seeds.known[epoch]; ok {
		return es, nil
	}
	logged := s.seeds.logged[epoch]
	signed, err := s.store.PoWSeed(ctx, epoch)
	switch {
	case logged == nil && err != nil:
		return nil, err
	case logged == nil:
		if _, err := crypto.OpenPoWSeed(signed, s.logKey.Verifier); err != nil {
			return nil, fmt.Errorf("stored pow seed of epoch %d: %w", epoch, err)
		}
		if _, _, err := s.appendLog(ctx, signed); err != nil {
			return nil, fmt.Errorf("log pow seed of epoch %d: %w", epoch, err)
		}
		s.seeds.logged[epoch] = signed
	case errors.Is(err, storage.ErrNotFound):
		if err := s.store.PutPoWSeed(ctx, epoch, logged); err != nil && !errors.Is(err, storage.ErrDuplicate) {
			return nil, fmt.Errorf("store the logged pow seed of epoch %d: %w", epoch, err)
		}
		s.log.Warn("pow seed stored again from the log", attrEpoch, epoch)
		signed = logged
	case err != nil:
		return nil, err
	case !bytes.Equal(signed, logged):
		s.log.Warn("the stored pow seed is not the logged one; handing out the logged one", attrEpoch, epoch)
		signed = logged
	}
	ps, err := crypto.OpenPoWSeed(signed, s.logKey.Verifier)
	if err != nil {
		return nil, fmt.Errorf("pow seed of epoch %d: %w", epoch, err)
	}
	if ps.Epoch != epoch {
		return nil, fmt.Errorf("pow seed of epoch %d names epoch %d", epoch, ps.Epoch)
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
