package newsdesk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"
	"fieldtip/protocol"
)

// tipFetchers is how many tips a pull fetches at once: the round trips
// overlap, on the session's one client (which keeps that many
// connections open). What they hold is bounded by the batch
// (maxPackBytes), not by their number.
const tipFetchers = 32

// pull copies the tips after the cache's cursor (Pull): a page of the
// server's list at a time, each receipt verified against the bundle's log
// key and matched with the listing; then, in batches of at most
// maxPackBytes, the ciphertexts, fetched tipFetchers at a time and each
// checked against its receipt, written as one pack (one file, synced
// once), then the cursor. While a batch is fetched, the one before is
// decrypted in memory, on every core, for the inbox (index). It returns
// the ids pulled, in arrival order.
func (s *Session) pull(ctx context.Context, b *crypto.Bundle) (ids []string, err error) {
	c := s.cache
	if err := os.MkdirAll(filepath.Join(c.Dir, "tips"), 0o700); err != nil {
		return nil, err
	}
	if err := s.loadTips(); err != nil {
		return nil, err
	}
	cursor, err := c.cursor()
	if err != nil {
		return nil, err
	}
	// A pack written before a crash that lost its cursor: its tips are
	// here.
	if n := len(s.tips.entries); n > 0 {
		cursor = max(cursor, s.tips.entries[n-1].Seq)
	}
	idx := s.newIndexer()
	defer func() {
		if werr := idx.wait(); err == nil {
			err = werr
		}
	}()
	for {
		var tips []protocol.TipInfo
		if err := s.call(ctx, func(r *Remote) (err error) {
			tips, err = r.ListTips(ctx, cursor, protocol.MaxTipList)
			return err
		}); err != nil {
			return ids, err
		}
		if len(tips) == 0 {
			return ids, nil
		}
		receipts, err := checkListing(tips, cursor, b)
		if err != nil {
			return ids, err
		}
		for start := 0; start < len(tips); {
			end, size := start, int64(0)
			for end < len(tips) && (end == start || size+tips[end].Length <= maxPackBytes) {
				size += tips[end].Length
				end++
			}
			recs, err := s.fetchTips(ctx, tips[start:end])
			if err != nil {
				return ids, err
			}
			p, offs, err := writePack(c.Dir, recs)
			if err != nil {
				return ids, err
			}
			cursor = tips[end-1].Seq
			if err := atomicfile.Replace(filepath.Join(c.Dir, "cursor"), []byte(strconv.FormatInt(cursor, 10)+"\n"), 0o600); err != nil {
				return ids, err
			}
			es := make([]Entry, len(recs))
			for k, r := range recs {
				es[k] = Entry{Seq: r.Seq, ID: r.ID, Receipt: receipts[start+k], pack: p, off: offs[k], n: int64(len(r.Ciphertext))}
			}
			s.tips.entries = append(s.tips.entries, es...)
			for _, r := range recs {
				ids = append(ids, r.ID)
				if s.cfg.Pulled != nil {
					s.cfg.Pulled(r.ID)
				}
			}
			if err := idx.add(es, recs); err != nil {
				return ids, err
			}
			start = end
		}
	}
}

// checkListing checks a page of the server's list: in order after cursor,
// each receipt verified with the bundle's log key (on every core) and
// saying what the listing says. It returns the receipts.
func checkListing(tips []protocol.TipInfo, cursor int64, b *crypto.Bundle) ([]*crypto.Receipt, error) {
	for _, t := range tips {
		if t.Seq <= cursor {
			return nil, fmt.Errorf("server listed tip %d after cursor %d: out of order", t.Seq, cursor)
		}
		cursor = t.Seq
	}
	out := make([]*crypto.Receipt, len(tips))
	errs := make([]error, len(tips))
	parallel(len(tips), func(k int) {
		t := tips[k]
		rc, err := crypto.OpenReceipt([]byte(t.Receipt), b.Log)
		switch {
		case err != nil:
			errs[k] = fmt.Errorf("tip %s: %w", t.ID, err)
		case rc.TipIDString() != t.ID || hex.EncodeToString(rc.SHA256[:]) != t.SHA256 || rc.Length != t.Length || rc.Day != t.Day:
			errs[k] = fmt.Errorf("tip %s: the server's listing does not match the signed receipt", t.ID)
		}
		out[k] = rc
	})
	for _, err := range errs {
		if err != nil {
			return nil, err // the first in the list's order
		}
	}
	return out, nil
}

// fetchTips fetches the ciphertexts of tips (their receipts checked),
// tipFetchers at a time, and checks each against its receipt's hash and
// length. On an error it returns the first, once every fetch stopped.
func (s *Session) fetchTips(ctx context.Context, tips []protocol.TipInfo) ([]packRecord, error) {
	recs := make([]packRecord, len(tips))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(tipFetchers, len(tips)) {
		wg.Go(func() {
			for k := range next {
				t := tips[k]
				var ct []byte
				err := s.call(ctx, func(r *Remote) (err error) {
					ct, err = r.FetchTip(ctx, t.ID)
					return err
				})
				if err == nil && (int64(len(ct)) != t.Length || hex.EncodeToString(sumOf(ct)) != t.SHA256) {
					err = fmt.Errorf("tip %s: %w", t.ID, ErrChecksum)
				}
				if err != nil {
					cancel(err) // the first error is the cause
					continue
				}
				recs[k] = packRecord{Seq: t.Seq, ID: t.ID, Receipt: []byte(t.Receipt), Ciphertext: ct}
			}
		})
	}
feed:
	for k := range tips {
		select {
		case next <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return recs, nil
}

func sumOf(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// indexer decrypts the tips of one batch in the background, on every
// core, while the next batch is fetched.
type indexer struct {
	s    *Session
	done chan error
}

func (s *Session) newIndexer() *indexer { return &indexer{s: s} }

// add waits for the batch before, then starts summarizing this one from
// the ciphertexts in memory.
func (x *indexer) add(es []Entry, recs []packRecord) error {
	if err := x.wait(); err != nil {
		return err
	}
	x.done = make(chan error, 1)
	go func() {
		sums := make([]TipSummary, len(es))
		parallel(len(es), func(k int) { sums[k] = summarizeBytes(&es[k], recs[k].Ciphertext, x.s.ident) })
		x.done <- x.s.tips.addSummaries(sums)
	}()
	return nil
}

// wait waits for the batch being summarized, if any.
func (x *indexer) wait() error {
	if x.done == nil {
		return nil
	}
	err := <-x.done
	x.done = nil
	return err
}
