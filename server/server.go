// Package server is fieldtipd: the sources' WebSocket endpoint, the
// editors' endpoint and the public documents, over one store.
//
// It promises the trust model of DESIGN.md §2 on its side: it handles
// ciphertext only (it holds no decryption key), it never logs or stores a
// client address or user agent, it stores no time finer than a day (the
// log handler fieldtipd installs prints the day only), and it hands a
// source a signed receipt only after the tip is durably committed. Every
// refusal is a typed protocol error, and the limits (connections, message
// size, upload size, staging bytes, uploads and bundle requests per
// connection, per-message and per-session deadlines) are enforced before
// the work they bound. The tests in this package (server_test.go and its
// neighbours) and the end-to-end tests in internal/e2e prove these with
// real sockets, files and keys.
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
	"fieldtip/storage"

	"github.com/gorilla/websocket"
)

// Config is fieldtipd's configuration. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	// DataDir holds fieldtip.db and log.key (created, mode 0700).
	DataDir string
	// Listen is the address of the main listener (sources, and everything
	// else unless PublicListen is set).
	Listen string
	// PublicListen, if set, serves everything but the sources' endpoint.
	PublicListen string
	// SourcePath is the sources' WebSocket path (default "/ws").
	SourcePath string
	// TLSCert and TLSKey, if set, serve TLS on both listeners.
	TLSCert, TLSKey string
	// Origin is the origin editors log in to, scheme://host[:port]
	// (default: http(s)://<the address of the listener serving editors>).
	Origin string
	// PublicOrigin is the origin readers reach the public claim pages at,
	// scheme://host[:port], when it is not Origin: a CDN's or an onion
	// service's name in front of the public listener, while editors log
	// in at another (default: Origin). The pages' absolute links, the
	// feed's and the publication answers' page URLs use it (claims.go).
	PublicOrigin string
	// BundleFile, if set, is a signed bundle to put in force at start if
	// it is newer than the stored one.
	BundleFile string

	// MaxConns caps concurrent source WebSocket connections (default
	// 10,000: about 11 KiB each when idle, SECURITY.md, "Flooding"). At
	// the cap a new one closes the session waiting longest for a message,
	// one without an open upload first (conns.go); only when every session
	// is handling a message is the newcomer refused (busy).
	MaxConns int
	// MaxHTTPConns caps the plain HTTP connections of each listener, the
	// sources' WebSockets not counted (default 2,048). At the cap a new
	// one closes the connection idle longest, never one whose request is
	// being served. Both caps are lowered at start to what the open-file
	// limit allows.
	MaxHTTPConns int
	// MaxUploadSize caps one upload's ciphertext in bytes (default 16 MiB).
	MaxUploadSize int64
	// MaxStagingBytes caps the bytes all unfinished uploads have received
	// and keep on disk (default 256 MiB); at least MaxUploadSize.
	MaxStagingBytes int64
	// MaxUnfinishedUploads caps how many uploads may be open or waiting to
	// be resumed at once (default 4096): each costs a row until it finishes,
	// stalls past its lifetime or expires. At the cap a new upload evicts
	// the stalled one (not open on a connection) with the least bytes
	// acknowledged.
	MaxUnfinishedUploads int
	// UploadExpiry is how long an unfinished upload is kept for its source
	// to resume (default 7 days) once it had 64 KiB acknowledged; each
	// upload gets a random spread of up to a quarter of it on top, counted
	// in whole days, so expiries do not line up with the day the upload
	// began. An upload with fewer bytes acknowledged is kept less after
	// its last progress (StallTimeout, slots.go).
	UploadExpiry time.Duration
	// StallTimeout is how long an unfinished upload that had no byte
	// acknowledged is kept after it opened (default 10 min); one with
	// bytes acknowledged is kept longer in proportion, up to UploadExpiry
	// at 64 KiB (slots.go). At least a minute, at most UploadExpiry.
	StallTimeout time.Duration
	// PurgeInterval is how often expired uploads and stale spent upload ids
	// are deleted (default 1 h).
	PurgeInterval time.Duration
	// PoWParams is the proof-of-work cost written into each new epoch's
	// seed (default crypto.DefaultPoWParams: Argon2id, 1 MiB, t=1, 8 bits).
	PoWParams crypto.PoWParams
	// PoWEpoch is the length of a proof-of-work epoch (default 7 days, at
	// least 1 day: clients refuse shorter ones, FIELD.md).
	PoWEpoch time.Duration
	// BundleGrace is how long after a new bundle is put in force uploads
	// encrypted to the one it replaced are still accepted, unless the new
	// one revokes, removes or re-keys an editor (default 14 days; a
	// negative value turns the grace off).
	BundleGrace time.Duration
	// ReceiptsPeriodDays is the length of a receipts-tree period in days
	// (default 1; 7 for a week). See docs/audit.md, "Receipts tree".
	ReceiptsPeriodDays int
	// ReceiptsTreeSize is the size every receipts tree is padded to with
	// dummy leaves, a power of two (default 1,024).
	ReceiptsTreeSize int64
	// RejectedRetention, if positive, is how long the ciphertext of a tip
	// an editor marked rejected or spam is kept before the purge deletes
	// it (default 0: kept until an editor deletes it).
	RejectedRetention time.Duration
	// MaxUploadsPerConn caps uploads on one connection (default 8).
	MaxUploadsPerConn int
	// FirstMessageTimeout bounds the wait for a source's first message,
	// and for its next one whenever no frame is due (no upload open, or
	// the open one complete and its commit due), plus the time the
	// server's last answer takes at 20 kbit/s (default 10 s: a source
	// sends right behind the upgrade or the answer it reads, FIELD.md).
	FirstMessageTimeout time.Duration
	// ReadTimeout bounds the wait for each data frame of an open upload
	// (default 60 s: a 16 KiB frame takes 7 s at 20 kbit/s).
	ReadTimeout time.Duration
	// MaxSessionTime bounds one source connection, however active (default
	// 5 min: FIELD.md's sources stop at 60 s; a 150 KiB photo takes about
	// 60 s at 20 kbit/s).
	MaxSessionTime time.Duration
	// WriteTimeout bounds each write to a source (default 15 s).
	WriteTimeout time.Duration
	// PingInterval is how often the server pings a source (default 20 s).
	PingInterval time.Duration
	// CommitTimeout bounds the durable write of one tip (default 30 s).
	CommitTimeout time.Duration
	// ShutdownTimeout bounds graceful shutdown (default 30 s).
	ShutdownTimeout time.Duration
	// SessionTTL is how long an editor session lasts (default 15 min).
	SessionTTL time.Duration
	// MaxMailboxBytes caps the unread replies one mailbox holds, in bytes
	// of ciphertext (default 64 KiB: 16 short replies). See docs/replies.md.
	MaxMailboxBytes int64
	// MaxReplies caps the replies stored at once (default 65,536).
	MaxReplies int
	// ReplyExpiry is how long an unread reply is kept (default 90 days).
	ReplyExpiry time.Duration

	// Now is the clock of receipts periods, proof-of-work epochs and
	// expiries (default time.Now): tests and simulations move it.
	Now func() time.Time

	// Logger receives operational events (default: discard). Nothing that
	// identifies a source is ever handed to it.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		DataDir:              "fieldtip-data",
		Listen:               "127.0.0.1:8080",
		SourcePath:           protocol.DefaultSourcePath,
		MaxConns:             10000,
		MaxHTTPConns:         2048,
		MaxUploadSize:        16 << 20,
		MaxStagingBytes:      256 << 20,
		MaxUnfinishedUploads: 4096,
		UploadExpiry:         7 * 24 * time.Hour,
		StallTimeout:         10 * time.Minute,
		PurgeInterval:        time.Hour,
		PoWParams:            crypto.DefaultPoWParams,
		PoWEpoch:             7 * 24 * time.Hour,
		BundleGrace:          14 * 24 * time.Hour,
		MaxUploadsPerConn:    8,
		FirstMessageTimeout:  10 * time.Second,
		ReadTimeout:          60 * time.Second,
		MaxSessionTime:       5 * time.Minute,
		WriteTimeout:         15 * time.Second,
		PingInterval:         20 * time.Second,
		CommitTimeout:        30 * time.Second,
		ShutdownTimeout:      30 * time.Second,
		SessionTTL:           15 * time.Minute,
		MaxMailboxBytes:      defaultMaxMailboxBytes,
		MaxReplies:           defaultMaxReplies,
		ReplyExpiry:          defaultReplyExpiry,
	}
}

func (c *Config) fill() error {
	d := DefaultConfig()
	set := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	set(&c.DataDir, d.DataDir)
	set(&c.Listen, d.Listen)
	set(&c.SourcePath, d.SourcePath)
	for _, p := range []struct {
		dst *time.Duration
		v   time.Duration
	}{{&c.FirstMessageTimeout, d.FirstMessageTimeout}, {&c.ReadTimeout, d.ReadTimeout}, {&c.MaxSessionTime, d.MaxSessionTime}, {&c.WriteTimeout, d.WriteTimeout}, {&c.PingInterval, d.PingInterval},
		{&c.CommitTimeout, d.CommitTimeout}, {&c.ShutdownTimeout, d.ShutdownTimeout}, {&c.SessionTTL, d.SessionTTL},
		{&c.UploadExpiry, d.UploadExpiry}, {&c.StallTimeout, d.StallTimeout}, {&c.PurgeInterval, d.PurgeInterval}, {&c.PoWEpoch, d.PoWEpoch},
		{&c.ReplyExpiry, d.ReplyExpiry}} {
		if *p.dst <= 0 {
			*p.dst = p.v
		}
	}
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.MaxHTTPConns <= 0 {
		c.MaxHTTPConns = d.MaxHTTPConns
	}
	if c.MaxUploadSize <= 0 {
		c.MaxUploadSize = d.MaxUploadSize
	}
	if c.MaxStagingBytes <= 0 {
		c.MaxStagingBytes = d.MaxStagingBytes
	}
	if c.MaxMailboxBytes <= 0 {
		c.MaxMailboxBytes = d.MaxMailboxBytes
	}
	if c.MaxReplies <= 0 {
		c.MaxReplies = d.MaxReplies
	}
	if c.MaxUploadsPerConn <= 0 {
		c.MaxUploadsPerConn = d.MaxUploadsPerConn
	}
	if c.MaxUnfinishedUploads <= 0 {
		c.MaxUnfinishedUploads = d.MaxUnfinishedUploads
	}
	if c.MaxStagingBytes < c.MaxUploadSize {
		return fmt.Errorf("max staging bytes %d is less than the max upload size %d: the largest upload could never finish", c.MaxStagingBytes, c.MaxUploadSize)
	}
	if c.BundleGrace == 0 {
		c.BundleGrace = d.BundleGrace
	}
	if err := fillReceiptsConfig(c); err != nil {
		return err
	}
	if c.PoWParams == (crypto.PoWParams{}) {
		c.PoWParams = d.PoWParams
	}
	if err := c.PoWParams.Check(); err != nil {
		return fmt.Errorf("proof of work: %w", err)
	}
	if c.PoWEpoch < crypto.MinEpochSeconds*time.Second || c.PoWEpoch%time.Second != 0 {
		return fmt.Errorf("proof-of-work epoch %s must be whole seconds and at least %s: clients refuse shorter ones", c.PoWEpoch, crypto.MinEpochSeconds*time.Second)
	}
	if c.UploadExpiry < 24*time.Hour {
		return fmt.Errorf("upload expiry %s is less than a day", c.UploadExpiry)
	}
	if c.StallTimeout < time.Minute || c.StallTimeout > c.UploadExpiry {
		return fmt.Errorf("stall timeout %s is not between a minute and the upload expiry %s", c.StallTimeout, c.UploadExpiry)
	}
	if c.MaxUploadSize > protocol.MaxProofs*protocol.PoWChunkSize {
		return fmt.Errorf("max upload size %d is more than the protocol's %d", c.MaxUploadSize, protocol.MaxProofs*protocol.PoWChunkSize)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if !strings.HasPrefix(c.SourcePath, "/") || c.SourcePath == "/" {
		return fmt.Errorf("source path %q must start with / and name a path", c.SourcePath)
	}
	if c.MaxUploadSize > crypto.MaxTipSize {
		return fmt.Errorf("max upload size %d is more than the tip limit %d", c.MaxUploadSize, crypto.MaxTipSize)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.Origin != "" {
		u, err := protocol.ParseServerURL(c.Origin)
		if err != nil || u.Origin != c.Origin {
			return fmt.Errorf("origin %q must be scheme://host[:port] with scheme http or https", c.Origin)
		}
	}
	if c.PublicOrigin != "" {
		u, err := protocol.ParseServerURL(c.PublicOrigin)
		if err != nil || u.Origin != c.PublicOrigin {
			return fmt.Errorf("public origin %q must be scheme://host[:port] with scheme http or https", c.PublicOrigin)
		}
	}
	return nil
}

// Log attribute keys.
const (
	attrAddr    = "addr"
	attrErr     = "err"
	attrVersion = "version"
	attrInForce = "in_force"
	attrFile    = "file"
	attrEditor  = "editor"
	attrKind    = "kind"
	attrCount   = "count"
	attrGrace   = "grace"

	attrLimit        = "limit"
	attrMaxConns     = "max_conns"
	attrMaxHTTPConns = "max_http_conns"
)

// Server serves one store. Create it with New, serve it with Serve or its
// handlers, stop it with Shutdown.
type Server struct {
	cfg    Config
	store  *storage.Store
	logKey *crypto.SignerKey
	log    *slog.Logger

	bundle    atomic.Pointer[crypto.Bundle]
	publishMu sync.Mutex // serializes bundle publication
	newsroom  string     // pinned newsroom verifier key

	// grace is the bundle the one in force replaced, while uploads
	// encrypted to it are accepted (grace.go), or nil.
	grace atomic.Pointer[graceBundle]
	seeds seeds
	// elogState is the editorial log (log.go), set by openLog in New.
	elogState *editorialLog
	// receiptsMu serializes the receipts work (receipts.go): the purge
	// loop and Purge both run it, and a root is appended only by the
	// holder.
	receiptsMu sync.Mutex
	// periodMu is held for reading by a tip from its receipt day to its
	// durable write, and for writing while a period is stored;
	// receiptFloor, which it guards, is the first day a new tip may be
	// receipted with ("" for any): periodclose.go.
	periodMu     sync.RWMutex
	receiptFloor string
	// claims is the publication state (claims.go).
	claims *claimsState

	upgrader websocket.Upgrader
	// sources holds the source sessions' slots (conns.go).
	sources *sourceConns
	// powSem bounds concurrent proof-of-work checks: each holds
	// PoWParams.MemoryKiB of memory and a core. powChecks counts the
	// upload messages whose Argon2id proofs were checked.
	powSem    chan struct{}
	powChecks atomic.Uint64
	// staging is the bytes unfinished uploads have received; slots are the
	// uploads (slots.go).
	staging atomic.Int64
	slots   *slots
	// active maps the id of each upload open on a connection to its
	// session, so a source resuming on a new connection takes it over from
	// a dead one.
	activeMu sync.Mutex
	active   map[protocol.UploadID]*upload

	origin   atomic.Pointer[string]
	sessions *sessions

	closing   chan struct{}
	closeOnce sync.Once
	handlers  sync.WaitGroup
	// httpConns are the listeners' connection trackers, once Serve runs.
	httpConns []*httpConns

	// now is the clock; tests may replace it before serving.
	now func() time.Time
	// fileTimes resets the data directory's file times (filetimes.go);
	// Run sets it, nil otherwise.
	fileTimes *fileTimes
	// fullLogged is when a full disk was last logged (UnixNano).
	fullLogged atomic.Int64

	// testOnlyBeforeStore, when set, runs in a source session's commit
	// after every check and before the durable write.
	testOnlyBeforeStore func()
	// testOnlyBeforePeriodLock, when set, runs before a period is stored,
	// before it takes the period lock (periodclose.go).
	testOnlyBeforePeriodLock func()
	// testOnlyBeforeWrite, when set, runs in an upload's pipe before each
	// durable write, with what the write holds.
	testOnlyBeforeWrite func(frames int, open, commit bool)
	// testOnlyStallSweeps, when set, replaces the ticker of the stalled
	// uploads' sweep (a test moves the clock and sweeps with Purge, or
	// sends on it).
	testOnlyStallSweeps <-chan time.Time
	// testOnlyBeforeRead, when set, runs in a source session's loop after
	// its shutdown check and before it sets the next read deadline.
	testOnlyBeforeRead func()
	// testOnlyResumeFound, when set, runs in a resume once it found its
	// upload (held by a session, or stored) and before it takes it over.
	testOnlyResumeFound func()
}

// New builds a server over an open store and the server's log key. The
// bundle in force is the newest of the stored ones and cfg.BundleFile; it
// must name logKey, and later bundles must be signed by the same newsroom
// key as the first one the store saw.
func New(ctx context.Context, cfg Config, store *storage.Store, logKey *crypto.SignerKey) (*Server, error) {
	if err := cfg.fill(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		store:    store,
		logKey:   logKey,
		log:      cfg.Logger,
		sources:  newSourceConns(cfg.MaxConns),
		powSem:   make(chan struct{}, runtime.GOMAXPROCS(0)),
		active:   map[protocol.UploadID]*upload{},
		slots:    newSlots(),
		closing:  make(chan struct{}),
		sessions: newSessions(),
		claims:   newClaimsState(),
		now:      time.Now,
	}
	if cfg.Now != nil {
		s.now = cfg.Now
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// An idle connection holds its read buffer, so it is small (large
		// frames are read past it, straight into the message), and none
		// for writing: the pool lends one while a message is written.
		ReadBufferSize:    1024,
		WriteBufferSize:   4096,
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: false,
		// A request that is no WebSocket upgrade gets a typed refusal.
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			if status == http.StatusForbidden {
				writeRefusal(w, errUpgradeOrigin)
				return
			}
			writeRefusal(w, errNotUpgrade)
		},
		// CheckOrigin nil: gorilla accepts a request without an Origin
		// header (every non-browser client) or with a same-host origin.
	}
	if cfg.Origin != "" {
		s.origin.Store(&cfg.Origin)
	}
	if err := s.loadBundle(ctx); err != nil {
		return nil, err
	}
	if err := s.loadGrace(ctx); err != nil {
		return nil, err
	}
	_, staged, err := store.Staged(ctx)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.staging.Store(staged)
	ps, err := store.ListUploadProgress(ctx)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.slots.load(ps, s.now())
	if err := s.openLog(ctx); err != nil {
		return nil, err
	}
	if err := s.loadReceiptFloor(ctx); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return s, nil
}

func (s *Server) loadBundle(ctx context.Context) error {
	stored, err := s.store.LatestBundle(ctx)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("server: %w", err)
	}
	var current *crypto.Bundle
	if stored != nil {
		if current, err = crypto.OpenBundleSelfSigned(stored); err != nil {
			return fmt.Errorf("server: stored bundle: %w", err)
		}
	}
	if s.cfg.BundleFile != "" {
		msg, err := os.ReadFile(s.cfg.BundleFile)
		if err != nil {
			return fmt.Errorf("server: bundle: %w", err)
		}
		b, err := crypto.OpenBundleSelfSigned(msg)
		if err != nil {
			return fmt.Errorf("server: %s: %w", s.cfg.BundleFile, err)
		}
		if current != nil && b.Newsroom != current.Newsroom {
			return fmt.Errorf("server: %s is signed by newsroom key %s, but this server pinned %s", s.cfg.BundleFile, b.Newsroom, current.Newsroom)
		}
		switch {
		case current == nil || b.Version > current.Version:
			if b.Log != s.logKey.Verifier {
				return fmt.Errorf("server: %s names log key %s, but this server's log key is %s", s.cfg.BundleFile, b.Log, s.logKey.Verifier)
			}
			if err := s.store.PutBundle(ctx, b.Version, b.Signed(), crypto.Day(time.Now())); err != nil {
				return fmt.Errorf("server: store bundle: %w", err)
			}
			current = b
		case b.Version < current.Version:
			// A bundle never goes back (a newer one may revoke an
			// editor), but an operator restarting with the file of an
			// older one should hear that it is not the one in force
			// (issue 12), in one line.
			s.log.Warn("ignoring --bundle, older than the bundle in force", attrFile, s.cfg.BundleFile, attrVersion, b.Version, attrInForce, current.Version)
		case !bytes.Equal(b.Signed(), current.Signed()):
			s.log.Warn("ignoring --bundle, which differs from the bundle in force of the same version", attrFile, s.cfg.BundleFile, attrVersion, b.Version)
		}
	}
	if current == nil {
		return errors.New("server: no bundle: give one with --bundle (see newsdesk bundle sign)")
	}
	if current.Log != s.logKey.Verifier {
		return fmt.Errorf("server: the bundle in force (version %d) names log key %s, but this server's log key is %s", current.Version, current.Log, s.logKey.Verifier)
	}
	if err := s.store.SetSettingOnce(ctx, "newsroom", current.Newsroom); err != nil {
		return fmt.Errorf("server: pin newsroom key: %w", err)
	}
	s.newsroom = current.Newsroom
	s.bundle.Store(current)
	if current.Expired(time.Now()) {
		s.log.Warn("the bundle in force has expired: sources will refuse it; sign and publish a new one", attrVersion, current.Version)
	}
	return nil
}

// Bundle returns the bundle in force.
func (s *Server) Bundle() *crypto.Bundle { return s.bundle.Load() }

// SourceHandler serves the sources' WebSocket endpoint at cfg.SourcePath.
func (s *Server) SourceHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+s.cfg.SourcePath, s.serveSource)
	mux.HandleFunc("/", serveNoRoute)
	return mux
}

// PublicHandler serves everything but the sources' endpoint: the bundle,
// health, and the editors' endpoint.
func (s *Server) PublicHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+protocol.PathHealth, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET "+protocol.PathBundle, s.serveBundle)
	mux.HandleFunc("POST "+protocol.PathBundle, s.servePublishBundle)
	mux.HandleFunc("POST "+protocol.PathChallenge, s.serveChallenge)
	mux.HandleFunc("POST "+protocol.PathLogin, s.serveLogin)
	mux.HandleFunc("GET "+protocol.PathTips, s.serveListTips)
	mux.HandleFunc("GET "+protocol.PathTips+"/{id}", s.serveTip)
	mux.HandleFunc("POST "+protocol.PathReplies+"/{mailbox}/{id}", s.servePutReply)
	mux.HandleFunc("/", serveNoRoute)
	s.registerLogRoutes(mux)
	s.registerReceiptRoutes(mux)
	s.registerCosignRoutes(mux)
	s.registerClaimRoutes(mux)
	s.registerHandoverRoutes(mux)
	return mux
}

// Handler serves everything on one listener.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+s.cfg.SourcePath, s.SourceHandler())
	mux.Handle("/", s.PublicHandler())
	return mux
}

// Listeners are the bound sockets Serve uses; Bind opens them so callers
// (and tests) learn the addresses before serving.
type Listeners struct {
	Main, Public net.Listener
}

// Bind opens the configured listeners.
func (s *Server) Bind() (*Listeners, error) {
	l := &Listeners{}
	var err error
	if l.Main, err = net.Listen("tcp", s.cfg.Listen); err != nil {
		return nil, fmt.Errorf("server: listen %s: %w", s.cfg.Listen, err)
	}
	if s.cfg.PublicListen != "" {
		if l.Public, err = net.Listen("tcp", s.cfg.PublicListen); err != nil {
			l.Main.Close()
			return nil, fmt.Errorf("server: listen %s: %w", s.cfg.PublicListen, err)
		}
	}
	if s.origin.Load() == nil {
		scheme := "http"
		if s.cfg.TLSCert != "" {
			scheme = "https"
		}
		editors := l.Main
		if l.Public != nil {
			editors = l.Public
		}
		o := scheme + "://" + editors.Addr().String()
		s.origin.Store(&o)
	}
	return l, nil
}

// Origin returns the origin editors log in to.
func (s *Server) Origin() string {
	if o := s.origin.Load(); o != nil {
		return *o
	}
	return ""
}

// Serve serves on l until ctx is done, then shuts down gracefully: it stops
// accepting, lets every commit in flight finish and answer, refuses what
// comes after with CodeShuttingDown, and returns. It does not close the
// store.
func (s *Server) Serve(ctx context.Context, l *Listeners) error {
	n := 1
	if l.Public != nil {
		n = 2
	}
	httpMax := s.fitFileLimit(n)
	newHTTP := func(ln net.Listener, h http.Handler, idle time.Duration) (*http.Server, net.Listener) {
		hc := newHTTPConns(ln, httpMax, s.cfg.SourcePath)
		s.httpConns = append(s.httpConns, hc)
		return &http.Server{
			Handler:           hc.track(h),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       60 * time.Second,
			WriteTimeout:      120 * time.Second,
			IdleTimeout:       idle,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          log.New(&httpErrorLog{log: s.log}, "", 0),
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ConnState:         hc.connState,
			ConnContext:       hc.connContext,
		}, hc
	}
	var servers []*http.Server
	var lns []net.Listener
	if l.Public != nil {
		hs, ln := newHTTP(l.Main, s.SourceHandler(), sourceHTTPIdleTimeout)
		ps, pln := newHTTP(l.Public, s.PublicHandler(), 60*time.Second)
		servers, lns = append(servers, hs, ps), append(lns, ln, pln)
	} else {
		hs, ln := newHTTP(l.Main, s.Handler(), sourceHTTPIdleTimeout)
		servers, lns = append(servers, hs), append(lns, ln)
	}
	errc := make(chan error, len(servers))
	for i, hs := range servers {
		s.log.Info("listening", attrAddr, lns[i].Addr().String())
		go func() {
			var err error
			if s.cfg.TLSCert != "" {
				err = hs.ServeTLS(lns[i], s.cfg.TLSCert, s.cfg.TLSKey)
			} else {
				err = hs.Serve(lns[i])
			}
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}()
	}
	purgeCtx, stopPurge := context.WithCancel(ctx)
	purged := make(chan struct{})
	go func() { defer close(purged); s.purgeLoop(purgeCtx) }()
	defer func() { stopPurge(); <-purged }()
	if s.fileTimes != nil {
		go func() {
			t := time.NewTicker(fileTimesInterval)
			defer t.Stop()
			for {
				select {
				case <-purgeCtx.Done():
					return
				case <-t.C:
					s.fileTimes.reset(true)
				}
			}
		}()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	s.beginShutdown()
	for _, hs := range servers {
		if err := hs.Shutdown(sctx); err != nil {
			serveErr = errors.Join(serveErr, fmt.Errorf("server: shutdown: %w", err))
		}
	}
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		serveErr = errors.Join(serveErr, errors.New("server: shutdown: source connections still open at the deadline"))
	}
	return serveErr
}

// beginShutdown tells every source connection to stop after what it is
// doing: an idle read is woken at once, a commit in flight finishes.
func (s *Server) beginShutdown() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.sources.each(func(ss *sourceSession) { ss.conn.SetReadDeadline(time.Now()) })
}

func (s *Server) shuttingDown() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// Run is fieldtipd: it opens the data directory, the log key and the
// store, builds the server and serves until ctx is done. ready, if not nil,
// is called with the bound listeners before serving.
func Run(ctx context.Context, cfg Config, ready func(*Server, *Listeners)) error {
	if err := cfg.fill(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("server: data dir: %w", err)
	}
	logKey, err := LoadOrCreateLogKey(cfg.DataDir)
	if err != nil {
		return err
	}
	times := newFileTimes(cfg.DataDir, time.Now, func(path string, err error) {
		cfg.Logger.Warn("cannot set a file's times to the start of the day", attrFile, filepath.Base(path), attrErr, err)
	})
	// Deferred first, so run last: after the store closed.
	defer times.reset(true)
	store, err := storage.Open(filepath.Join(cfg.DataDir, dbFile), storage.Options{Logger: cfg.Logger, AfterWrite: func() { times.reset(false) }})
	if err != nil {
		return err
	}
	defer store.Close()
	s, err := New(ctx, cfg, store, logKey)
	if err != nil {
		return err
	}
	s.fileTimes = times
	times.reset(true)
	l, err := s.Bind()
	if err != nil {
		return err
	}
	if ready != nil {
		ready(s, l)
	}
	return s.Serve(ctx, l)
}
