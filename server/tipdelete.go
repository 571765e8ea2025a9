package server

// The editors' tip deletion and rejection marks (protocol/receipts.go;
// AUDIT.md, "Corroboration model": deleting a tip is an event, then the
// server removes the ciphertext).
//
// The server cannot read event bodies, so it cannot tell a delete event
// from a note: it checks that the index names a published event signed by
// the editor of the session, which puts who deleted on which day in the
// log for every editor to check against the body. It refuses to delete a
// tip whose period's receipts root is not published yet, so the tip stays
// a leaf of its period's tree. A mark tells the server that a triage made
// the tip rejected (or spam), or no longer: the server so learns which
// tips editors rejected (SECURITY.md), which the retention purge needs.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"

	"golang.org/x/mod/sumdb/note"
)

// Refusals of tip deletions and marks. The texts never echo the request.
var (
	errTipMalformed    = protocol.Errorf(protocol.CodeMalformed, "tip request malformed")
	errTipTooLarge     = protocol.Errorf(protocol.CodeTooLarge, "tip request larger than %d bytes", protocol.MaxTipActionRequest)
	errTipNotFound     = protocol.Errorf(protocol.CodeNotFound, "no such tip")
	errTipEventBeyond  = protocol.Errorf(protocol.CodeConflict, "no entry at that index in the published log")
	errTipNotAnEvent   = protocol.Errorf(protocol.CodeMalformed, "the entry at that index is not an editorial event")
	errTipEventNotMine = protocol.Errorf(protocol.CodeUnauthorized, "the event at that index is not signed by the editor logged in")
)

// tipAction is a parsed delete or mark request.
type tipAction struct {
	tip   [crypto.TipIDSize]byte
	event int64
	// rejected is the mark's (false for a delete).
	rejected bool
}

// parseTipAction parses a delete (mark false) or mark request: the tip id
// of the path and the JSON body, which must have every member of its type
// and nothing else, exactly once.
func parseTipAction(id string, body []byte, mark bool) (*tipAction, error) {
	tip, err := crypto.ParseTipID(id)
	if err != nil {
		return nil, err
	}
	if len(body) > protocol.MaxTipActionRequest {
		return nil, fmt.Errorf("tip request of %d bytes, more than %d", len(body), protocol.MaxTipActionRequest)
	}
	var v struct {
		Event    *int64 `json:"event"`
		Rejected *bool  `json:"rejected"`
	}
	members := []string{"event"}
	if mark {
		members = append(members, "rejected")
	}
	if err := decodeStrict(body, members, &v); err != nil {
		return nil, err
	}
	if v.Event == nil || *v.Event < 0 {
		return nil, errors.New("tip request: event must be a log index")
	}
	a := &tipAction{tip: tip, event: *v.Event}
	switch {
	case mark && v.Rejected == nil:
		return nil, errors.New("tip mark: rejected missing")
	case mark:
		a.rejected = *v.Rejected
	}
	return a, nil
}

// decodeStrict decodes one JSON object into v. Its members must be among
// members, spelled exactly so (encoding/json alone matches them without
// regard to case), each at most once (encoding/json alone keeps the last);
// anything after the object is refused. So a request has one reading.
func decodeStrict(b []byte, members []string, v any) error {
	if err := checkMembers(b, members); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("tip request: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("tip request: data after the JSON object")
	}
	return nil
}

// checkMembers refuses a JSON object with a member not in members, or one
// twice. What is not a well-formed object is left to the decoder.
func checkMembers(b []byte, members []string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		k, ok := t.(string)
		if !ok {
			return nil
		}
		if !slices.Contains(members, k) {
			return fmt.Errorf("tip request: unknown member %q", clipString(k))
		}
		if seen[k] {
			return fmt.Errorf("tip request: member %q twice", clipString(k))
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// readTipAction checks the session and parses the request; on a refusal
// it has answered and returns nil.
func (s *Server) readTipAction(w http.ResponseWriter, r *http.Request, mark bool) (string, *tipAction) {
	editor, ok := s.editor(w, r)
	if !ok {
		return "", nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, protocol.MaxTipActionRequest))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeRefusal(w, errTipTooLarge)
		return "", nil
	}
	if err != nil {
		return "", nil // the client went away
	}
	a, err := parseTipAction(r.PathValue("id"), b, mark)
	if err != nil {
		writeRefusal(w, errTipMalformed)
		return "", nil
	}
	return editor, a
}

// checkTipEvent checks that the entry at index is a published editorial
// event signed by editor, against the bundle it names (the bundle in
// force at its index: the log checked that when it appended it). It
// returns nil, or the refusal.
func (s *Server) checkTipEvent(ctx context.Context, index int64, editor string) *protocol.Error {
	head := s.elog().head.Load()
	if head == nil || index >= head.tree.N {
		return errTipEventBeyond
	}
	entries, err := s.store.ReadEntries(ctx, index, index+1)
	if err != nil {
		return s.failed("read a tip request's event", err)
	}
	entry := entries[0]
	if !bytes.HasPrefix(entry, []byte(audit.EventHeader+"\n")) || len(entry) > audit.MaxEventSize {
		return errTipNotAnEvent
	}
	version, ok := eventBundleVersion(entry)
	if !ok {
		return errTipNotAnEvent
	}
	b := s.bundle.Load()
	if b.Version != version {
		signed, err := s.store.BundleOfVersion(ctx, version)
		if errors.Is(err, storage.ErrNotFound) {
			// A logged event names a bundle the server put in force, so
			// it is stored unless the database was restored from an older
			// copy.
			s.log.Warn("a tip request's event names a bundle not in the database", attrVersion, version)
			return protocol.Errorf(protocol.CodeConflict, "the event's bundle, version %d, is not stored on this server", version)
		}
		if err != nil {
			return s.failed("read a tip request's bundle", err)
		}
		if b, err = crypto.OpenBundle(signed, s.newsroom); err != nil {
			s.log.Error("open a stored bundle", attrVersion, version, attrErr, err)
			return errInternal
		}
	}
	ev, err := audit.OpenEvent(entry, b)
	switch {
	case errors.Is(err, crypto.ErrUnknownSigner), errors.Is(err, crypto.ErrBadSignature):
		return errTipEventNotMine
	case err != nil:
		return errTipNotAnEvent
	case ev.Editor != editor:
		return errTipEventNotMine
	}
	return nil
}

// eventBundleVersion reads, without verifying, the bundle version an event
// entry names; OpenEvent then verifies it against that bundle.
func eventBundleVersion(entry []byte) (int64, bool) {
	_, err := note.Open(entry, note.VerifierList())
	var une *note.UnverifiedNoteError
	if !errors.As(err, &une) {
		return 0, false
	}
	for line := range strings.SplitSeq(une.Note.Text, "\n") {
		if v, ok := strings.CutPrefix(line, "bundle "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 || strconv.FormatInt(n, 10) != v {
				return 0, false
			}
			return n, true
		}
	}
	return 0, false
}

// serveTipDelete deletes a tip's ciphertext after its delete event
// (protocol.TipDelete): 404 for an unknown tip. It answers 200 once the
// row is deleted with secure_delete and the WAL checkpointed and
// truncated. While the tip's period has no published receipts root it
// answers 202 Pending instead, and the purge deletes the tip once the root
// is logged: every tip the server gave a receipt for is a leaf.
func (s *Server) serveTipDelete(w http.ResponseWriter, r *http.Request) {
	editor, a := s.readTipAction(w, r, false)
	if a == nil {
		return
	}
	ctx := r.Context()
	tp, err := s.store.TipPeriodOf(ctx, a.tip)
	if errors.Is(err, storage.ErrNotFound) {
		writeRefusal(w, errTipNotFound)
		return
	}
	if err != nil {
		writeRefusal(w, s.failed("read a tip's period", err))
		return
	}
	if perr := s.checkTipEvent(ctx, a.event, editor); perr != nil {
		writeRefusal(w, perr)
		return
	}
	if head := s.elog().head.Load(); tp.LogIndex < 0 || head == nil || tp.LogIndex >= head.tree.N {
		if err := s.store.MarkTipDeleted(context.WithoutCancel(ctx), a.tip, crypto.Day(s.now())); err != nil {
			writeRefusal(w, s.failed("mark a tip deleted", err))
			return
		}
		s.log.Info("tip deletion waits for its receipts root", attrEditor, editor, attrCount, 1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"pending":true}` + "\n"))
		return
	}
	// The deletion must not be abandoned halfway because the editor hung
	// up: the checkpoint after it is what takes the bytes off the disk.
	err = s.store.DeleteTip(context.WithoutCancel(ctx), a.tip)
	if errors.Is(err, storage.ErrNotFound) {
		writeRefusal(w, errTipNotFound)
		return
	}
	if err != nil {
		writeRefusal(w, s.failed("delete a tip", err))
		return
	}
	s.log.Info("tip deleted by an editor", attrEditor, editor, attrCount, 1)
	writeEmptyJSON(w)
}

// serveTipMark records or clears the day a triage rejected a tip
// (protocol.TipMark). A tip marked again keeps the day of its first mark.
func (s *Server) serveTipMark(w http.ResponseWriter, r *http.Request) {
	editor, a := s.readTipAction(w, r, true)
	if a == nil {
		return
	}
	ctx := r.Context()
	if _, err := s.store.TipPeriodOf(ctx, a.tip); errors.Is(err, storage.ErrNotFound) {
		writeRefusal(w, errTipNotFound)
		return
	} else if err != nil {
		writeRefusal(w, s.failed("read a tip", err))
		return
	}
	if perr := s.checkTipEvent(ctx, a.event, editor); perr != nil {
		writeRefusal(w, perr)
		return
	}
	day := ""
	if a.rejected {
		day = crypto.Day(s.now())
	}
	err := s.store.MarkTip(ctx, a.tip, day)
	if errors.Is(err, storage.ErrNotFound) {
		writeRefusal(w, errTipNotFound)
		return
	}
	if err != nil {
		writeRefusal(w, s.failed("mark a tip", err))
		return
	}
	writeEmptyJSON(w)
}

func writeEmptyJSON(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("{}\n"))
}
