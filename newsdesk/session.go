package newsdesk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/protocol"

	"golang.org/x/mod/sumdb/tlog"
)

// SessionConfig is what a Session is opened with.
type SessionConfig struct {
	// Cache is the cache directory (DefaultCacheDir when empty).
	Cache string
	// Server is the server's URL. Empty opens an offline session, which
	// reads the cache only: Sync, Refresh, Write and Remote refuse.
	Server string
	// Key is the editor's key, unlocked once by the caller.
	Key *crypto.EditorKey
	// Newsroom, if set, is the newsroom verifier key to pin; otherwise the
	// key the first bundle names is pinned (trust on first use).
	Newsroom string
	// NoCosign skips sending the editor's cosignatures (Sync and Write).
	NoCosign bool
	// Pulled, if set, is called with each new tip id Sync pulls.
	Pulled func(id string)
	// Now dates events (default time.Now).
	Now func() time.Time
}

// Session is one editor's run of newsdesk: it is opened once, and every
// command, and the console, goes through it. It holds the parsed server
// URL, one HTTP client, one login (renewed when it expires or the server
// ends it), the editor's unlocked key, the verified log in memory and the
// editorial state replayed from it, advanced event by event: each Sync,
// Refresh and Write decrypts only the events that are new. Between runs
// the replayed bodies and the tips' summaries are kept in the cache, sealed
// with a key derived from the editor's key (docs/newsdesk.md, "The sealed
// index"), never as plaintext.
//
// A Session is safe for use by several goroutines: its methods run one at
// a time. What State, Editorial and View return belongs to the session
// and changes with the next Sync, Refresh or Write; read it from the
// goroutine that calls them, or between calls.
type Session struct {
	mu    sync.Mutex
	cfg   SessionConfig
	cache *Cache
	key   *crypto.EditorKey
	ident *hintedIdentity
	url   protocol.ServerURL // zero offline
	hc    *http.Client
	// loginMu guards remote: a pull's fetchers share the login.
	loginMu sync.Mutex
	remote  *Remote
	// bundle is the newest verified bundle: the cache's, or the server's
	// since Sync.
	bundle *crypto.Bundle
	// view is the verified log (Tree.N == 0 before any sync).
	view   *LogView
	replay *replayer
	tips   *tipIndex
	now    func() time.Time
	// dirty is set when the sealed index is behind what the session
	// holds.
	dirty bool
	// warnings are what the last Sync found that changed nothing.
	warnings []string

	// testOnlySignOver, if set, returns the view the write's attempt
	// signs over instead of the session's (a test forces a conflict).
	testOnlySignOver func(attempt int, v *LogView) *LogView
}

// OpenSession opens the cache and the log replica it holds (checked
// again: checkpoint signature, every entry), and replays the log into
// memory: from the sealed index of an earlier run when it covers a prefix
// of the replica, decrypting only the events after it. It does not
// contact the server.
func OpenSession(ctx context.Context, cfg SessionConfig) (*Session, error) {
	if cfg.Key == nil {
		return nil, errors.New("open session: no editor key")
	}
	if cfg.Cache == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		cfg.Cache = d
	}
	s := &Session{cfg: cfg, cache: &Cache{Dir: cfg.Cache}, key: cfg.Key, ident: newHintedIdentity(cfg.Key.Identity), now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Server != "" {
		u, err := protocol.ParseServerURL(cfg.Server)
		if err != nil {
			return nil, err
		}
		s.url, s.hc = u, bodyClient()
	}
	snap := s.loadSnapshot()
	if s.cache.hasBundle() {
		b, err := s.cache.Bundle()
		if err != nil {
			return nil, err
		}
		s.bundle = b
		if s.view, err = openReplica(ctx, filepath.Join(s.cache.Dir, "log"), b.Newsroom, b.Log, snap.tree()); err != nil {
			return nil, err
		}
	}
	s.replay = newReplayer(s.key, s.ident)
	if s.view != nil {
		restored := snap != nil && s.replay.restore(s.view, snap)
		if err := s.replay.advance(s.view); err != nil {
			return nil, err
		}
		s.dirty = !restored || s.replay.size != snap.Log.N
	}
	s.tips = newTipIndex(snap)
	return s, nil
}

// Close saves the sealed index if the session holds more than it, and
// closes the session's connections. The session is not to be used after.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hc != nil {
		s.hc.CloseIdleConnections()
	}
	if !s.dirty && !s.tips.dirty {
		return nil
	}
	return s.saveSnapshot()
}

// Key returns the session's editor key.
func (s *Session) Key() *crypto.EditorKey { return s.key }

// Cache returns the session's cache.
func (s *Session) Cache() *Cache { return s.cache }

// Online reports whether the session has a server.
func (s *Session) Online() bool { return s.hc != nil }

// Bundle returns the newest verified bundle the session knows: the
// cache's, or the server's since Sync; nil before any.
func (s *Session) Bundle() *crypto.Bundle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bundle
}

// View returns the verified log, or nil before the cache held any.
func (s *Session) View() *LogView {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.view == nil || s.view.Tree.N == 0 {
		return nil
	}
	return s.view
}

// State returns the editorial state replayed from the verified log (an
// empty state before any sync).
func (s *Session) State() *audit.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replay.state
}

// Editorial returns the replayed state with the events opened, those the
// editor cannot read and the warnings of the replay.
func (s *Session) Editorial() *Editorial {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replay.editorial()
}

// Warnings returns what the last Sync found that changed nothing (bodies
// handed over that do not open, tips the key cannot open).
func (s *Session) Warnings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.warnings)
}

// Remote returns the session's login, logging in (or again, when the
// token is about to expire) if need be.
func (s *Session) Remote(ctx context.Context) (*Remote, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.login(ctx)
}

// Call runs f with the session's login, and once more with a new login
// if the server refused the first as unauthorized (a session ends when
// it expires and when a new bundle is put in force).
func (s *Session) Call(ctx context.Context, f func(*Remote) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.call(ctx, f)
}

// ErrOffline: the session has no server.
var ErrOffline = errors.New("no server given (--server): this needs the server")

// loginMargin is how long before its expiry a login is renewed.
const loginMargin = 30 * time.Second

// login returns the session's login, logging in if there is none or it
// is about to expire.
func (s *Session) login(ctx context.Context) (*Remote, error) {
	return s.loginAfter(ctx, false, nil)
}

// loginAfter is login; with force, it logs in again unless the login is
// no longer old, the one the server refused (another caller renewed it
// meanwhile).
func (s *Session) loginAfter(ctx context.Context, force bool, old *Remote) (*Remote, error) {
	if s.hc == nil {
		return nil, ErrOffline
	}
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	if r := s.remote; r != nil && (!force || r != old) && (r.expires.IsZero() || s.now().Add(loginMargin).Before(r.expires)) {
		return r, nil
	}
	s.remote = nil
	r, err := login(ctx, s.hc, s.url, s.key)
	if err != nil {
		if why := s.notListed(); why != nil {
			return nil, fmt.Errorf("%w (%w)", why, err)
		}
		return nil, err
	}
	s.remote = r
	return r, nil
}

func (s *Session) call(ctx context.Context, f func(*Remote) error) error {
	r, err := s.login(ctx)
	if err != nil {
		return err
	}
	err = f(r)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeUnauthorized {
		return err
	}
	r, lerr := s.loginAfter(ctx, true, r)
	if lerr != nil {
		return fmt.Errorf("%w (and logging in again: %w)", err, lerr)
	}
	return f(r)
}

// ErrNotAnEditor: the bundle in force does not list the session's key.
var ErrNotAnEditor = errors.New("this key is not an editor's in the bundle in force")

// notListed says, in one line, why the bundle the session knows does not
// let this key in: revoked, not listed, or listed with another key; nil
// if it does.
func (s *Session) notListed() error {
	b := s.bundle
	if s.view != nil && s.view.Bundle != nil && (b == nil || s.view.Bundle.Version > b.Version) {
		b = s.view.Bundle
	}
	if b == nil {
		return nil
	}
	label := s.key.Label
	switch e := b.Editor(label); {
	case slices.Contains(b.Revoked, label):
		return fmt.Errorf("%w: bundle version %d revokes %s; ask the newsroom", ErrNotAnEditor, b.Version, label)
	case e == nil:
		return fmt.Errorf("%w: bundle version %d does not list %s; ask the newsroom to add you", ErrNotAnEditor, b.Version, label)
	case e.Sign != s.key.Public.Sign:
		return fmt.Errorf("%w: bundle version %d lists another key for %s (re-keyed?); use that key file", ErrNotAnEditor, b.Version, label)
	}
	return nil
}

// SyncReport is what a Sync did.
type SyncReport struct {
	// Pulled are the ids of the tips pulled, in arrival order.
	Pulled []string
	// Dropped are the ids of cached tips removed because the log deletes
	// them.
	Dropped []string
	// Tree is the verified log; Bundle the bundle in force at its end.
	Tree   tlog.Tree
	Bundle *crypto.Bundle
}

// Sync brings the session up to the server: it fetches the server's
// bundle (verified against the pinned newsroom key, pinning it on first
// use, and refused if older than the cached one), pulls the new tips
// (each receipt verified and each ciphertext checked against it, then
// decrypted in memory for the inbox), brings the log up to the server's
// checkpoint (Refresh), checks every receipts tree against the tips
// pulled (receiptscheck.go), removes from the cache the tips the log
// deletes, and sends the editor's cosignature of the checkpoint.
func (s *Session) Sync(ctx context.Context) (*SyncReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.fetchBundle(ctx)
	if err != nil {
		return nil, err
	}
	rep := &SyncReport{}
	// The receipts check compares the trees with the tips pulled: pull
	// first, so that a tip that arrived since is not taken for one the
	// server never handed over.
	if rep.Pulled, err = s.pull(ctx, b); err != nil {
		return rep, err
	}
	if err := s.refresh(ctx, b.Log); err != nil {
		return rep, err
	}
	notes, err := s.checkReceipts(ctx)
	if err != nil {
		return rep, err
	}
	if rep.Dropped, err = s.dropDeleted(); err != nil {
		return rep, err
	}
	s.removeHandedOver(rep.Dropped)
	if err := s.fetchHandedOver(ctx); err != nil {
		return rep, err
	}
	s.warnings = append(s.replay.editorial().Warnings, notes...)
	if !s.cfg.NoCosign {
		v := s.view
		if err := s.call(ctx, func(r *Remote) error { return r.cosign(ctx, v.Signed, v.Tree.N, s.key) }); err != nil {
			return rep, err
		}
	}
	rep.Tree, rep.Bundle = s.view.Tree, s.view.Bundle
	return rep, nil
}

// fetchBundle fetches the server's bundle (Cache.refreshBundle: verified
// against the pinned newsroom key, not older than the cached one) and
// refuses it, in one line, if it does not let this key in.
func (s *Session) fetchBundle(ctx context.Context) (*crypto.Bundle, error) {
	if s.hc == nil {
		return nil, ErrOffline
	}
	b, err := s.cache.refreshBundle(ctx, s.hc, s.url, s.cfg.Newsroom)
	if err != nil {
		return nil, err
	}
	s.bundle = b
	if err := s.notListed(); err != nil {
		return nil, err
	}
	return b, nil
}

// Refresh brings the log up to the server's checkpoint, as Sync does,
// without pulling tips, checking receipts trees or cosigning: what a
// write needs before it looks at the state.
func (s *Session) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh(ctx, "")
}

// refresh is Refresh; logKey, when set, is the log key the server's
// bundle names (Sync), otherwise that of the log's bundle in force.
func (s *Session) refresh(ctx context.Context, logKey string) error {
	if s.hc == nil {
		return ErrOffline
	}
	if err := s.ensureView(ctx); err != nil {
		return err
	}
	if logKey == "" {
		logKey = s.logKey()
	}
	if err := s.view.sync(ctx, s.hc, s.url.Origin, logKey); err != nil {
		return err
	}
	return s.advance()
}

// ensureView makes sure the session has a bundle and a (possibly empty)
// replica to extend.
func (s *Session) ensureView(ctx context.Context) error {
	if s.bundle == nil {
		b, err := s.cache.refreshBundle(ctx, s.hc, s.url, s.cfg.Newsroom)
		if err != nil {
			return err
		}
		s.bundle = b
	}
	if s.view == nil {
		v, err := openReplica(ctx, filepath.Join(s.cache.Dir, "log"), s.bundle.Newsroom, s.bundle.Log, nil)
		if err != nil {
			return err
		}
		s.view = v
	}
	return nil
}

// logKey returns the log key checkpoints verify with: the log's bundle in
// force, or the session's bundle before the log has one.
func (s *Session) logKey() string {
	if s.view != nil && s.view.Bundle != nil {
		return s.view.Bundle.Log
	}
	return s.bundle.Log
}

// advance replays the events the view holds beyond the state.
func (s *Session) advance() error {
	before := s.replay.size
	if err := s.replay.advance(s.view); err != nil {
		return err
	}
	if s.replay.size != before {
		s.dirty = true
	}
	return nil
}

// advanceTo brings the view up to a checkpoint the session verified in
// a write's acknowledgement, and replays what it adds.
func (s *Session) advanceTo(ctx context.Context, signed []byte) error {
	if err := s.view.extend(ctx, s.hc, s.url.Origin, s.logKey(), signed); err != nil {
		return err
	}
	return s.advance()
}

// writeAttempts is how many times an event is signed, the first time and
// again over a newer checkpoint when the log moved under it or its bundle
// changed (409 conflict or stale_bundle).
const writeAttempts = 3

// Write logs an event saying body, signed over the session's view of the
// log, and returns its index once a checkpoint the log key signed,
// extending that view, includes it (PostEvent). It then brings the view
// and the state up to that checkpoint (the replica on disk too, so that
// an offline inbox or log shows the event) and sends the editor's
// cosignature of it: the acknowledgement proved the event's inclusion and
// the checkpoint's consistency with the view, so an approval can be
// witnessed without another sync.
//
// When the log moved under the view or the bundle in force changed, it
// refreshes and signs again, up to three times in all. When the answer is
// lost (the connection failed, or the server failed), it sends the same
// signed event once more: if the log holds it already (409 replayed), it
// refreshes and returns the index where the verified log holds that very
// entry. A login that expired is renewed. Callers look at State after a
// Refresh to decide what to write; Write does not refresh first.
func (s *Session) Write(ctx context.Context, body *audit.EventBody) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(ctx, body)
}

func (s *Session) write(ctx context.Context, body *audit.EventBody) (int64, error) {
	if s.hc == nil {
		return 0, ErrOffline
	}
	if s.view == nil || s.view.Tree.N == 0 {
		if err := s.refresh(ctx, ""); err != nil {
			return 0, err
		}
	}
	var last error
	for attempt := range writeAttempts {
		if attempt > 0 {
			if err := s.refresh(ctx, ""); err != nil {
				return 0, err
			}
		}
		v := s.view
		if s.testOnlySignOver != nil {
			v = s.testOnlySignOver(attempt, v)
		}
		ev, err := SignEvent(v, s.key, body, s.now())
		if err != nil {
			return 0, err
		}
		index, signed, err := s.post(ctx, v, ev)
		var pe *protocol.Error
		if errors.As(err, &pe) && (pe.Code == protocol.CodeConflict || pe.Code == protocol.CodeStaleBundle) {
			last = err
			continue
		}
		if err != nil {
			return 0, err
		}
		if signed != nil {
			if err := s.advanceTo(ctx, signed); err != nil {
				return index, fmt.Errorf("event %d is logged, but bringing the replica up to it: %w", index, err)
			}
		}
		if !s.cfg.NoCosign {
			v := s.view
			if err := s.call(ctx, func(r *Remote) error { return r.cosign(ctx, v.Signed, v.Tree.N, s.key) }); err != nil {
				return index, fmt.Errorf("event %d is logged, but: %w", index, err)
			}
		}
		return index, nil
	}
	return 0, fmt.Errorf("the log kept moving: %w", last)
}

// post sends ev, signed over v, again once after a lost answer or an expired login. It
// returns the index and the acknowledgement's checkpoint, or, when the
// event was found in the log after a replayed refusal, the index and nil
// (the view then holds it).
func (s *Session) post(ctx context.Context, v *LogView, ev *SignedEvent) (int64, []byte, error) {
	var index int64
	var signed []byte
	err := s.call(ctx, func(r *Remote) (err error) {
		index, signed, err = r.postEvent(ctx, v, ev)
		return err
	})
	var pe *protocol.Error
	var fork *ForkError
	switch {
	case err == nil || errors.As(err, &fork) || ctx.Err() != nil:
		return index, signed, err
	case errors.As(err, &pe) && pe.Code != protocol.CodeInternal && pe.Code != protocol.CodeBusy && pe.Code != protocol.CodeShuttingDown:
		return 0, nil, err
	}
	// The request may have been logged even though no answer came.
	err = s.call(ctx, func(r *Remote) (err error) {
		index, signed, err = r.postEvent(ctx, v, ev)
		return err
	})
	var re *ReplayedError
	if !errors.As(err, &re) {
		return index, signed, err
	}
	index, err = s.find(ctx, ev, re)
	return index, nil, err
}

// find returns the index of ev in the log after the server answered a
// second sending of it with replayed: the verified log must hold that very
// entry, after the event's base.
func (s *Session) find(ctx context.Context, ev *SignedEvent, re *ReplayedError) (int64, error) {
	if err := s.refresh(ctx, ""); err != nil {
		return 0, fmt.Errorf("%w; syncing to find it: %w", re, err)
	}
	entries := s.view.Entries
	if re.Index >= ev.Event.Base.N && re.Index < int64(len(entries)) && bytes.Equal(entries[re.Index], ev.Entry) {
		return re.Index, nil
	}
	for i := ev.Event.Base.N; i < int64(len(entries)); i++ {
		if bytes.Equal(entries[i], ev.Entry) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w, but the log of %d entries does not hold it", re, len(entries))
}
