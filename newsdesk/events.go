package newsdesk

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"

	"filippo.io/age"
	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// writeAttempts is how many times WriteEvent signs an event again over a
// newer checkpoint when the log moved under it.
const writeAttempts = 3

// maxHandoverBody keeps a handover event's plaintext under the 16 MiB body
// limit, with room for its framing.
const maxHandoverBody = 12 << 20

// WriteEvent logs an editorial event: it syncs the log (SyncLog), seals
// body to the editors of the bundle in force, signs the event over the
// checkpoint it verified, and posts it. It returns the event's index only
// once the server's answer, a C2SP tlog-proof, verifies with the log key:
// the event is in a signed checkpoint. When the log moved or the bundle
// changed in between, it syncs and signs again.
func (c *Cache) WriteEvent(ctx context.Context, server string, key *crypto.EditorKey, body *audit.EventBody, opts SyncOptions) (int64, error) {
	var last error
	for range writeAttempts {
		v, err := c.SyncLog(ctx, server, key, opts)
		if err != nil {
			return 0, err
		}
		index, err := postEvent(ctx, server, v, key, body)
		var pe *protocol.Error
		if errors.As(err, &pe) && (pe.Code == protocol.CodeConflict || pe.Code == protocol.CodeStaleBundle) {
			last = err
			continue
		}
		return index, err
	}
	return 0, fmt.Errorf("the log kept moving: %w", last)
}

func postEvent(ctx context.Context, server string, v *LogView, key *crypto.EditorKey, body *audit.EventBody) (int64, error) {
	sealed, err := audit.SealEventBody(body, v.Bundle)
	if err != nil {
		return 0, err
	}
	ev, err := sealed.Event(crypto.Day(time.Now()), v.Tree)
	if err != nil {
		return 0, err
	}
	signer, err := key.Signer()
	if err != nil {
		return 0, err
	}
	entry, err := audit.SignEvent(ev, signer)
	if err != nil {
		return 0, err
	}
	req := binary.BigEndian.AppendUint16(nil, uint16(len(entry)))
	req = append(append(req, entry...), sealed.Ciphertext...)
	r, err := Login(ctx, server, key)
	if err != nil {
		return 0, err
	}
	proof, err := r.raw(ctx, http.MethodPost, protocol.PathEvent, req, maxCheckpoint+64*64)
	if err != nil {
		return 0, fmt.Errorf("log the event: %w", err)
	}
	logV, err := note.NewVerifier(v.Bundle.Log)
	if err != nil {
		return 0, err
	}
	policy := torchwood.ThresholdPolicy(2, torchwood.OriginPolicy(logV.Name()), torchwood.SingleVerifierPolicy(logV))
	if err := torchwood.VerifyProof(policy, tlog.RecordHash(entry), proof); err != nil {
		return 0, fmt.Errorf("the server acknowledged the event with a proof that does not verify: %w", err)
	}
	return proofIndex(proof)
}

// proofIndex returns the index a verified tlog-proof names.
func proofIndex(proof []byte) (int64, error) {
	lines := strings.SplitN(string(proof), "\n", 3)
	if len(lines) < 3 {
		return 0, errors.New("malformed tlog proof")
	}
	s, ok := strings.CutPrefix(lines[1], "index ")
	if !ok {
		return 0, errors.New("malformed tlog proof: no index line")
	}
	return strconv.ParseInt(s, 10, 64)
}

// Triage logs a triage of a tip: its status, its whole tag set and an
// optional note (private parts only). It then tells the server whether the
// tip is now rejected or spam, for the operator's retention purge.
func (c *Cache) Triage(ctx context.Context, server string, key *crypto.EditorKey, tip string, status audit.Status, tags []string, text string, opts SyncOptions) (int64, error) {
	id, err := crypto.ParseTipID(tip)
	if err != nil {
		return 0, err
	}
	if !audit.ValidStatus(status) {
		return 0, fmt.Errorf("status %q is not one of new, reviewing, useful, spam, rejected", status)
	}
	index, err := c.WriteEvent(ctx, server, key, &audit.EventBody{Kind: audit.KindTriage, Tip: id, Status: status, Tags: tags, Text: text}, opts)
	if err != nil {
		return 0, err
	}
	mark := protocol.TipMark{Event: index, Rejected: status == audit.StatusRejected || status == audit.StatusSpam}
	if err := tipAction(ctx, server, key, tip, protocol.PathTipMarkSuffix, mark, nil); err != nil {
		return index, fmt.Errorf("triage logged as event %d, but the server's mark: %w", index, err)
	}
	return index, nil
}

// Note logs a note on a tip (a private part only).
func (c *Cache) Note(ctx context.Context, server string, key *crypto.EditorKey, tip, text string, opts SyncOptions) (int64, error) {
	id, err := crypto.ParseTipID(tip)
	if err != nil {
		return 0, err
	}
	return c.WriteEvent(ctx, server, key, &audit.EventBody{Kind: audit.KindNote, Tip: id, Text: text}, opts)
}

// ErrDeletePolicy: only a tip triaged rejected or spam can be deleted.
var ErrDeletePolicy = errors.New("only a tip whose status is rejected or spam can be deleted (triage it first)")

// Delete logs the deletion of a tip the editors rejected (or marked as
// spam), then asks the server to remove its ciphertext, and removes it
// from this cache. The log keeps the event's commitments; nothing else of
// the tip remains. pending is true when the server keeps the ciphertext
// until the tip's receipts root is logged (the end of its period).
func (c *Cache) Delete(ctx context.Context, server string, key *crypto.EditorKey, tip string, opts SyncOptions) (index int64, pending bool, err error) {
	id, err := crypto.ParseTipID(tip)
	if err != nil {
		return 0, false, err
	}
	cached, err := c.Find(tip)
	if err != nil {
		return 0, false, err
	}
	v, err := c.SyncLog(ctx, server, key, opts)
	if err != nil {
		return 0, false, err
	}
	ed, err := Replay(v, key)
	if err != nil {
		return 0, false, err
	}
	ts := ed.State.Tip(id)
	switch {
	case ts != nil && ts.Deleted:
		return 0, false, fmt.Errorf("tip %s is deleted already", tip)
	case ts == nil || (ts.Status != audit.StatusRejected && ts.Status != audit.StatusSpam):
		return 0, false, ErrDeletePolicy
	}
	index, err = c.WriteEvent(ctx, server, key, &audit.EventBody{Kind: audit.KindDelete, Tip: id, Ciphertext: cached.Receipt.SHA256}, opts)
	if err != nil {
		return 0, false, err
	}
	var answer protocol.TipDeleted
	if err := tipAction(ctx, server, key, tip, protocol.PathTipDeleteSuffix, protocol.TipDelete{Event: index}, &answer); err != nil {
		return index, false, fmt.Errorf("deletion logged as event %d, but the server: %w", index, err)
	}
	if err := cached.remove(); err != nil {
		return index, answer.Pending, err
	}
	return index, answer.Pending, nil
}

// Handover re-encrypts to the editor labelled to every earlier event body
// this editor can read and that to cannot, and logs them as handover
// events (several when they would not fit one body). It returns the
// indexes of the events logged; none when there is nothing to hand over.
func (c *Cache) Handover(ctx context.Context, server string, key *crypto.EditorKey, to string, opts SyncOptions) ([]int64, error) {
	v, err := c.SyncLog(ctx, server, key, opts)
	if err != nil {
		return nil, err
	}
	var recipient age.Recipient
	for _, e := range v.Bundle.Editors {
		if e.Label == to && !slices.Contains(v.Bundle.Revoked, to) {
			if recipient, err = crypto.ParseRecipient(e.Recipient); err != nil {
				return nil, err
			}
		}
	}
	if recipient == nil || to == key.Label {
		return nil, fmt.Errorf("%q is not another editor of the bundle in force (version %d)", to, v.Bundle.Version)
	}
	ed, err := Replay(v, key)
	if err != nil {
		return nil, err
	}
	// Bodies already sealed to them (bundles that list them) or handed
	// over to them before need nothing.
	done := map[int64]bool{}
	for _, o := range ed.Events {
		if o.Body.Kind == audit.KindHandover && o.Body.To == to {
			for _, h := range o.Body.Bodies {
				done[h.Index] = true
			}
		}
		if b := v.BundleAt(o.Index); b != nil && b.Editor(to) != nil {
			done[o.Index] = true
		}
	}
	var batches [][]audit.HandedOver
	var cur []audit.HandedOver
	size := 0
	for _, o := range ed.Events {
		if done[o.Index] {
			continue
		}
		ct, err := v.Body(o.Index)
		if err != nil {
			return nil, err
		}
		h, err := audit.HandOver(ct, o.Event, o.Index, key.Identity, recipient)
		if err != nil {
			return nil, fmt.Errorf("hand over event %d: %w", o.Index, err)
		}
		if size+len(h.Ciphertext)*4/3+64 > maxHandoverBody && len(cur) > 0 {
			batches, cur, size = append(batches, cur), nil, 0
		}
		cur, size = append(cur, h), size+len(h.Ciphertext)*4/3+64
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	var out []int64
	for _, b := range batches {
		i, err := c.WriteEvent(ctx, server, key, &audit.EventBody{Kind: audit.KindHandover, To: to, Bodies: b}, opts)
		if err != nil {
			return out, err
		}
		out = append(out, i)
	}
	return out, nil
}

// tipAction posts a delete or mark request for tip and decodes the
// answer into v (when not nil).
func tipAction(ctx context.Context, server string, key *crypto.EditorKey, tip, suffix string, req, v any) error {
	r, err := Login(ctx, server, key)
	if err != nil {
		return err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	b, err := r.raw(ctx, http.MethodPost, protocol.TipActionPath(tip, suffix), body, protocol.MaxEditorResponse)
	if err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	return protocol.DecodeJSON(bytes.NewReader(b), protocol.MaxEditorResponse, v)
}
