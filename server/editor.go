package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
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
	// maxUsedNonces caps the nonces remembered as used; only logins with a
	// valid editor signature add one, so reaching it takes an editor.
	maxUsedNonces = 10000
	// maxSessions caps live editor sessions.
	maxSessions = 10000
)

// sessions holds editor sessions in memory: a restart logs every editor
// out, which is the safe direction.
//
// Challenges are stateless, so that anyone asking for them (the endpoint
// needs no login) costs the server no memory: a nonce is 16 random bytes
// and an HMAC over them and the challenge's expiry under a key that lives
// in memory only. A nonce is remembered, until it expires, only once it
// was used in a login that an editor signed.
type sessions struct {
	key [32]byte

	mu   sync.Mutex
	used map[[crypto.NonceSize]byte]time.Time
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
	ss := &sessions{used: map[[crypto.NonceSize]byte]time.Time{}, tokens: map[[32]byte]session{}}
	rand.Read(ss.key[:])
	return ss
}

// challengeDomain separates the challenge MAC from any other use of the key.
const challengeDomain = "fieldtip/login-challenge/v1\n"

// challengeMAC returns the MAC half of a nonce for its random half and the
// challenge's expiry.
func (ss *sessions) challengeMAC(random []byte, expires time.Time) []byte {
	m := hmac.New(sha256.New, ss.key[:])
	m.Write([]byte(challengeDomain))
	m.Write(random)
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(expires.Unix())))
	return m.Sum(nil)[:crypto.NonceSize/2]
}

func (ss *sessions) newNonce(expires time.Time) [crypto.NonceSize]byte {
	var n [crypto.NonceSize]byte
	rand.Read(n[:crypto.NonceSize/2])
	copy(n[crypto.NonceSize/2:], ss.challengeMAC(n[:crypto.NonceSize/2], expires))
	return n
}

// useNonce checks that nonce was issued by this server for a challenge
// expiring at expires, that it has not expired and was not used, and marks
// it used. The caller holds ss.mu.
func (ss *sessions) useNonce(nonce [crypto.NonceSize]byte, expires, now time.Time) bool {
	if !hmac.Equal(nonce[crypto.NonceSize/2:], ss.challengeMAC(nonce[:crypto.NonceSize/2], expires)) {
		return false
	}
	if !now.Before(expires) || expires.After(now.Add(challengeTTL)) {
		return false
	}
	if _, used := ss.used[nonce]; used {
		return false
	}
	if len(ss.used) >= maxUsedNonces {
		ss.prune(now)
		if len(ss.used) >= maxUsedNonces {
			return false
		}
	}
	ss.used[nonce] = expires
	return true
}

func (ss *sessions) prune(now time.Time) {
	for n, exp := range ss.used {
		if !now.Before(exp) {
			delete(ss.used, n)
		}
	}
	for t, s := range ss.tokens {
		if !now.Before(s.expires) {
			delete(ss.tokens, t)
		}
	}
}

func (s *Server) serveChallenge(w http.ResponseWriter, r *http.Request) {
	exp := s.now().Add(challengeTTL).UTC().Truncate(time.Second)
	nonce := s.sessions.newNonce(exp)
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

	errLoginTooLarge   = protocol.Errorf(protocol.CodeTooLarge, "login note larger than %d bytes", crypto.MaxLoginSize)
	errTooManySessions = protocol.Errorf(protocol.CodeBusy, "too many editor sessions")
	// errLogInFirst and errSessionLost are 401 (statusExceptions).
	errLogInFirst  = protocol.Errorf(protocol.CodeUnauthorized, "log in first")
	errSessionLost = protocol.Errorf(protocol.CodeUnauthorized, "session unknown or expired; log in again")
)

// Refusals of the editors' tip list and fetch, and of bundle publication.
var (
	errTipListQuery   = protocol.Errorf(protocol.CodeMalformed, "after must be a cursor and limit 1 to %d", protocol.MaxTipList)
	errNotTipID       = protocol.Errorf(protocol.CodeMalformed, "not a tip id")
	errBundleTooLarge = protocol.Errorf(protocol.CodeTooLarge, "bundle larger than %d bytes", crypto.MaxBundleSize)
	errBundleNewsroom = protocol.Errorf(protocol.CodeUnauthorized, "bundle does not verify against this server's newsroom key")
	// errBundleLogKey is 409 (statusExceptions).
	errBundleLogKey  = protocol.Errorf(protocol.CodeMalformed, "bundle names another log key than this server's")
	errBundleExpired = protocol.Errorf(protocol.CodeStaleBundle, "bundle has expired")
)

func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	msg, err := io.ReadAll(http.MaxBytesReader(w, r.Body, crypto.MaxLoginSize))
	if err != nil {
		writeRefusal(w, errLoginTooLarge)
		return
	}
	b := s.bundle.Load()
	l, err := crypto.OpenLogin(msg, b)
	switch {
	case errors.Is(err, crypto.ErrUnknownSigner), errors.Is(err, crypto.ErrBadSignature):
		writeRefusal(w, errNotEditor)
		return
	case err != nil:
		writeRefusal(w, errBadLogin)
		return
	}
	now := s.now()
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	// A nonce is used once, whatever the outcome after this point.
	if !s.sessions.useNonce(l.Nonce, l.Expires, now) {
		writeRefusal(w, errNonce)
		return
	}
	if l.Origin != s.Origin() {
		writeRefusal(w, errOrigin)
		return
	}
	if len(s.sessions.tokens) >= maxSessions {
		s.sessions.prune(now)
		if len(s.sessions.tokens) >= maxSessions {
			writeRefusal(w, errTooManySessions)
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
		writeRefusal(w, errLogInFirst)
		return "", false
	}
	s.sessions.mu.Lock()
	sess, ok := s.sessions.tokens[sha256.Sum256(raw)]
	s.sessions.mu.Unlock()
	if e := s.bundle.Load().Editor(sess.editor); !ok || !s.now().Before(sess.expires) || e == nil || e.Sign != sess.sign {
		writeRefusal(w, errSessionLost)
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
		writeRefusal(w, errTipListQuery)
		return
	}
	tips, err := s.store.ListTips(r.Context(), after, limit)
	if err != nil {
		writeRefusal(w, s.failed("list tips", err))
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
		writeRefusal(w, errNotTipID)
		return
	}
	ct, err := s.store.TipCiphertext(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		writeRefusal(w, errTipNotFound)
		return
	}
	if err != nil {
		writeRefusal(w, s.failed("read tip", err))
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
//
// It answers success only once the bundle is in the log (logBundleInForce:
// committed and pinned), so the bundle the log shows in force is always
// the server's. The order is: store, put in force, log, answer. If the
// server stops after the store, the next start loads the stored bundle and
// openLog logs it before anything else; if it is in force and the log
// append fails (answered as internal or busy), the next append logs it
// first (commitLog); a retry is refused as stale_bundle, the version being
// in force already.
func (s *Server) servePublishBundle(w http.ResponseWriter, r *http.Request) {
	msg, err := io.ReadAll(http.MaxBytesReader(w, r.Body, crypto.MaxBundleSize))
	if err != nil {
		writeRefusal(w, errBundleTooLarge)
		return
	}
	b, err := crypto.OpenBundle(msg, s.newsroom)
	if err != nil {
		writeRefusal(w, errBundleNewsroom)
		return
	}
	if b.Log != s.logKey.Verifier {
		writeRefusal(w, errBundleLogKey)
		return
	}
	if b.Expired(s.now()) {
		writeRefusal(w, errBundleExpired)
		return
	}
	s.publishMu.Lock()
	defer s.publishMu.Unlock()
	// The write must not be abandoned halfway because the publisher hung
	// up: a bundle stored but not put in force would block every retry
	// until a restart. (logBundleInForce is bounded by CommitTimeout.)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.CommitTimeout)
	defer cancel()
	cur := s.bundle.Load()
	if b.Version <= cur.Version {
		writeRefusal(w, protocol.Errorf(protocol.CodeStaleBundle, "bundle version %d is not above the version in force, %d", b.Version, cur.Version))
		return
	}
	if err := s.store.PutBundle(ctx, b.Version, b.Signed(), crypto.Day(s.now())); err != nil {
		// An earlier attempt whose outcome was unknown may have stored it.
		if stored, lerr := s.store.LatestBundle(ctx); lerr != nil || !bytes.Equal(stored, b.Signed()) {
			writeRefusal(w, s.failed("store bundle", err))
			return
		}
	}
	s.grace.Store(graceFor(cur, b, crypto.Day(s.now()), s.cfg.BundleGrace))
	s.bundle.Store(b)
	s.log.Info("bundle published", attrVersion, b.Version, attrGrace, s.grace.Load() != nil)
	if _, err := s.logBundleInForce(ctx); err != nil {
		// In force and stored, not yet logged: it is logged before the
		// next entry, or at the next start.
		s.log.Error("log the published bundle", attrVersion, b.Version, attrErr, err)
		writeRefusal(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	b, err := jsonMarshal(v)
	if err != nil {
		writeRefusal(w, err)
		return
	}
	w.Write(b)
}
