package newsdesk

// Tips handed over to an editor a later bundle added (issue 10; docs/log.md,
// "Tips handed over"; docs/audit.md, "Parts": the handover's tips): a
// separate addition to the Session, hooked into Handover (the giving
// side), Sync (fetching), and the tip index and OpenTip (opening).
//
// The giver decrypts each tip the new editor's key was not a recipient
// of, re-encrypts the same padded plaintext with age to that editor
// alone, stores it with the server (PUT), then logs a handover event
// naming, for each tip, the SHA-256 of its ciphertext and of the
// re-encryption. The new editor's sync fetches each re-encryption the
// log names for them (GET) and keeps it in the cache, as ciphertext,
// beside the tip; it is opened only when its hash and length are the
// event's, and the event's ciphertext hash is the tip's receipt's, each
// time it is opened.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"
	"fieldtip/protocol"

	"filippo.io/age"
)

// handedOverDir is the cache folder of tips handed over to this editor:
// <id>.age, each an age file to this editor's key.
const handedOverDir = "handed-over"

// maxHandoverTips bounds the tips of one handover event: at most some
// 250 bytes of JSON each, well within the 16 MiB body limit.
const maxHandoverTips = 20000

// bundlesByVersion returns the bundles the verified log holds, by version.
func bundlesByVersion(v *LogView) map[int64]*crypto.Bundle {
	out := map[int64]*crypto.Bundle{}
	prefix := []byte(crypto.BundleHeader + "\n")
	for i, e := range v.Entries {
		if bytes.HasPrefix(e, prefix) {
			if b := v.BundleAt(int64(i) + 1); b != nil {
				out[b.Version] = b
			}
		}
	}
	return out
}

// handOverTips re-encrypts to the editor labelled to (whose age
// recipient is recipient, toKey its text) every cached tip this key opens
// and to's key was not a recipient of, and that was not handed over to
// that key before; it stores each with the server and returns them, for
// the handover events to name (handoverEvents), sorted by tip id. The
// caller holds s.mu and has refreshed the log.
func (s *Session) handOverTips(ctx context.Context, to, toKey string, recipient age.Recipient) ([]audit.HandedOverTip, error) {
	v := s.view
	// The tips that arrived since the cache last pulled are handed over
	// too.
	s.tips.loaded = false
	if _, err := s.pull(ctx, s.currentBundle()); err != nil {
		return nil, err
	}
	if err := s.loadTips(); err != nil {
		return nil, err
	}
	// Which bundle each tip was sealed to, as the server recorded it: a
	// tip sealed to a bundle listing to's present key needs nothing.
	versions := map[string]int64{}
	var after int64
	for {
		var page []protocol.TipInfo
		if err := s.call(ctx, func(r *Remote) (err error) {
			page, err = r.ListTips(ctx, after, protocol.MaxTipList)
			return err
		}); err != nil {
			return nil, fmt.Errorf("list tips: %w", err)
		}
		for _, t := range page {
			versions[t.ID] = t.BundleVersion
			after = t.Seq
		}
		if len(page) < protocol.MaxTipList {
			break
		}
	}
	bundles := bundlesByVersion(v)
	done := map[[crypto.TipIDSize]byte]bool{}
	for _, h := range s.replay.state.Handovers() {
		if h.To != to {
			continue
		}
		if b := v.BundleAt(h.Index); b != nil && b.Editor(to) != nil && b.Editor(to).Recipient == toKey {
			for _, t := range h.Tips {
				done[t.Tip] = true
			}
		}
	}
	var tips []audit.HandedOverTip
	for i := range s.tips.entries {
		e := &s.tips.entries[i]
		if done[e.Receipt.TipID] {
			continue
		}
		if b := bundles[versions[e.ID]]; b != nil && b.Editor(to) != nil && b.Editor(to).Recipient == toKey {
			continue
		}
		if ts := s.replay.state.Tip(e.Receipt.TipID); ts != nil && ts.Deleted {
			continue
		}
		ct, err := e.ciphertext()
		if err != nil {
			return nil, err
		}
		if sha256.Sum256(ct) != e.Receipt.SHA256 {
			return nil, fmt.Errorf("tip %s: %w", e.ID, ErrChecksum)
		}
		sealed, err := reseal(ct, s.ident, recipient)
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			continue // not ours to hand over: another editor can
		}
		if err != nil {
			return nil, fmt.Errorf("hand over tip %s: %w", e.ID, err)
		}
		if err := s.call(ctx, func(r *Remote) error {
			_, err := r.raw(ctx, "PUT", protocol.TipHandoverPath(e.ID, to), sealed, protocol.MaxEditorResponse)
			return err
		}); err != nil {
			return nil, fmt.Errorf("hand over tip %s: %w", e.ID, err)
		}
		tips = append(tips, audit.HandedOverTip{Tip: e.Receipt.TipID, Ciphertext: e.Receipt.SHA256, Sealed: sha256.Sum256(sealed), Length: int64(len(sealed))})
	}
	slices.SortFunc(tips, func(a, b audit.HandedOverTip) int { return bytes.Compare(a.Tip[:], b.Tip[:]) })
	return tips, nil
}

// handoverTipBytes bounds the JSON of one tip in a handover's private
// part (some 200 bytes).
const handoverTipBytes = 256

// handoverEvents returns the handover events for the batches of bodies
// (the last of lastSize bytes) and the tips: the tips go into the last
// event of bodies as far as it has room, the rest into events of their
// own, maxHandoverTips at most each.
func handoverEvents(to string, batches [][]audit.HandedOver, lastSize int, tips []audit.HandedOverTip) []*audit.EventBody {
	var out []*audit.EventBody
	for _, b := range batches {
		out = append(out, &audit.EventBody{Kind: audit.KindHandover, To: to, Bodies: b})
	}
	if len(out) > 0 && len(tips) > 0 {
		if n := min((maxHandoverBatch-lastSize)/handoverTipBytes, len(tips), maxHandoverTips); n > 0 {
			out[len(out)-1].Tips, tips = tips[:n], tips[n:]
		}
	}
	for len(tips) > 0 {
		n := min(len(tips), maxHandoverTips)
		out = append(out, &audit.EventBody{Kind: audit.KindHandover, To: to, Tips: tips[:n]})
		tips = tips[n:]
	}
	return out
}

// reseal decrypts an age file with id and encrypts the same plaintext to
// to alone.
func reseal(ct []byte, id age.Identity, to age.Recipient) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(ct), id)
	if err != nil {
		return nil, err
	}
	plain, err := io.ReadAll(io.LimitReader(r, crypto.MaxTipSize+1))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	w, err := age.Encrypt(&out, to)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	clear(plain)
	return out.Bytes(), nil
}

// handedOverToMe returns, by tip id, the latest handover of each tip to
// this editor's present key that the log holds.
func (s *Session) handedOverToMe() map[string]audit.HandedOverTip {
	me := s.key.Label
	out := map[string]audit.HandedOverTip{}
	if s.view == nil {
		return out
	}
	for _, h := range s.replay.state.Handovers() {
		if h.To != me {
			continue
		}
		b := s.view.BundleAt(h.Index)
		if b == nil || b.Editor(me) == nil || b.Editor(me).Recipient != s.key.Public.Recipient {
			continue
		}
		for _, t := range h.Tips {
			out[crypto.FormatTipID(t.Tip)] = t
		}
	}
	return out
}

func (s *Session) handedOverPath(id string) string {
	return filepath.Join(s.cache.Dir, handedOverDir, id+".age")
}

// fetchHandedOver fetches, for each tip handed over to this editor that
// the cache holds, the re-encryption, unless the cache holds it already:
// checked against the event before it is kept. The caller holds s.mu.
func (s *Session) fetchHandedOver(ctx context.Context) error {
	want := s.handedOverToMe()
	if len(want) == 0 {
		return nil
	}
	if err := s.loadTips(); err != nil {
		return err
	}
	for i := range s.tips.entries {
		e := &s.tips.entries[i]
		h, ok := want[e.ID]
		if !ok || h.Ciphertext != e.Receipt.SHA256 {
			continue
		}
		path := s.handedOverPath(e.ID)
		if b, err := readLimited(path, protocol.MaxTipHandover); err == nil && checkHandedOver(b, h) == nil {
			continue
		}
		var ct []byte
		if err := s.call(ctx, func(r *Remote) (err error) {
			ct, err = r.raw(ctx, "GET", protocol.TipHandoverPath(e.ID, ""), nil, protocol.MaxTipHandover)
			return err
		}); err != nil {
			return fmt.Errorf("fetch tip %s handed over: %w", e.ID, err)
		}
		if err := checkHandedOver(ct, h); err != nil {
			return fmt.Errorf("tip %s handed over: %w", e.ID, err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		if err := atomicfile.Replace(path, ct, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// ErrHandedOverMismatch: a re-encryption that is not the one the handover
// event names.
var ErrHandedOverMismatch = errors.New("the tip handed over is not the one the handover event names (changed on the server or on disk)")

func checkHandedOver(ct []byte, h audit.HandedOverTip) error {
	if int64(len(ct)) != h.Length || sha256.Sum256(ct) != h.Sealed {
		return ErrHandedOverMismatch
	}
	return nil
}

// openHandedOver opens the re-encryption of a tip handed over to this
// editor, checked against the handover event and the tip's receipt. It
// returns the *age.NoIdentityMatchError of the original when there is
// none. The caller holds s.mu.
func (s *Session) openHandedOver(e *Entry, orig error) (*crypto.Tip, error) {
	h, ok := s.handedOverToMe()[e.ID]
	if !ok {
		return nil, orig
	}
	if h.Ciphertext != e.Receipt.SHA256 {
		return nil, fmt.Errorf("tip %s: the handover event names another ciphertext than its receipt", e.ID)
	}
	ct, err := readLimited(s.handedOverPath(e.ID), protocol.MaxTipHandover)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, orig
	}
	if err != nil {
		return nil, err
	}
	if err := checkHandedOver(ct, h); err != nil {
		return nil, fmt.Errorf("tip %s: %w", e.ID, err)
	}
	return crypto.Open(ct, s.ident)
}

// summarizeHandedOver summarizes the tips whose summary says they were not
// sealed to this key but that were handed over to it. The caller holds
// s.mu.
func (s *Session) summarizeHandedOver() {
	want := s.handedOverToMe()
	if len(want) == 0 {
		return
	}
	s.tips.mu.Lock()
	defer s.tips.mu.Unlock()
	for i := range s.tips.entries {
		e := &s.tips.entries[i]
		sum, ok := s.tips.sums[e.ID]
		if _, handed := want[e.ID]; !handed || !ok || sum.Unreadable != UnreadableNotSealed {
			continue
		}
		t, err := s.openHandedOver(e, nil)
		if err != nil || t == nil {
			continue
		}
		sum.Unreadable = ""
		sum.FirstLine, sum.TextBytes = FirstLine(t.Text, FirstLineRunes), len(t.Text)
		sum.Attachments = []AttachmentInfo{}
		for _, a := range t.Attachments {
			sum.Attachments = append(sum.Attachments, AttachmentInfo{Name: a.Name, Type: a.Type, Size: len(a.Data)})
		}
		s.tips.sums[e.ID] = sum
		s.tips.dirty = true
	}
}

// removeHandedOver removes the re-encryptions of tips no longer cached.
func (s *Session) removeHandedOver(ids []string) {
	for _, id := range ids {
		if !strings.ContainsAny(id, `/\`) {
			os.Remove(s.handedOverPath(id))
		}
	}
}
