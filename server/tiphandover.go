package server

// Tips handed over to an editor a later bundle added (protocol/handover.go;
// docs/log.md, "Tips handed over"). The server cannot read what it
// stores: it checks the age file's structure (one recipient stanza of the
// bundle's type), that the label is another editor of the bundle in
// force, and serves it to that editor only. It learns that a handover
// happened, of which tip, to whom, and its size (SECURITY.md).

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"

	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"
)

// Refusals of tip handovers. The texts never echo the request.
var (
	errHandoverNotEditor  = protocol.Errorf(protocol.CodeMalformed, "a tip is handed over to another editor of the bundle in force")
	errHandoverTooLarge   = protocol.Errorf(protocol.CodeTooLarge, "a tip handed over is at most %d bytes", protocol.MaxTipHandover)
	errHandoverCiphertext = protocol.Errorf(protocol.CodeMalformed, "a tip handed over is an age file to one editor, of the bundle's recipient type")
	errHandoverNone       = protocol.Errorf(protocol.CodeNotFound, "nothing handed over to you for that tip")
)

func (s *Server) registerHandoverRoutes(mux *http.ServeMux) {
	mux.HandleFunc("PUT "+protocol.PathTips+"/{id}"+protocol.PathTipHandoverSuffix+"/{label}", s.servePutTipHandover)
	mux.HandleFunc("GET "+protocol.PathTips+"/{id}"+protocol.PathTipHandoverSuffix, s.serveTipHandover)
}

func (s *Server) servePutTipHandover(w http.ResponseWriter, r *http.Request) {
	me, ok := s.editor(w, r)
	if !ok {
		return
	}
	b := s.bundle.Load()
	to := r.PathValue("label")
	id, err := checkTipHandoverPath(r.PathValue("id"), to, me, b)
	if err != nil {
		writeRefusal(w, err)
		return
	}
	ct, err := io.ReadAll(http.MaxBytesReader(w, r.Body, protocol.MaxTipHandover))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeRefusal(w, errHandoverTooLarge)
		return
	}
	if err != nil {
		writeRefusal(w, errTipMalformed)
		return
	}
	if err := checkTipHandoverBody(ct, b); err != nil {
		writeRefusal(w, err)
		return
	}
	switch err := s.store.PutTipHandover(r.Context(), id, to, ct); {
	case errors.Is(err, storage.ErrNotFound):
		writeRefusal(w, errTipNotFound)
		return
	case err != nil:
		writeRefusal(w, s.failed("store tip handover", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("{}\n"))
}

func (s *Server) serveTipHandover(w http.ResponseWriter, r *http.Request) {
	me, ok := s.editor(w, r)
	if !ok {
		return
	}
	id, err := crypto.ParseTipID(r.PathValue("id"))
	if err != nil {
		writeRefusal(w, errNotTipID)
		return
	}
	ct, err := s.store.TipHandover(r.Context(), id, me)
	if errors.Is(err, storage.ErrNotFound) {
		writeRefusal(w, errHandoverNone)
		return
	}
	if err != nil {
		writeRefusal(w, s.failed("read tip handover", err))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(ct)))
	w.Write(ct)
}

// checkTipHandoverPath checks a PUT's tip id and label: a tip id, and
// another editor (than me) of the bundle in force, not revoked.
func checkTipHandoverPath(id, to, me string, b *crypto.Bundle) ([crypto.TipIDSize]byte, error) {
	tip, err := crypto.ParseTipID(id)
	if err != nil {
		return tip, errNotTipID
	}
	if to == me || b.Editor(to) == nil || slices.Contains(b.Revoked, to) {
		return tip, errHandoverNotEditor
	}
	return tip, nil
}

// checkTipHandoverBody checks, with no key, that ct is an age file to one
// recipient of the bundle's type.
func checkTipHandoverBody(ct []byte, b *crypto.Bundle) error {
	if len(ct) > protocol.MaxTipHandover {
		return errHandoverTooLarge
	}
	if crypto.CheckCiphertext(ct, b.StanzaType(), 1) != nil {
		return errHandoverCiphertext
	}
	return nil
}
