package newsdesk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"fieldtip/audit"
	"fieldtip/internal/atomicfile"
	"fieldtip/protocol"
)

// checkReceipts checks every receipts tree in the log against the tips
// the cache pulled (docs/audit.md, "Receipts tree"): each pulled tip of a
// period must be a leaf of its tree, unless a delete event logged it as
// deleted (a tip deleted before its period's root is no leaf), and each
// leaf must be a pulled tip, a tip an event names (one deleted before this
// editor pulled it), or a dummy. A period whose root comes before a bundle
// listing this editor (one added later) is skipped; a period key that the
// editor of the bundle in force at the root cannot open is an error.
//
// An editor added later cannot open the events logged before it was in
// the bundle until another editor hands them over (newsdesk handover):
// a tip deleted before this editor's first pull, whose deletion is one of
// those events, is a leaf it cannot name. Leaves it cannot name are then
// accepted as long as there are no more of them than events it cannot
// open (each names at most one tip), with a note saying so: every pulled
// tip is still checked to be a leaf, and the other editors check the
// rest. More of them than that is the server's fault, said in one line.
// It returns the notes, one line each, for the session's warnings.
func (s *Session) checkReceipts(ctx context.Context) ([]string, error) {
	c, v, key := s.cache, s.view, s.key
	var roots []int64
	for i, e := range v.Entries {
		if strings.HasPrefix(string(e), audit.ReceiptsHeader+"\n") {
			roots = append(roots, int64(i))
		}
	}
	if len(roots) == 0 {
		return nil, nil
	}
	if err := s.loadTips(); err != nil {
		return nil, err
	}
	pulled := s.tips.entries
	named, deleted := namedTips(s.replay.openedList)
	unreadable := len(s.replay.editorial().Unreadable)
	var notes []string
	for _, i := range roots {
		root, err := audit.OpenReceiptsRoot(v.Entries[i], v.BundleAt(i).Log)
		if err != nil {
			return nil, fmt.Errorf("receipts root at entry %d: %w", i, err)
		}
		sealed, tree, err := c.receiptsPeriod(ctx, s.hc, s.url.Origin, v, i, root)
		if err != nil {
			return nil, err
		}
		k, err := audit.OpenPeriodKey(sealed, root, key.Identity)
		if err != nil {
			if b := v.BundleAt(i); b.Editor(key.Label) == nil || slices.Contains(b.Revoked, key.Label) {
				continue // not sealed to this editor: added after the period
			}
			// Skipping it would let a server that seals the key to
			// nobody escape every editor's check.
			return nil, fmt.Errorf("receipts of %s to %s (entry %d): the bundle in force (version %d) lists %s, but the period key does not open with its key: %w",
				root.Period.First, root.Period.Last, i, v.BundleAt(i).Version, key.Label, err)
		}
		var check [][32]byte
		mine := map[[32]byte]bool{}
		for _, p := range pulled {
			if root.Period.Contains(p.Receipt.Day) {
				check = append(check, p.Receipt.SHA256)
				mine[p.Receipt.SHA256] = true
			}
		}
		for h := range named {
			if !mine[h] {
				check = append(check, h)
			}
		}
		err = audit.CheckReceipts(k, root, tree, check)
		var me *audit.ReceiptsMismatchError
		if !errors.As(err, &me) {
			if err != nil {
				return nil, fmt.Errorf("receipts of %s to %s (entry %d): %w", root.Period.First, root.Period.Last, i, err)
			}
			continue
		}
		// Tips that are not the editor's own pulls of this period, and
		// tips deleted (perhaps before the root), need not be leaves.
		var missing []string
		for _, h := range me.Missing {
			if mine[h] && !deleted[h] {
				missing = append(missing, tipOf(pulled, h))
			}
		}
		period := fmt.Sprintf("receipts of %s to %s (entry %d)", root.Period.First, root.Period.Last, i)
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s: the server gave receipts it did not keep: %d pulled tip(s) are not in its receipts tree: %s",
				period, len(missing), strings.Join(missing, ", "))
		}
		switch foreign := len(me.Foreign); {
		case foreign == 0:
		case foreign <= unreadable:
			notes = append(notes, fmt.Sprintf("%s: %d leaf (leaves) are tips %s never pulled, and %d event(s) logged before %s was in the bundle are not handed over yet (a deletion among them names such a tip): "+
				"checked only that the tips %s pulled are leaves; once another editor runs newsdesk handover --to %s, sync checks the rest",
				period, foreign, key.Label, unreadable, key.Label, key.Label, key.Label))
		default:
			return nil, fmt.Errorf("%s: %d leaf (leaves) are tips %s never got, and no event %s can read names them as deleted: the server kept receipts of tips it did not hand over",
				period, foreign, key.Label, key.Label)
		}
	}
	return notes, nil
}

func tipOf(pulled []Entry, h [32]byte) string {
	for _, p := range pulled {
		if p.Receipt.SHA256 == h {
			return p.ID
		}
	}
	return fmt.Sprintf("%x", h[:8])
}

// receiptsPeriod returns a period's sealed key and tree, from the replica
// or else from the server, checked against the root.
func (c *Cache) receiptsPeriod(ctx context.Context, hc *http.Client, origin string, v *LogView, i int64, root *audit.ReceiptsRoot) ([]byte, *audit.ReceiptsTree, error) {
	path := filepath.Join(v.Replica, replicaReceipts, strconv.FormatInt(i, 10))
	b, err := os.ReadFile(path)
	fetched := false
	if err != nil {
		if b, err = get(ctx, hc, origin+protocol.PathReceipts+strconv.FormatInt(i, 10), maxReceiptsAnswer); err != nil {
			return nil, nil, fmt.Errorf("receipts of entry %d: %w", i, err)
		}
		fetched = true
	}
	var p protocol.ReceiptsPeriod
	if err := protocol.DecodeJSON(bytes.NewReader(b), maxReceiptsAnswer, &p); err != nil {
		return nil, nil, fmt.Errorf("receipts of entry %d: %w", i, err)
	}
	if sha256.Sum256(p.SealedKey) != root.Key {
		return nil, nil, fmt.Errorf("receipts of entry %d: the sealed period key is not the one the root names", i)
	}
	if len(p.Leaves)%32 != 0 || int64(len(p.Leaves)/32) != root.Size {
		return nil, nil, fmt.Errorf("receipts of entry %d: %d bytes of leaves for a tree of %d", i, len(p.Leaves), root.Size)
	}
	leaves := make([]audit.Leaf, root.Size)
	for j := range leaves {
		copy(leaves[j][:], p.Leaves[32*j:])
	}
	tree, err := audit.NewReceiptsTree(leaves)
	if err != nil {
		return nil, nil, fmt.Errorf("receipts of entry %d: %w", i, err)
	}
	if tree.Root() != root.Root {
		return nil, nil, fmt.Errorf("receipts of entry %d: the leaves do not make the logged root", i)
	}
	if fetched {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, nil, err
		}
		if err := atomicfile.Replace(path, b, 0o600); err != nil {
			return nil, nil, err
		}
	}
	return p.SealedKey, tree, nil
}

// namedTips returns the ciphertext hashes of the tips the opened events
// name, and of those deleted.
func namedTips(events []OpenedEvent) (named, deleted map[[32]byte]bool) {
	named, deleted = map[[32]byte]bool{}, map[[32]byte]bool{}
	for _, ob := range events {
		if h, ok := tipHash(ob.Body); ok {
			named[h] = true
			if ob.Body.Kind == audit.KindDelete {
				deleted[h] = true
			}
		}
	}
	return named, deleted
}
