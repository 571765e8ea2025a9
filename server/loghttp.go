package server

// The editorial log's HTTP endpoints (docs/log.md).

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// Refusals of editorial events (docs/log.md, "POST /event"). The text is
// fixed per reason and never echoes what the client sent.
var (
	errEventMalformed = protocol.Errorf(protocol.CodeMalformed, "event request malformed")
	errEventTooLarge  = protocol.Errorf(protocol.CodeTooLarge, "event request larger than %d bytes", maxEventRequest)
	errEventSigner    = protocol.Errorf(protocol.CodeUnauthorized, "event not signed by an editor of the bundle in force")
	errEventRevoked   = protocol.Errorf(protocol.CodeUnauthorized, "event signed by an editor the bundle in force revokes")
	errEventNotYours  = protocol.Errorf(protocol.CodeUnauthorized, "event signed by another editor than the one logged in")
	errEventBodyHash  = protocol.Errorf(protocol.CodeBadHash, "body does not hash to the event's ciphertext hash")
)

func errEventStale(inForce int64) *protocol.Error {
	return protocol.Errorf(protocol.CodeStaleBundle, "event names another bundle than version %d, the one in force", inForce)
}

func errEventReplayed(index int64) *protocol.Error {
	if index < 0 {
		return protocol.Errorf(protocol.CodeReplayed, "event id sent twice")
	}
	e := protocol.Errorf(protocol.CodeReplayed, "event id already logged at index %d", index)
	e.Index = index
	return e
}

// errEventNotPrefix carries the log's size as the offset: fetch the
// checkpoint, check it is consistent with the one you saw, sign again.
func errEventNotPrefix(size int64) *protocol.Error {
	e := protocol.Errorf(protocol.CodeConflict, "base checkpoint is not a prefix of the log")
	e.Offset = size
	return e
}

func (s *Server) registerLogRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+protocol.PathCheckpoint, s.serveCheckpoint)
	mux.HandleFunc("GET "+protocol.PathTiles, s.serveTile)
	mux.HandleFunc("GET "+protocol.PathEventBodies+"{index}", s.serveEventBody)
	mux.HandleFunc("POST "+protocol.PathEvent, s.servePostEvent)
}

var errNoSuchTile = protocol.Errorf(protocol.CodeNotFound, "no such tile in the log")

func (s *Server) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	head := s.elog().head.Load()
	if head == nil {
		writeRefusal(w, protocol.Errorf(protocol.CodeNotFound, "the log is empty"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(head.signed)))
	w.Write(head.signed)
}

// parseTilePath parses the path of a tile or entry bundle (C2SP
// tlog-tiles), without its leading slash, in its one spelling.
func parseTilePath(path string) (tlog.Tile, error) {
	t, err := torchwood.ParseTilePath(path)
	if err != nil || t.H != torchwood.TileHeight || torchwood.TilePath(t) != path {
		return tlog.Tile{}, fmt.Errorf("not a tile path: %q", clipString(path))
	}
	return t, nil
}

// tileAvailable reports whether tile t of a tree of size n can be served:
// every hash (or entry) it holds is in the tree.
func tileAvailable(t tlog.Tile, n int64) bool {
	level := t.L
	if level == -1 {
		level = 0
	}
	if level < 0 || level > 7 || t.N < 0 || t.W < 1 || t.W > torchwood.TileWidth {
		return false
	}
	// Level L holds the hashes of complete subtrees of 256^L entries.
	avail := n >> (torchwood.TileHeight * level)
	return t.N <= avail/torchwood.TileWidth && t.N*torchwood.TileWidth+int64(t.W) <= avail
}

func (s *Server) serveTile(w http.ResponseWriter, r *http.Request) {
	t, err := parseTilePath(strings.TrimPrefix(r.URL.Path, "/"))
	if err != nil {
		writeRefusal(w, protocol.Errorf(protocol.CodeMalformed, "not a tile path"))
		return
	}
	head := s.elog().head.Load()
	if head == nil || !tileAvailable(t, head.tree.N) {
		writeRefusal(w, errNoSuchTile)
		return
	}
	var data []byte
	if t.L == -1 {
		start := t.N * torchwood.TileWidth
		entries, err := s.store.ReadEntries(r.Context(), start, start+int64(t.W))
		if err == nil {
			for _, e := range entries {
				if data, err = torchwood.AppendTileEntry(data, e); err != nil {
					break
				}
			}
		}
		if err != nil {
			writeRefusal(w, s.failed("read entry bundle", err))
			return
		}
	} else if data, err = tlog.ReadTileData(t, s.store.LogHashes(r.Context())); err != nil {
		writeRefusal(w, s.failed("read tile", err))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", immutable)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}

// parseIndex parses an entry index: a canonical decimal integer ≥ 0.
func parseIndex(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("not an entry index: %q", clipString(s))
	}
	return n, nil
}

func (s *Server) serveEventBody(w http.ResponseWriter, r *http.Request) {
	index, err := parseIndex(r.PathValue("index"))
	if err != nil {
		writeRefusal(w, protocol.Errorf(protocol.CodeMalformed, "not an entry index"))
		return
	}
	head := s.elog().head.Load()
	var body []byte
	if head != nil && index < head.tree.N {
		body, err = s.store.EventBody(r.Context(), index)
	} else {
		err = storage.ErrNotFound
	}
	if errors.Is(err, storage.ErrNotFound) {
		writeRefusal(w, protocol.Errorf(protocol.CodeNotFound, "no event body at that index"))
		return
	}
	if err != nil {
		writeRefusal(w, s.failed("read event body", err))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", immutable)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// splitEventRequest splits a POST /event body: a 2-byte big-endian length,
// the signed event entry (1 to audit.MaxEventSize bytes), then the body's
// age file (1 to audit.MaxSealedBodySize bytes) to the end.
func splitEventRequest(b []byte) (entry, body []byte, err error) {
	if len(b) > maxEventRequest {
		return nil, nil, fmt.Errorf("event request of %d bytes, more than %d", len(b), maxEventRequest)
	}
	entry, body, err = torchwood.ReadTileEntry(b)
	if err != nil {
		return nil, nil, fmt.Errorf("event request: %w", err)
	}
	if len(entry) == 0 || len(entry) > audit.MaxEventSize {
		return nil, nil, fmt.Errorf("event request: event of %d bytes, want 1 to %d", len(entry), audit.MaxEventSize)
	}
	if len(body) == 0 || len(body) > audit.MaxSealedBodySize {
		return nil, nil, fmt.Errorf("event request: body of %d bytes, want 1 to %d", len(body), audit.MaxSealedBodySize)
	}
	return entry, body, nil
}

// servePostEvent logs an editorial event (docs/log.md, "POST /event") and
// answers, once it is committed and pinned, with its inclusion proof in
// the new checkpoint (C2SP tlog-proof).
func (s *Server) servePostEvent(w http.ResponseWriter, r *http.Request) {
	editor, ok := s.editor(w, r)
	if !ok {
		return
	}
	if s.shuttingDown() {
		writeRefusal(w, errStopping)
		return
	}
	l := s.elog()
	select {
	case l.sem <- struct{}{}:
		defer func() { <-l.sem }()
	case <-r.Context().Done():
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventRequest))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeRefusal(w, errEventTooLarge)
		return
	}
	if err != nil {
		return // the client went away
	}
	entry, body, err := splitEventRequest(b)
	if err != nil {
		writeRefusal(w, errEventMalformed)
		return
	}
	inForce := s.bundle.Load()
	ev, err := audit.OpenEvent(entry, inForce)
	switch {
	case errors.Is(err, audit.ErrRevokedEditor):
		writeRefusal(w, errEventRevoked)
		return
	case errors.Is(err, crypto.ErrUnknownSigner), errors.Is(err, crypto.ErrBadSignature):
		writeRefusal(w, errEventSigner)
		return
	case errors.Is(err, audit.ErrWrongBundle):
		writeRefusal(w, errEventStale(inForce.Version))
		return
	case err != nil:
		writeRefusal(w, errEventMalformed)
		return
	}
	if ev.Editor != editor {
		writeRefusal(w, errEventNotYours)
		return
	}
	if sha256.Sum256(body) != ev.Ciphertext {
		writeRefusal(w, errEventBodyHash)
		return
	}
	a := s.sequence(&logRequest{entries: [][]byte{entry}, event: ev, body: body})
	if a.err != nil {
		writeRefusal(w, a.err)
		return
	}
	proof, err := tlog.ProveRecord(a.head.tree.N, a.index, s.store.LogHashes(r.Context()))
	if err != nil {
		// Logged, but the proof could not be read: the client finds its
		// event in the log by its id.
		writeRefusal(w, s.failed("prove a logged event", err))
		return
	}
	s.log.Debug("event logged", attrEditor, editor, attrSize, a.head.tree.N)
	out := torchwood.FormatProof(a.index, proof, a.head.signed)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

func clipString(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
