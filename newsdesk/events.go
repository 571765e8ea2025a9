package newsdesk

import (
	"bytes"
	"context"
	"encoding/base64"
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
	"golang.org/x/mod/sumdb/tlog"
)

// writeAttempts is how many times an event is signed, the first time and
// again over a newer checkpoint when the log moved under it or its bundle
// changed (409 conflict or stale_bundle).
const writeAttempts = 3

// maxHandoverBatch bounds the re-encrypted bodies of one handover event
// (their base64 in the JSON private part) so that its plaintext, framed
// and padded, stays under audit.MaxBodySize. A variable so that tests can
// make handovers split without writing 12 MiB.
var maxHandoverBatch = 12 << 20

// maxProof bounds the answer to POST /event: a tlog-proof of at most 64
// hashes and a signed checkpoint.
const maxProof = maxCheckpoint + 64*64

// proofHeader is the first line of a C2SP tlog-proof.
const proofHeader = "c2sp.org/tlog-proof@v1"

// ErrDeletePolicy: only a tip triaged rejected or spam can be deleted.
var ErrDeletePolicy = errors.New("only a tip whose status is rejected or spam can be deleted (triage it first)")

// ErrTipDeleted: the events delete the tip; nothing more can be logged
// about it (docs/audit.md, "Replay").
var ErrTipDeleted = errors.New("the tip is deleted")

// ReplayedError is the server's refusal of an event whose id the log
// holds already (409 replayed): the same signed event sent twice. Index
// is the index the server names (docs/log.md), or -1 when it names none
// (sent twice into one commit). It is unauthenticated until the entry at
// Index is checked.
type ReplayedError struct {
	Index int64
	Err   *protocol.Error
}

func (e *ReplayedError) Error() string {
	if e.Index < 0 {
		return "the event was sent twice: " + e.Err.Error()
	}
	return fmt.Sprintf("the log holds the event already, at index %d: %s", e.Index, e.Err.Error())
}

func (e *ReplayedError) Unwrap() error { return e.Err }

// parseEventIndex parses a canonical non-negative decimal index (no sign, no
// leading zero).
func parseEventIndex(s string) (int64, error) {
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("index %q is not a canonical decimal", clipUntrusted(s))
	}
	return strconv.ParseInt(s, 10, 64)
}

// clipUntrusted shortens untrusted text for an error message.
func clipUntrusted(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return TerminalSafe(s)
}

// SignedEvent is an event ready to post: its signed entry and its body's
// age file.
type SignedEvent struct {
	// Entry is the signed fieldtip/event/v1 entry.
	Entry []byte
	// Body is the body's age file, sealed to the editors of the bundle the
	// event names.
	Body []byte
	// Event is the event the entry says.
	Event *audit.Event
}

// SignEvent seals body to the editors of v's bundle in force and signs,
// with the editor's signing key, an event over v's checkpoint (its base)
// with a fresh random id, dated now's UTC day.
func SignEvent(v *LogView, key *crypto.EditorKey, body *audit.EventBody, now time.Time) (*SignedEvent, error) {
	sealed, err := audit.SealEventBody(body, v.Bundle)
	if err != nil {
		return nil, err
	}
	ev, err := sealed.Event(crypto.Day(now), v.Tree)
	if err != nil {
		return nil, err
	}
	signer, err := key.Signer()
	if err != nil {
		return nil, err
	}
	entry, err := audit.SignEvent(ev, signer)
	if err != nil {
		return nil, err
	}
	return &SignedEvent{Entry: entry, Body: sealed.Ciphertext, Event: ev}, nil
}

// PostEvent sends ev over the session r (POST /event, docs/log.md) and
// returns the event's index once the server's answer, a C2SP tlog-proof,
// checks out: its checkpoint verifies with the log key of v's bundle in
// force and includes the entry at the index it names, the index is past
// the event's base, and the checkpoint extends the base (a consistency
// proof from the server's tiles, checked against the new checkpoint): a
// checkpoint that does not is a *ForkError carrying both. v must be the
// view ev was signed over. A refusal is a *protocol.Error; a replayed one
// is a *ReplayedError.
func (r *Remote) PostEvent(ctx context.Context, v *LogView, ev *SignedEvent) (int64, error) {
	if ev.Event.Base != v.Tree {
		return 0, fmt.Errorf("post event: the event's base (size %d) is not the view's checkpoint (size %d)", ev.Event.Base.N, v.Tree.N)
	}
	if len(ev.Entry) > audit.MaxEventSize {
		return 0, fmt.Errorf("post event: entry of %d bytes, more than %d", len(ev.Entry), audit.MaxEventSize)
	}
	req := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(ev.Entry)+len(ev.Body)), uint16(len(ev.Entry)))
	req = append(append(req, ev.Entry...), ev.Body...)
	proof, err := r.raw(ctx, http.MethodPost, protocol.PathEvent, req, maxProof)
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Code == protocol.CodeReplayed {
		index := pe.Index
		if index < 1 {
			index = -1 // not said: find looks for the entry
		}
		return 0, &ReplayedError{Index: index, Err: pe}
	}
	if err != nil {
		return 0, fmt.Errorf("log the event: %w", err)
	}
	return r.checkAck(ctx, v, ev, proof)
}

// checkAck checks the server's answer to an event (PostEvent).
func (r *Remote) checkAck(ctx context.Context, v *LogView, ev *SignedEvent, proof []byte) (int64, error) {
	_, policy, err := logPolicy(v.Bundle.Log)
	if err != nil {
		return 0, err
	}
	if err := torchwood.VerifyProof(policy, tlog.RecordHash(ev.Entry), proof); err != nil {
		return 0, fmt.Errorf("the server acknowledged the event with a proof that does not verify: %w", err)
	}
	index, _, signed, err := parseProof(proof)
	if err != nil {
		return 0, fmt.Errorf("the server's acknowledgement: %w", err)
	}
	cp, _, err := torchwood.VerifyCheckpoint(signed, policy)
	if err != nil {
		return 0, fmt.Errorf("the server's acknowledgement: %w", err)
	}
	base := ev.Event.Base
	if index < base.N {
		return 0, &ForkError{Reason: fmt.Sprintf("the event is acknowledged at index %d, inside the tree of size %d it was signed over", index, base.N), Stored: v.Signed, Served: signed}
	}
	tf, err := torchwood.NewTileFetcher(r.url.Origin+"/", torchwood.WithHTTPClient(r.http), torchwood.WithUserAgent("newsdesk"))
	if err != nil {
		return 0, err
	}
	cons, err := tlog.ProveTree(cp.N, base.N, torchwood.TileHashReaderWithContext(ctx, cp.Tree, tf))
	if err != nil {
		return 0, fmt.Errorf("the event is logged at index %d, but the consistency proof from size %d to %d: %w", index, base.N, cp.N, err)
	}
	if err := tlog.CheckTree(cons, cp.N, cp.Hash, base.N, base.Hash); err != nil {
		return 0, &ForkError{Reason: fmt.Sprintf("the tree of size %d acknowledging the event does not extend the tree of size %d it was signed over", cp.N, base.N), Stored: v.Signed, Served: signed}
	}
	return index, nil
}

// parseProof splits a C2SP tlog-proof as the server writes it (no extra
// data): header, "index N", one standard-base64 hash a line (at most 63),
// a blank line, then the signed checkpoint. It checks the form only;
// torchwood.VerifyProof checks what it says.
func parseProof(proof []byte) (index int64, hashes tlog.RecordProof, checkpoint []byte, err error) {
	if len(proof) > maxProof {
		return 0, nil, nil, fmt.Errorf("tlog proof of %d bytes, more than %d", len(proof), maxProof)
	}
	rest, ok := bytes.CutPrefix(proof, []byte(proofHeader+"\n"))
	if !ok {
		return 0, nil, nil, errors.New("not a tlog proof: no " + proofHeader + " line")
	}
	line, rest, ok := bytes.Cut(rest, []byte("\n"))
	s, isIndex := strings.CutPrefix(string(line), "index ")
	if !ok || !isIndex {
		return 0, nil, nil, errors.New("malformed tlog proof: no index line")
	}
	if index, err = parseEventIndex(s); err != nil {
		return 0, nil, nil, fmt.Errorf("malformed tlog proof: %w", err)
	}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return 0, nil, nil, errors.New("malformed tlog proof: no blank line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(hashes) == 63 {
			return 0, nil, nil, errors.New("malformed tlog proof: more than 63 hashes")
		}
		h, err := base64.StdEncoding.Strict().DecodeString(string(line))
		if err != nil || len(h) != tlog.HashSize || base64.StdEncoding.EncodeToString(h) != string(line) {
			return 0, nil, nil, fmt.Errorf("malformed tlog proof: hash %d is not 32 bytes of standard base64", len(hashes))
		}
		hashes = append(hashes, tlog.Hash(h))
	}
	if len(rest) == 0 {
		return 0, nil, nil, errors.New("malformed tlog proof: no checkpoint")
	}
	return index, hashes, rest, nil
}

// proofIndex returns the index a tlog-proof names (parseProof).
func proofIndex(proof []byte) (int64, error) {
	i, _, _, err := parseProof(proof)
	return i, err
}

// EventWriter writes one editor's events to a server: it holds the view
// of the log of its last sync, which each event is signed over, and a
// session. One writer is not safe for concurrent use.
type EventWriter struct {
	cache  *Cache
	server string
	key    *crypto.EditorKey
	opts   SyncOptions
	remote *Remote
	view   *LogView
	// now dates the events (default time.Now).
	now func() time.Time
}

// NewEventWriter syncs the cache with the server's log (SyncLog: tips,
// entries, bodies, receipts trees, cosignature) and logs in as the editor
// of key.
func (c *Cache) NewEventWriter(ctx context.Context, server string, key *crypto.EditorKey, opts SyncOptions) (*EventWriter, error) {
	w := &EventWriter{cache: c, server: server, key: key, opts: opts, now: time.Now}
	if err := w.Sync(ctx); err != nil {
		return nil, err
	}
	r, err := Login(ctx, server, key)
	if err != nil {
		return nil, err
	}
	w.remote = r
	return w, nil
}

// View returns the verified view of the log the writer's next event is
// signed over.
func (w *EventWriter) View() *LogView { return w.view }

// Remote returns the writer's session.
func (w *EventWriter) Remote() *Remote { return w.remote }

// Sync brings the writer's view up to the server's log (SyncLog).
func (w *EventWriter) Sync(ctx context.Context) error {
	v, err := w.cache.SyncLog(ctx, w.server, w.key, w.opts)
	if err != nil {
		return err
	}
	w.view = v
	return nil
}

// Write logs an event saying body and returns its index once a
// checkpoint the log key signed, extending the writer's view, includes it
// (PostEvent). When the log moved under the view or the bundle in force
// changed, it syncs and signs again, up to three times in all. When the
// answer is lost (the connection failed, or the server failed), it sends
// the same signed event once more: if the log holds it already (409
// replayed), it syncs and returns the index where the verified log holds
// that very entry. A session that expired is renewed once.
func (w *EventWriter) Write(ctx context.Context, body *audit.EventBody) (int64, error) {
	var last error
	for attempt := range writeAttempts {
		if attempt > 0 {
			if err := w.Sync(ctx); err != nil {
				return 0, err
			}
		}
		ev, err := SignEvent(w.view, w.key, body, w.now())
		if err != nil {
			return 0, err
		}
		index, err := w.post(ctx, ev)
		var pe *protocol.Error
		if errors.As(err, &pe) && (pe.Code == protocol.CodeConflict || pe.Code == protocol.CodeStaleBundle) {
			last = err
			continue
		}
		return index, err
	}
	return 0, fmt.Errorf("the log kept moving: %w", last)
}

// post sends ev, again once after a lost answer or an expired session.
func (w *EventWriter) post(ctx context.Context, ev *SignedEvent) (int64, error) {
	index, err := w.remote.PostEvent(ctx, w.view, ev)
	var pe *protocol.Error
	var fork *ForkError
	switch {
	case err == nil || errors.As(err, &fork) || ctx.Err() != nil:
		return index, err
	case errors.As(err, &pe) && pe.Code == protocol.CodeUnauthorized:
		// Sessions expire, and a new bundle ends them: log in again
		// (which fails if the editor is no longer listed).
		r, lerr := Login(ctx, w.server, w.key)
		if lerr != nil {
			return 0, fmt.Errorf("%w (and logging in again: %w)", err, lerr)
		}
		w.remote = r
	case errors.As(err, &pe) && pe.Code != protocol.CodeInternal && pe.Code != protocol.CodeBusy && pe.Code != protocol.CodeShuttingDown:
		return 0, err
	}
	// The request may have been logged even though no answer came.
	index, err = w.remote.PostEvent(ctx, w.view, ev)
	var re *ReplayedError
	if !errors.As(err, &re) {
		return index, err
	}
	return w.find(ctx, ev, re)
}

// find returns the index of ev in the log after the server answered a
// second sending of it with replayed: the verified log must hold that very
// entry, after the event's base.
func (w *EventWriter) find(ctx context.Context, ev *SignedEvent, re *ReplayedError) (int64, error) {
	signedOver := w.view
	if err := w.Sync(ctx); err != nil {
		return 0, fmt.Errorf("%w; syncing to find it: %w", re, err)
	}
	entries := w.view.Entries
	if re.Index >= ev.Event.Base.N && re.Index < int64(len(entries)) && bytes.Equal(entries[re.Index], ev.Entry) {
		return re.Index, nil
	}
	for i := ev.Event.Base.N; i < int64(len(entries)); i++ {
		if bytes.Equal(entries[i], ev.Entry) {
			return i, nil
		}
	}
	w.view = signedOver
	return 0, fmt.Errorf("%w, but the log of %d entries does not hold it", re, len(entries))
}

// WriteEvent logs one event (NewEventWriter, then Write) and returns its
// index.
func (c *Cache) WriteEvent(ctx context.Context, server string, key *crypto.EditorKey, body *audit.EventBody, opts SyncOptions) (int64, error) {
	w, err := c.NewEventWriter(ctx, server, key, opts)
	if err != nil {
		return 0, err
	}
	return w.Write(ctx, body)
}

// tipState syncs a writer for an act on tip and returns what the
// replayed log says about the tip (nil if nothing), refusing a tip the
// events delete.
func (w *EventWriter) tipState(tip [crypto.TipIDSize]byte) (*Editorial, *audit.TipState, error) {
	ed, err := Replay(w.view, w.key)
	if err != nil {
		return nil, nil, err
	}
	ts := ed.State.Tip(tip)
	if ts != nil && ts.Deleted {
		return nil, nil, fmt.Errorf("tip %s: %w", crypto.FormatTipID(tip), ErrTipDeleted)
	}
	return ed, ts, nil
}

// knownTip refuses a tip that is neither in the cache (which the sync has
// just brought up to the server's list) nor named by an event.
func (c *Cache) knownTip(tip string, ts *audit.TipState) error {
	if ts != nil {
		return nil
	}
	_, err := c.Find(tip)
	return err
}

// Triage logs a triage of a tip: its status, its whole tag set and an
// optional note (private part only). It then tells the server whether the
// tip is now rejected (status rejected or spam) or not, for the
// operator's retention purge (POST /editor/tips/<id>/mark). The tip must
// be in the cache or named by an event, and not deleted.
func (c *Cache) Triage(ctx context.Context, server string, key *crypto.EditorKey, tip string, status audit.Status, tags []string, text string, opts SyncOptions) (int64, error) {
	id, err := crypto.ParseTipID(tip)
	if err != nil {
		return 0, err
	}
	if !audit.ValidStatus(status) {
		return 0, fmt.Errorf("status %q is not one of new, reviewing, useful, spam, rejected", clipUntrusted(string(status)))
	}
	body := &audit.EventBody{Kind: audit.KindTriage, Tip: id, Status: status, Tags: tags, Text: text}
	w, err := c.NewEventWriter(ctx, server, key, opts)
	if err != nil {
		return 0, err
	}
	_, ts, err := w.tipState(id)
	if err != nil {
		return 0, err
	}
	if err := c.knownTip(tip, ts); err != nil {
		return 0, err
	}
	index, err := w.Write(ctx, body)
	if err != nil {
		return 0, err
	}
	mark := protocol.TipMark{Event: index, Rejected: status == audit.StatusRejected || status == audit.StatusSpam}
	if err := w.remote.tipAction(ctx, tip, protocol.PathTipMarkSuffix, mark, nil); err != nil {
		return index, fmt.Errorf("triage logged as event %d, but the server's mark: %w", index, err)
	}
	return index, nil
}

// Note logs a note on a tip (private part only). The tip must be in the
// cache or named by an event, and not deleted.
func (c *Cache) Note(ctx context.Context, server string, key *crypto.EditorKey, tip, text string, opts SyncOptions) (int64, error) {
	id, err := crypto.ParseTipID(tip)
	if err != nil {
		return 0, err
	}
	w, err := c.NewEventWriter(ctx, server, key, opts)
	if err != nil {
		return 0, err
	}
	_, ts, err := w.tipState(id)
	if err != nil {
		return 0, err
	}
	if err := c.knownTip(tip, ts); err != nil {
		return 0, err
	}
	return w.Write(ctx, &audit.EventBody{Kind: audit.KindNote, Tip: id, Text: text})
}

// Delete deletes a tip the editors rejected or marked as spam (the
// replayed log's status; ErrDeletePolicy otherwise): it logs a delete
// event naming the tip and the SHA-256 of its ciphertext (from the
// cache, so the editor must have pulled it), asks the server to delete
// the ciphertext (POST /editor/tips/<id>/delete with the event's index),
// and removes the tip from this cache. The log keeps the event's
// commitments; nothing else of the tip remains. pending is true when the
// server keeps the ciphertext until the tip's receipts root is logged (the
// end of its period), and deletes it at its first purge after that.
func (c *Cache) Delete(ctx context.Context, server string, key *crypto.EditorKey, tip string, opts SyncOptions) (index int64, pending bool, err error) {
	id, err := crypto.ParseTipID(tip)
	if err != nil {
		return 0, false, err
	}
	w, err := c.NewEventWriter(ctx, server, key, opts)
	if err != nil {
		return 0, false, err
	}
	_, ts, err := w.tipState(id)
	if err != nil {
		return 0, false, err
	}
	if ts == nil || (ts.Status != audit.StatusRejected && ts.Status != audit.StatusSpam) {
		return 0, false, ErrDeletePolicy
	}
	cached, err := c.Find(tip)
	if err != nil {
		return 0, false, err
	}
	index, err = w.Write(ctx, &audit.EventBody{Kind: audit.KindDelete, Tip: id, Ciphertext: cached.Receipt.SHA256})
	if err != nil {
		return 0, false, err
	}
	var answer protocol.TipDeleted
	if err := w.remote.tipAction(ctx, tip, protocol.PathTipDeleteSuffix, protocol.TipDelete{Event: index}, &answer); err != nil {
		return index, false, fmt.Errorf("deletion logged as event %d, but the server: %w", index, err)
	}
	if err := cached.remove(); err != nil {
		return index, answer.Pending, err
	}
	return index, answer.Pending, nil
}

// DropDeleted removes from the cache every tip st says is deleted (by
// this editor or another), and returns their ids.
func (c *Cache) DropDeleted(st *audit.State) ([]string, error) {
	es, err := c.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		if ts := st.Tip(e.Receipt.TipID); ts != nil && ts.Deleted {
			if err := e.remove(); err != nil {
				return out, err
			}
			out = append(out, e.ID)
		}
	}
	return out, nil
}

// Handover re-encrypts to the editor labelled to (listed, not revoked, in
// the bundle in force) every earlier event body this editor can read and
// that to cannot: bodies sealed to bundles that did not list to, and not
// handed over to to before. Bodies this editor itself got by handover are
// passed on too. They go out as handover events, as many as it takes to
// keep each body under the size limit. It returns the indexes of the
// events logged; none when there is nothing to hand over.
func (c *Cache) Handover(ctx context.Context, server string, key *crypto.EditorKey, to string, opts SyncOptions) ([]int64, error) {
	w, err := c.NewEventWriter(ctx, server, key, opts)
	if err != nil {
		return nil, err
	}
	v := w.view
	var recipient age.Recipient
	if e := v.Bundle.Editor(to); e != nil && to != key.Label && !slices.Contains(v.Bundle.Revoked, to) {
		if recipient, err = crypto.ParseRecipient(e.Recipient); err != nil {
			return nil, err
		}
	}
	if recipient == nil {
		return nil, fmt.Errorf("%q is not another editor of the bundle in force (version %d)", clipUntrusted(to), v.Bundle.Version)
	}
	ed, err := Replay(v, key)
	if err != nil {
		return nil, err
	}
	// Bodies already sealed to their key in force (bundles that list them
	// with it) or handed over to it before need nothing: a handover's
	// bodies went to the key the bundle at its index lists. What went to
	// an older key of theirs (the newsroom re-keyed them) goes again, as
	// Replay waits for it (sealedTo).
	toKey := v.Bundle.Editor(to).Recipient
	sealedToThem := func(i int64) bool {
		var e *crypto.Editor
		if b := v.BundleAt(i); b != nil {
			e = b.Editor(to)
		}
		return e != nil && e.Recipient == toKey
	}
	done := map[int64]bool{}
	for _, o := range ed.Events {
		if !sealedToThem(o.Index) {
			continue
		}
		done[o.Index] = true
		if o.Body.Kind == audit.KindHandover && o.Body.To == to {
			for _, h := range o.Body.Bodies {
				done[h.Index] = true
			}
		}
	}
	var batches [][]audit.HandedOver
	var cur []audit.HandedOver
	size := 0
	for _, o := range ed.Events {
		if done[o.Index] {
			continue
		}
		var h audit.HandedOver
		if o.Via != nil {
			h, err = audit.HandOverAgain(*o.Via, o.Event, key.Identity, recipient)
		} else {
			var ct []byte
			if ct, err = v.Body(o.Index); err == nil {
				h, err = audit.HandOver(ct, o.Event, o.Index, key.Identity, recipient)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("hand over event %d: %w", o.Index, err)
		}
		// Its JSON: the base64 of the ciphertext and some 40 bytes.
		n := base64.StdEncoding.EncodedLen(len(h.Ciphertext)) + 64
		if n > maxHandoverBatch {
			return nil, fmt.Errorf("hand over event %d: its body alone, %d bytes re-encrypted, is too large for a handover event", o.Index, len(h.Ciphertext))
		}
		if size+n > maxHandoverBatch && len(cur) > 0 {
			batches, cur, size = append(batches, cur), nil, 0
		}
		cur, size = append(cur, h), size+n
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	var out []int64
	for _, b := range batches {
		i, err := w.Write(ctx, &audit.EventBody{Kind: audit.KindHandover, To: to, Bodies: b})
		if err != nil {
			return out, err
		}
		out = append(out, i)
	}
	return out, nil
}

// tipAction posts a delete or mark request for tip over the session and
// decodes the answer into v (when not nil).
func (r *Remote) tipAction(ctx context.Context, tip, suffix string, req, v any) error {
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
