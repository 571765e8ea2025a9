package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"
)

// Login limits.
const (
	// challengeTTL is how long a login challenge may be answered.
	challengeTTL = 60 * time.Second
	// maxChallenges caps outstanding challenges; past it, new ones are
	// refused with CodeBusy until old ones expire.
	maxChallenges = 10000
	// maxSessions caps live editor sessions.
	maxSessions = 10000
)

// sessions holds outstanding login challenges and editor sessions in
// memory: a restart logs every editor out, which is the safe direction.
type sessions struct {
	mu         sync.Mutex
	challenges map[[crypto.NonceSize]byte]time.Time
	// tokens maps SHA-256 of a session token to its session: a map lookup
	// by the token's hash leaks nothing useful through timing.
	tokens map[[32]byte]session
}

type session struct {
	editor string
	// sign is the signing key the editor logged in with: a newer bundle
	// that lists the label with another key (a key rotated after a theft)
	// ends the session too.
	sign    string
	expires time.Time
}

func newSessions() *sessions {
	return &sessions{challenges: map[[crypto.NonceSize]byte]time.Time{}, tokens: map[[32]byte]session{}}
}

func (ss *sessions) prune(now time.Time) {
	for n, exp := range ss.challenges {
		if !now.Before(exp) {
			delete(ss.challenges, n)
		}
	}
	for t, s := range ss.tokens {
		if !now.Before(s.expires) {
			delete(ss.tokens, t)
		}
	}
}

func (s *Server) serveChallenge(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	var nonce [crypto.NonceSize]byte
	rand.Read(nonce[:])
	exp := now.Add(challengeTTL).UTC().Truncate(time.Second)
	s.sessions.mu.Lock()
	if len(s.sessions.challenges) >= maxChallenges {
		s.sessions.prune(now)
	}
	if len(s.sessions.challenges) >= maxChallenges {
		s.sessions.mu.Unlock()
		writeHTTPError(w, http.StatusServiceUnavailable, protocol.Errorf(protocol.CodeBusy, "too many logins in progress"))
		return
	}
	s.sessions.challenges[nonce] = exp
	s.sessions.mu.Unlock()
	writeJSON(w, &protocol.Challenge{
		Origin:  s.Origin(),
		Nonce:   base64.RawURLEncoding.EncodeToString(nonce[:]),
		Expires: exp.Format(time.RFC3339),
	})
}

// Login refusals. The text sent to the client is fixed per reason; none
// echoes what the client sent.
var (
	errNotEditor = protocol.Errorf(protocol.CodeUnauthorized, "login not signed by an editor of the bundle in force")
	errBadLogin  = protocol.Errorf(protocol.CodeUnauthorized, "login note malformed")
	errNonce     = protocol.Errorf(protocol.CodeUnauthorized, "login challenge unknown, used or expired")
	errOrigin    = protocol.Errorf(protocol.CodeUnauthorized, "login note made for another origin")
)

func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	msg, err := io.ReadAll(http.MaxBytesReader(w, r.Body, crypto.MaxLoginSize))
	if err != nil {
		writeHTTPError(w, http.StatusRequestEntityTooLarge, protocol.Errorf(protocol.CodeTooLarge, "login note larger than %d bytes", crypto.MaxLoginSize))
		return
	}
	b := s.bundle.Load()
	l, err := crypto.OpenLogin(msg, b)
	switch {
	case errors.Is(err, crypto.ErrUnknownSigner), errors.Is(err, crypto.ErrBadSignature):
		writeHTTPError(w, http.StatusForbidden, errNotEditor)
		return
	case err != nil:
		writeHTTPError(w, http.StatusBadRequest, errBadLogin)
		return
	}
	now := s.now()
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	exp, ok := s.sessions.challenges[l.Nonce]
	// A nonce is used once, whatever the outcome.
	delete(s.sessions.challenges, l.Nonce)
	if !ok || !now.Before(exp) || !l.Expires.Equal(exp) {
		writeHTTPError(w, http.StatusForbidden, errNonce)
		return
	}
	if l.Origin != s.Origin() {
		writeHTTPError(w, http.StatusForbidden, errOrigin)
		return
	}
	if len(s.sessions.tokens) >= maxSessions {
		s.sessions.prune(now)
		if len(s.sessions.tokens) >= maxSessions {
			writeHTTPError(w, http.StatusServiceUnavailable, protocol.Errorf(protocol.CodeBusy, "too many editor sessions"))
			return
		}
	}
	var token [32]byte
	rand.Read(token[:])
	sexp := now.Add(s.cfg.SessionTTL).UTC().Truncate(time.Second)
	s.sessions.tokens[sha256.Sum256(token[:])] = session{editor: l.Editor, sign: b.Editor(l.Editor).Sign, expires: sexp}
	s.log.Info("editor logged in", attrEditor, l.Editor)
	writeJSON(w, &protocol.Session{
		Token:   base64.RawURLEncoding.EncodeToString(token[:]),
		Editor:  l.Editor,
		Expires: sexp.Format(time.RFC3339),
	})
}

// editor authenticates a request: a live session whose editor is still in
// the bundle in force with the key they logged in with (a newer bundle that
// drops, revokes or rekeys an editor ends their sessions at once).
func (s *Server) editor(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if !ok || err != nil || len(raw) != 32 {
		writeHTTPError(w, http.StatusUnauthorized, protocol.Errorf(protocol.CodeUnauthorized, "log in first"))
		return "", false
	}
	s.sessions.mu.Lock()
	sess, ok := s.sessions.tokens[sha256.Sum256(raw)]
	s.sessions.mu.Unlock()
	if e := s.bundle.Load().Editor(sess.editor); !ok || !s.now().Before(sess.expires) || e == nil || e.Sign != sess.sign {
		writeHTTPError(w, http.StatusUnauthorized, protocol.Errorf(protocol.CodeUnauthorized, "session unknown or expired; log in again"))
		return "", false
	}
	return sess.editor, true
}

func (s *Server) serveListTips(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.editor(w, r); !ok {
		return
	}
	after, err1 := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	limit, err2 := strconv.Atoi(r.URL.Query().Get("limit"))
	if r.URL.Query().Get("after") == "" {
		after, err1 = 0, nil
	}
	if r.URL.Query().Get("limit") == "" {
		limit, err2 = protocol.MaxTipList, nil
	}
	if err1 != nil || err2 != nil || after < 0 || limit < 1 || limit > protocol.MaxTipList {
		writeHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeMalformed, "after must be a cursor and limit 1 to %d", protocol.MaxTipList))
		return
	}
	tips, err := s.store.ListTips(r.Context(), after, limit)
	if err != nil {
		s.log.Error("list tips", attrErr, err)
		writeHTTPError(w, http.StatusInternalServerError, protocol.Errorf(protocol.CodeInternal, "internal error"))
		return
	}
	out := &protocol.TipList{Tips: []protocol.TipInfo{}}
	for _, t := range tips {
		out.Tips = append(out.Tips, protocol.TipInfo{
			Seq: t.Seq, ID: crypto.FormatTipID(t.ID), Day: t.Day, BundleVersion: t.BundleVersion,
			Length: t.Length, SHA256: hex.EncodeToString(t.SHA256[:]), Receipt: string(t.Receipt),
		})
	}
	writeJSON(w, out)
}

func (s *Server) serveTip(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.editor(w, r); !ok {
		return
	}
	id, err := crypto.ParseTipID(r.PathValue("id"))
	if err != nil {
		writeHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeMalformed, "not a tip id"))
		return
	}
	ct, err := s.store.TipCiphertext(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		writeHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "no such tip"))
		return
	}
	if err != nil {
		s.log.Error("read tip", attrErr, err)
		writeHTTPError(w, http.StatusInternalServerError, protocol.Errorf(protocol.CodeInternal, "internal error"))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(ct)))
	w.Write(ct)
}

func (s *Server) serveBundle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(s.bundle.Load().Signed())
}

// servePublishBundle puts a newer bundle in force. The newsroom's signature
// is the authority, so anyone may hand one in: it must verify against the
// pinned newsroom key, have a higher version and name this server's log key.
func (s *Server) servePublishBundle(w http.ResponseWriter, r *http.Request) {
	msg, err := io.ReadAll(http.MaxBytesReader(w, r.Body, crypto.MaxBundleSize))
	if err != nil {
		writeHTTPError(w, http.StatusRequestEntityTooLarge, protocol.Errorf(protocol.CodeTooLarge, "bundle larger than %d bytes", crypto.MaxBundleSize))
		return
	}
	b, err := crypto.OpenBundle(msg, s.newsroom)
	if err != nil {
		writeHTTPError(w, http.StatusForbidden, protocol.Errorf(protocol.CodeUnauthorized, "bundle does not verify against this server's newsroom key"))
		return
	}
	if b.Log != s.logKey.Verifier {
		writeHTTPError(w, http.StatusConflict, protocol.Errorf(protocol.CodeMalformed, "bundle names another log key than this server's"))
		return
	}
	if b.Expired(s.now()) {
		writeHTTPError(w, http.StatusConflict, protocol.Errorf(protocol.CodeStaleBundle, "bundle has expired"))
		return
	}
	s.publishMu.Lock()
	defer s.publishMu.Unlock()
	if cur := s.bundle.Load(); b.Version <= cur.Version {
		writeHTTPError(w, http.StatusConflict, protocol.Errorf(protocol.CodeStaleBundle, "bundle version %d is not above the version in force, %d", b.Version, cur.Version))
		return
	}
	if err := s.store.PutBundle(r.Context(), b.Version, b.Signed(), crypto.Day(s.now())); err != nil {
		s.log.Error("store bundle", attrErr, err)
		writeHTTPError(w, http.StatusInternalServerError, protocol.Errorf(protocol.CodeInternal, "internal error"))
		return
	}
	s.bundle.Store(b)
	s.log.Info("bundle published", attrVersion, b.Version)
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	b, err := jsonMarshal(v)
	if err != nil {
		writeHTTPError(w, http.StatusInternalServerError, protocol.Errorf(protocol.CodeInternal, "internal error"))
		return
	}
	w.Write(b)
}
