package server

// Editors' cosignatures of the log's checkpoints (docs/log.md,
// "Cosignatures"; AUDIT.md, promise 4; C2SP tlog-cosignature).
//
// Each editor's newsdesk checks a new checkpoint against the last one it
// saw and sends it back with its cosignature. The server keeps, for each
// cosigned size, the checkpoint the log key signed and every editor's
// latest cosignature of it, and serves them to anyone: a reader who holds
// a checkpoint cosigned by the editors knows each of them saw that same
// tree, so the server cannot show one of them a different history unseen.
//
// The server stores a cosignature only after checking, in this order:
// a live session (401); the body's size (413) and framing (400); that the
// checkpoint is this log's, signed by the log key, of a size it published,
// with its tree's root at that size (409 conflict); and that the last line
// is a tlog-cosignature/v1 by the cosigning key the bundle in force lists
// for the session's editor (403), whose timestamp is 00:00:00 UTC of a day
// (400). A refusal stores nothing. The tests in
// cosign_test.go prove these on real keys and sockets.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
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
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Cosignature limits.
const (
	// cosignatureSize is a tlog-cosignature/v1 signature: a 4-byte key
	// hash, an 8-byte timestamp and an Ed25519 signature.
	cosignatureSize = 4 + 8 + 64
	// maxCosignRequest caps a POST /cosignature body: a signed checkpoint
	// and one signature line.
	maxCosignRequest = audit.MaxCheckpointSize + storage.MaxCosignatureLine
)

// sigLinePrefix starts every signature line of a signed note.
const sigLinePrefix = "— "

// Refusals of cosignatures. The text is fixed per reason and never echoes
// what the client sent.
var (
	errCosignTooLarge  = protocol.Errorf(protocol.CodeTooLarge, "cosignature request larger than %d bytes", maxCosignRequest)
	errCosignMalformed = protocol.Errorf(protocol.CodeMalformed, "cosignature request malformed: want the log's signed checkpoint and one cosignature line")
	errCosignNotOurs   = protocol.Errorf(protocol.CodeConflict, "checkpoint not signed by this log, or not of its tree")
	errCosignSigner    = protocol.Errorf(protocol.CodeUnauthorized, "cosignature not by the cosigning key of the editor logged in")
	errCosignNotFound  = protocol.Errorf(protocol.CodeNotFound, "nobody cosigned a checkpoint of that size")
	errCosignTime      = protocol.Errorf(protocol.CodeMalformed, "cosignature time is not 00:00:00 UTC of a day: cosign with newsdesk, whose timestamps are day precision")
)

// cosignRequest is a POST /cosignature body split in two: the log's signed
// checkpoint and the cosignature line after it.
type cosignRequest struct {
	// signed is the checkpoint with the log's one signature line.
	signed []byte
	// line is the last line, "— <name> <base64>\n"; sig is it parsed.
	line []byte
	sig  note.Signature
}

// splitCosignature splits a POST /cosignature body: a signed note (text
// without blank lines, a blank line) with exactly two signature lines, the
// second of which is a tlog-cosignature/v1 (a key name without spaces or
// "+", and 76 bytes in strict standard base64). It checks the framing
// only: the signatures are the caller's to verify.
func splitCosignature(b []byte) (*cosignRequest, error) {
	if len(b) > maxCosignRequest {
		return nil, fmt.Errorf("cosignature request of %d bytes, more than %d", len(b), maxCosignRequest)
	}
	sep := bytes.Index(b, []byte("\n\n"))
	if sep < 0 {
		return nil, errors.New("cosignature request: not a signed note")
	}
	sigs := b[sep+2:]
	first := bytes.IndexByte(sigs, '\n') + 1
	if first == 0 || !bytes.HasPrefix(sigs, []byte(sigLinePrefix)) {
		return nil, errors.New("cosignature request: no signature line after the text")
	}
	signed, line := b[:sep+2+first], sigs[first:]
	if !bytes.HasPrefix(line, []byte(sigLinePrefix)) || bytes.IndexByte(line, '\n') != len(line)-1 {
		return nil, errors.New("cosignature request: want exactly one signature line after the log's")
	}
	name, b64, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(string(line), sigLinePrefix), "\n"), " ")
	if !ok || name == "" || strings.ContainsAny(name, " +") || !isPrint(name) {
		return nil, fmt.Errorf("cosignature line: bad key name %q", clipString(name))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) != cosignatureSize {
		return nil, fmt.Errorf("cosignature line: signature is not %d bytes of standard base64", cosignatureSize)
	}
	hash := binary.BigEndian.Uint32(raw)
	return &cosignRequest{signed: signed, line: line, sig: note.Signature{Name: name, Hash: hash, Base64: b64}}, nil
}

// isPrint reports whether s is printable ASCII (key names of this
// newsroom's editors are labels plus ".cosign").
func isPrint(s string) bool {
	for i := range len(s) {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// openCosignature checks a POST /cosignature body against the log's
// verifier and the editor's entry in the bundle in force, and returns the
// request and the checkpoint's tree. Its errors are the wire refusals:
// errCosignMalformed, errCosignNotOurs, errCosignSigner, errCosignTime. It does not check
// the tree against the log (the caller reads the log's hashes).
func openCosignature(b []byte, logV note.Verifier, editor *crypto.Editor) (*cosignRequest, tlog.Tree, *protocol.Error) {
	req, err := splitCosignature(b)
	if err != nil {
		return nil, tlog.Tree{}, errCosignMalformed
	}
	text, _, _ := bytes.Cut(req.signed, []byte("\n\n"))
	c, err := torchwood.ParseCheckpoint(string(text) + "\n")
	if err != nil {
		return nil, tlog.Tree{}, errCosignMalformed
	}
	// The log's own part: its origin, its key, one signature, its one
	// encoding (openCheckpoint); anything else is another log's.
	if c.Origin != logV.Name() {
		return nil, tlog.Tree{}, errCosignNotOurs
	}
	tree, err := openCheckpoint(req.signed, logV)
	if err != nil {
		return nil, tlog.Tree{}, errCosignNotOurs
	}
	if editor == nil || req.sig.Name != crypto.CosignName(editor.Label) {
		return nil, tlog.Tree{}, errCosignSigner
	}
	cv, err := crypto.CosignatureVerifier(editor.Cosign)
	if err != nil || req.sig.Hash != cv.KeyHash() {
		return nil, tlog.Tree{}, errCosignSigner
	}
	n, err := note.Open(b, note.VerifierList(logV, cv))
	if err != nil || len(n.Sigs) != 2 || len(n.UnverifiedSigs) != 0 {
		return nil, tlog.Tree{}, errCosignSigner
	}
	// The server serves cosignatures to anyone and puts them in claim
	// trails, where no time is finer than a day: a timestamp of the
	// second would publish when the editor synced.
	if _, err := crypto.CosignatureDay(req.sig); errors.Is(err, crypto.ErrCosignatureTime) {
		return nil, tlog.Tree{}, errCosignTime
	} else if err != nil {
		return nil, tlog.Tree{}, errCosignMalformed
	}
	return req, tree, nil
}

// registerCosignRoutes serves editors' cosignatures of the log's
// checkpoints (cosign.go).
func (s *Server) registerCosignRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+protocol.PathCosignature, s.servePostCosignature)
	mux.HandleFunc("GET "+protocol.PathCosigned, s.serveCosignedList)
	mux.HandleFunc("GET "+protocol.PathCosigned+"/{size}", s.serveCosigned)
}

// servePostCosignature stores an editor's cosignature of a checkpoint of
// the log (protocol.PathCosignature) and answers 200 "{}" once it is
// committed.
func (s *Server) servePostCosignature(w http.ResponseWriter, r *http.Request) {
	label, ok := s.editor(w, r)
	if !ok {
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCosignRequest))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeRefusal(w, errCosignTooLarge)
		return
	}
	if err != nil {
		return // the client went away
	}
	l := s.elog()
	req, tree, perr := openCosignature(b, l.verifier, s.bundle.Load().Editor(label))
	if perr != nil {
		writeRefusal(w, perr)
		return
	}
	// A checkpoint of this log's key is of this log's tree only if the
	// log published that size and its tree of that size has that root:
	// anything else is a fork the editor holds evidence of, or an old key.
	head := l.head.Load()
	if head == nil || tree.N < 1 || tree.N > head.tree.N {
		writeRefusal(w, errCosignNotOurs)
		return
	}
	if tree != head.tree {
		h, err := tlog.TreeHash(tree.N, s.store.LogHashes(r.Context()))
		if err != nil {
			writeRefusal(w, s.failed("tree hash of a cosigned checkpoint", err))
			return
		}
		if h != tree.Hash {
			writeRefusal(w, errCosignNotOurs)
			return
		}
	}
	err = s.store.PutCosignature(r.Context(), tree.N, req.signed, storage.Cosignature{
		Editor: label, Name: req.sig.Name, Line: req.line,
	})
	if err != nil {
		writeRefusal(w, s.failed("store cosignature", err))
		return
	}
	s.log.Debug("checkpoint cosigned", attrEditor, label, attrSize, tree.N)
	// A publication waiting for this cosignature is accepted before the
	// answer (claims.go).
	s.retryPending(context.WithoutCancel(r.Context()), tree.N)
	writeJSON(w, struct{}{})
}

// serveCosignedList answers GET /cosigned: "<size> <cosigners>\n" per
// cosigned size, largest first, at most protocol.MaxCosignatures lines.
func (s *Server) serveCosignedList(w http.ResponseWriter, r *http.Request) {
	sizes, err := s.store.CosignedSizes(r.Context(), protocol.MaxCosignatures)
	if err != nil {
		writeRefusal(w, s.failed("list cosigned sizes", err))
		return
	}
	var out []byte
	for _, c := range sizes {
		out = fmt.Appendf(out, "%d %d\n", c.Size, c.Cosigners)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

// serveCosigned answers GET /cosigned/<size>: the checkpoint of that size
// with the log's signature line, then each editor's latest cosignature
// line, sorted by key name.
func (s *Server) serveCosigned(w http.ResponseWriter, r *http.Request) {
	size, err := parseIndex(r.PathValue("size"))
	if err != nil {
		writeRefusal(w, protocol.Errorf(protocol.CodeMalformed, "not a tree size"))
		return
	}
	signed, cosigs, err := s.store.Cosigned(r.Context(), size)
	if errors.Is(err, storage.ErrNotFound) {
		writeRefusal(w, errCosignNotFound)
		return
	}
	if err != nil {
		writeRefusal(w, s.failed("read cosignatures", err))
		return
	}
	out := append([]byte(nil), signed...)
	for _, c := range cosigs {
		out = append(out, c.Line...)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}
