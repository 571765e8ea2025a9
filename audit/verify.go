package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"fieldtip/crypto"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// EntryReader reads log entries: storage on the server, a replica or the
// tile client on an editor's or auditor's machine, a slice in tests.
type EntryReader interface {
	// ReadEntries returns the entries with indexes start to end−1, in
	// order: exactly end−start of them, or an error.
	ReadEntries(ctx context.Context, start, end int64) ([][]byte, error)
}

// readBatch is how many entries the verifier asks for at once: one tile's
// worth (tlog-tiles, 256 entries).
const readBatch = 256

// EntryError is a log entry that breaks a rule of the log. Err says which
// (errors.Is with the sentinels of docs/audit.md, "Audit without a key").
type EntryError struct {
	Index int64
	Err   error
}

func (e *EntryError) Error() string { return fmt.Sprintf("audit: log entry %d: %s", e.Index, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

// Verifier checks a log entry by entry with no decryption key, only the
// pinned newsroom key (docs/audit.md, "Audit without a key"). It keeps
// what later entries are checked against: the stored tree hashes, every
// bundle and the event ids seen. Verify continues from where the last call
// stopped, so a big log is read once, and new entries later.
//
// A Verifier is not safe for concurrent use.
type Verifier struct {
	newsroom string
	size     int64
	// hashes are the tlog stored hashes of the first size entries.
	hashes []tlog.Hash
	// bundles are the bundle entries so far, by index.
	bundles []bundleEntry
	// keys are the verifiers of the bundle in force.
	keys *eventKeys
	log  note.Verifiers
	ids  map[[EventIDSize]byte]int64
	// events are the event entries verified, by index (Event).
	events map[int64]*Event
	// lastPeriod is the last receipts entry's period ("" before one).
	lastPeriod Period
	// err is the first refusal; the log is not verified further.
	err error
	// trustBelow, during VerifyKnownPrefix, is the size of the prefix
	// whose events' signatures an earlier run checked.
	trustBelow int64
}

type bundleEntry struct {
	index  int64
	bundle *crypto.Bundle
}

// NewVerifier returns a verifier of an empty log for the newsroom whose
// verifier key the caller pinned.
func NewVerifier(newsroom string) (*Verifier, error) {
	if _, err := note.NewVerifier(newsroom); err != nil {
		return nil, fmt.Errorf("audit: pinned newsroom key: %w", err)
	}
	return &Verifier{newsroom: newsroom, ids: map[[EventIDSize]byte]int64{}, events: map[int64]*Event{}}, nil
}

// Size returns how many entries have verified.
func (v *Verifier) Size() int64 { return v.size }

// Tree returns the size and root hash of the verified log, for the caller
// to compare with a signed checkpoint.
func (v *Verifier) Tree() tlog.Tree {
	h, err := tlog.TreeHash(v.size, v)
	if err != nil {
		panic(err) // every hash of the tree is stored
	}
	return tlog.Tree{N: v.size, Hash: h}
}

// ReadHashes makes the verified log a tlog.HashReader, for proofs
// (tlog.ProveRecord, tlog.ProveTree) and tree hashes of its prefixes.
func (v *Verifier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	return readHashes(v.hashes, indexes)
}

// BundleAt returns the bundle in force at index, which may be at most
// Size (the next entry's): the last bundle entry before it. It returns nil
// for index 0 or beyond Size.
func (v *Verifier) BundleAt(index int64) *crypto.Bundle {
	if index > v.size {
		return nil
	}
	var b *crypto.Bundle
	for _, be := range v.bundles {
		if be.index >= index {
			break
		}
		b = be.bundle
	}
	return b
}

// Event returns the event entry at index as Verify opened it (its
// signature checked against the bundle in force there, and checked
// against the log before it), or nil if that entry is not an event or
// not verified yet: so that an editor's replay need not open every event
// again.
func (v *Verifier) Event(index int64) *Event { return v.events[index] }

// Verify reads and checks the entries from Size up to end−1, in batches,
// and returns the first *EntryError, if any, after which the verifier
// refuses to continue (the log is bad). An error reading entries is
// returned as it is, and Verify may be called again.
func (v *Verifier) Verify(ctx context.Context, r EntryReader, end int64) error {
	if v.err != nil {
		return v.err
	}
	for v.size < end {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		start := v.size
		stop := min(end, start+readBatch)
		entries, err := r.ReadEntries(ctx, start, stop)
		if err != nil {
			return fmt.Errorf("audit: read entries %d to %d: %w", start, stop-1, err)
		}
		if int64(len(entries)) != stop-start {
			return fmt.Errorf("audit: read entries %d to %d: got %d entries", start, stop-1, len(entries))
		}
		opened := v.openBatch(v.size, entries)
		for j, e := range entries {
			if err := v.apply(v.size, &opened[j]); err != nil {
				v.err = &EntryError{Index: v.size, Err: err}
				return v.err
			}
			hs, err := tlog.StoredHashes(v.size, e, v)
			if err != nil {
				panic(err) // every earlier hash is stored
			}
			v.hashes = append(v.hashes, hs...)
			v.size++
		}
	}
	return nil
}

// openedEntry is an entry whose signature has been checked against the
// keys in force at its index, if the entries before it verify.
type openedEntry struct {
	kind     string
	bundle   *crypto.Bundle
	keys     *eventKeys
	log      note.Verifiers
	event    *Event
	receipts *ReceiptsRoot
	err      error
}

// openBatch checks the signatures and formats of a batch of entries that
// follow the verified log. Bundles are opened first, in order, to know
// the keys in force at each entry; the other entries' signatures, which
// are most of the work, are then checked in parallel. What depends on the
// log before an entry (versions, ids, base checkpoints, periods) is left
// to apply, in order, so the first bad entry is the one reported.
func (v *Verifier) openBatch(start int64, entries [][]byte) []openedEntry {
	out := make([]openedEntry, len(entries))
	keys, log := v.keys, v.log
	var work []int
	for j, e := range entries {
		o := &out[j]
		o.kind = firstLine(e)
		if len(e) > MaxEntrySize {
			o.err = fmt.Errorf("%w: %d bytes, more than %d", crypto.ErrMalformed, len(e), MaxEntrySize)
			continue
		}
		if o.kind != crypto.BundleHeader {
			o.keys, o.log = keys, log
			work = append(work, j)
			continue
		}
		b, err := crypto.OpenBundle(e, v.newsroom)
		if err != nil {
			o.err = err
			continue
		}
		if o.keys, err = newEventKeys(b); err != nil {
			o.err = fmt.Errorf("bundle: %w", err)
			continue
		}
		lv, err := b.LogVerifier()
		if err != nil {
			o.err = fmt.Errorf("bundle: log key: %w", err)
			continue
		}
		o.bundle, o.log = b, note.VerifierList(lv)
		keys, log = o.keys, o.log
	}
	open := func(j int) {
		o, e := &out[j], entries[j]
		if o.keys == nil {
			// Only after a first entry that is not a verified bundle,
			// which apply reports first.
			o.err = ErrNoBundle
			return
		}
		switch o.kind {
		case EventHeader:
			keys := o.keys
			if start+int64(j) < v.trustBelow {
				keys = &eventKeys{bundle: keys.bundle, verifiers: trustedVerifiers{keys.verifiers}}
			}
			o.event, o.err = openEvent(e, keys)
		case ReceiptsHeader:
			o.receipts, o.err = openReceiptsRoot(e, o.log)
		case PoWSeedHeader:
			// The seed's text is package crypto's format; the log
			// checks who signed it.
			_, o.err = crypto.OpenNote("pow seed", e, o.log)
		default:
			o.err = fmt.Errorf("%w: first line %q", ErrUnknownEntry, clip(o.kind))
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(work)/16)
	if workers < 2 {
		for _, j := range work {
			open(j)
		}
		return out
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for n := next.Add(1) - 1; n < int64(len(work)); n = next.Add(1) - 1 {
				open(work[n])
			}
		})
	}
	wg.Wait()
	return out
}

// apply checks opened entry i against the log before it and, if it
// verifies, records what later entries are checked against.
func (v *Verifier) apply(i int64, o *openedEntry) error {
	if i == 0 && o.kind != crypto.BundleHeader {
		return fmt.Errorf("%w: its first line is %q", ErrNoBundle, clip(o.kind))
	}
	if o.err != nil {
		return o.err
	}
	switch {
	case o.bundle != nil:
		if v.keys != nil && o.bundle.Version <= v.keys.bundle.Version {
			return fmt.Errorf("%w: version %d after version %d", ErrBundleVersion, o.bundle.Version, v.keys.bundle.Version)
		}
		v.keys, v.log = o.keys, o.log
		v.bundles = append(v.bundles, bundleEntry{index: i, bundle: o.bundle})
	case o.event != nil:
		ev := o.event
		if j, seen := v.ids[ev.ID]; seen {
			return fmt.Errorf("%w: event %s is also entry %d", ErrReplayedEvent, ev.IDString(), j)
		}
		if ev.Base.N > i {
			return fmt.Errorf("%w: base of size %d at index %d", ErrNotPrefix, ev.Base.N, i)
		}
		h, err := tlog.TreeHash(ev.Base.N, v)
		if err != nil {
			panic(err) // every hash of the prefix is stored
		}
		if h != ev.Base.Hash {
			return fmt.Errorf("%w: base of size %d has root %s, the log's is %s", ErrNotPrefix, ev.Base.N, ev.Base.Hash, h)
		}
		v.ids[ev.ID] = i
		v.events[i] = ev
	case o.receipts != nil:
		r := o.receipts
		if v.lastPeriod.Last != "" && r.Period.First <= v.lastPeriod.Last {
			return fmt.Errorf("%w: %s to %s after %s to %s", ErrPeriod, r.Period.First, r.Period.Last, v.lastPeriod.First, v.lastPeriod.Last)
		}
		v.lastPeriod = r.Period
	}
	return nil
}

// SliceReader is an EntryReader over entries in memory.
type SliceReader [][]byte

// ReadEntries returns s[start:end].
func (s SliceReader) ReadEntries(_ context.Context, start, end int64) ([][]byte, error) {
	if start < 0 || start > end || end > int64(len(s)) {
		return nil, fmt.Errorf("entries %d to %d of %d", start, end-1, len(s))
	}
	return s[start:end], nil
}

// ErrPrefixMismatch is VerifyKnownPrefix's error when the entries do not
// make the tree the caller verified before: nothing was verified, and the
// caller verifies them in full with Verify.
var ErrPrefixMismatch = errors.New("audit: the entries do not make the tree verified before")

// VerifyKnownPrefix verifies the first known.N entries of a log whose tree
// of that size the caller verified in full before, in an earlier run, and
// kept where only it could write it (newsdesk's sealed index, sealed with
// a key derived from the editor's): it first checks that the entries hash
// to known, then verifies them as Verify does, every check but the events'
// Ed25519 signatures, which the earlier run checked over these very bytes
// (the tree hash commits to them). Events still name a key of the bundle
// in force at their index, in the one canonical form. On
// ErrPrefixMismatch it verified nothing (Size stays 0). The verifier must
// be new; Verify continues after it.
func (v *Verifier) VerifyKnownPrefix(ctx context.Context, r EntryReader, known tlog.Tree) error {
	if v.size != 0 || v.err != nil {
		return errors.New("audit: VerifyKnownPrefix on a verifier that verified entries already")
	}
	if known.N <= 0 {
		return ErrPrefixMismatch
	}
	entries, err := r.ReadEntries(ctx, 0, known.N)
	if err != nil {
		return fmt.Errorf("audit: read entries 0 to %d: %w", known.N-1, err)
	}
	if int64(len(entries)) != known.N {
		return fmt.Errorf("audit: read entries 0 to %d: got %d entries", known.N-1, len(entries))
	}
	var hashes hashSlice
	for i, e := range entries {
		hs, err := tlog.StoredHashes(int64(i), e, hashes)
		if err != nil {
			panic(err) // every earlier hash is stored
		}
		hashes = append(hashes, hs...)
	}
	if h, err := tlog.TreeHash(known.N, hashes); err != nil || h != known.Hash {
		return ErrPrefixMismatch
	}
	v.trustBelow = known.N
	defer func() { v.trustBelow = 0 }()
	return v.Verify(ctx, SliceReader(entries), known.N)
}

// hashSlice is a tlog.HashReader over stored hashes in memory.
type hashSlice []tlog.Hash

func (h hashSlice) ReadHashes(indexes []int64) ([]tlog.Hash, error) { return readHashes(h, indexes) }

// trustedVerifiers finds the keys its Verifiers know, and accepts their
// signatures without checking them: for the events of a prefix verified
// before (VerifyKnownPrefix). A signer it does not know is still refused.
type trustedVerifiers struct{ note.Verifiers }

func (t trustedVerifiers) Verifier(name string, hash uint32) (note.Verifier, error) {
	k, err := t.Verifiers.Verifier(name, hash)
	if err != nil {
		return nil, err
	}
	return trustedVerifier{k}, nil
}

type trustedVerifier struct{ note.Verifier }

func (trustedVerifier) Verify(msg, sig []byte) bool { return true }
