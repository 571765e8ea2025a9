package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/client"
	"fieldtip/crypto"
	"fieldtip/internal/testkit/sourcekit"
	"fieldtip/protocol"
	"fieldtip/storage"

	"filippo.io/age"
	"github.com/gorilla/websocket"
)

// failAfter bounds every wait on the network in these tests. It is a
// failure bound, never a synchronization: a passing test never reaches it.
const failAfter = 30 * time.Second

// serverOptions shape a test server. The zero value is one classic editor,
// default config and logs to t.Log.
type serverOptions struct {
	// pq selects hybrid post-quantum editor keys (slower to generate).
	pq bool
	// editors is the number of editors in the bundle (default 1).
	editors int
	// config, if set, changes the config before New.
	config func(*Config)
	// logger, if set, replaces the t.Log logger.
	logger *slog.Logger
	// beforeServe, if set, runs after New and before Serve: the place to
	// set the clock and test hooks, before any goroutine reads them.
	beforeServe func(*Server)
}

// testServer is a real server on loopback over a real SQLite file.
type testServer struct {
	tb       testing.TB
	s        *Server
	store    *storage.Store
	dir      string
	cfg      Config
	newsroom *crypto.SignerKey
	logKey   *crypto.SignerKey
	editors  []*crypto.EditorKey
	bundle   *crypto.Bundle // the bundle the server started with
	clock    *testClock

	// addr is the main listener (sources, and everything unless
	// PublicListen is set); public is the public listener or "".
	addr, public string

	// receipts are the tips this server acknowledged, checked by intact.
	receipts []*crypto.Receipt

	// sweeps sweeps stalled uploads (slots.go) on the server, when a test
	// sends on it.
	sweeps chan time.Time

	// beforeServe is serverOptions.beforeServe, run again by restart.
	beforeServe func(*Server)
	cancel      context.CancelFunc
	served      chan error
	stopOnce    *sync.Once

	// seeds caches the server's signed seed of each epoch (seed), and
	// secrets the resume secret of each upload newUpload made.
	mu      sync.Mutex
	seeds   map[int64]*cachedSeed
	secrets map[protocol.UploadID][32]byte
}

// cheapPoW is the proof-of-work cost of test servers: real Argon2id, a few
// tries, so that tests sending many uploads stay fast. It is
// internal/testkit/fieldtiptest.CheapPoW, which this package's tests cannot
// import (fieldtiptest imports server); TestDefaultPoWCost runs the default
// cost.
var cheapPoW = crypto.PoWParams{MemoryKiB: 64, Time: 1, Bits: 2}

// testClock is the server's clock in tests: wall time plus an offset a test
// may move forward while the server runs. The real client of ts.send uses
// it too, so the two agree on bundle expiry and proof-of-work epochs.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// newTestServer builds, binds and serves a server; cleanup stops it (and
// checks that Serve returned nil) and closes the store.
func newTestServer(tb testing.TB, opts serverOptions) *testServer {
	tb.Helper()
	if opts.editors == 0 {
		opts.editors = 1
	}
	logger := opts.logger
	if logger == nil {
		logger = testLogger(tb)
	}
	ts := &testServer{tb: tb, dir: tb.TempDir(), clock: &testClock{}, beforeServe: opts.beforeServe}
	ts.newsroom = newSignerKey(tb, crypto.NewsroomKeyHeader, "test-newsroom")
	ts.logKey = newSignerKey(tb, crypto.LogKeyHeader, DefaultLogName)
	for i := range opts.editors {
		ts.editors = append(ts.editors, newEditorKey(tb, fmt.Sprintf("editor-%d", i), !opts.pq))
	}
	ts.bundle = ts.makeBundle(tb, 1, nil)
	bundleFile := filepath.Join(ts.dir, "bundle.txt")
	if err := os.WriteFile(bundleFile, ts.bundle.Signed(), 0o644); err != nil {
		tb.Fatal(err)
	}

	var err error
	ts.store, err = storage.Open(filepath.Join(ts.dir, "fieldtip.db"), storage.Options{Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := ts.store.Close(); err != nil {
			tb.Errorf("store.Close() = %v", err)
		}
	})

	ts.cfg = Config{
		DataDir:    ts.dir,
		Listen:     "127.0.0.1:0",
		BundleFile: bundleFile,
		Logger:     logger,
		PoWParams:  cheapPoW,
	}
	if opts.config != nil {
		opts.config(&ts.cfg)
	}
	ts.start(tb)
	// A test runs well within an hour: keep it clear of a proof-of-work
	// epoch boundary, which would change the seed under its feet. Moving
	// back is safe: the client of ts.send uses this clock too.
	epoch := ts.s.cfg.PoWEpoch
	if untilNext := epoch - time.Duration(ts.clock.now().UnixNano())%epoch; untilNext < time.Hour {
		ts.clock.advance(-2 * time.Hour)
	}
	return ts
}

// start builds a server over ts.store with ts.cfg and serves it; cleanup
// stops it.
func (ts *testServer) start(tb testing.TB) {
	tb.Helper()
	var err error
	ts.s, err = New(context.Background(), ts.cfg, ts.store, ts.logKey)
	if err != nil {
		tb.Fatalf("New() = %v", err)
	}
	ts.s.now = ts.clock.now
	// Stalled uploads are swept when a test says (Purge, or sweeps on
	// ts.sweeps), never by the wall clock under a moved test clock.
	ts.sweeps = make(chan time.Time)
	ts.s.testOnlyStallSweeps = ts.sweeps
	if ts.beforeServe != nil {
		ts.beforeServe(ts.s)
	}
	ls, err := ts.s.Bind()
	if err != nil {
		tb.Fatal(err)
	}
	ts.addr = ls.Main.Addr().String()
	if ls.Public != nil {
		ts.public = ls.Public.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	ts.served = make(chan error, 1)
	ts.stopOnce = &sync.Once{}
	go func() { ts.served <- ts.s.Serve(ctx, ls) }()
	tb.Cleanup(ts.stop)
}

// resyncCounts has the server recount its unfinished uploads and staged
// bytes from the store, as its purge does, while nothing is in flight.
//
// TODO(lead): the purge loop's run at Serve stores counts read from the
// store over those sessions keep in memory; a session between its Add and
// its write (a frame, an open, a commit) then leaves them low, below zero
// after a commit, until the next purge (seen: staging -16384 after a
// restart and a resume, about one run in 40). Tests that check the counts
// call this first, or check the store's counts instead; see the report.
func (ts *testServer) resyncCounts(tb testing.TB) {
	tb.Helper()
	ts.s.purge(context.Background())
}

// storedCounts returns the store's count of unfinished uploads and their
// received bytes.
func (ts *testServer) storedCounts(tb testing.TB) (uploads, bytes int64) {
	tb.Helper()
	uploads, bytes, err := ts.store.Staged(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return uploads, bytes
}

// restart shuts the server down, closes its store, and starts a new server
// over a new store on the same data directory, with the same config, log
// key and clock: what an operator's restart does.
func (ts *testServer) restart(tb testing.TB) {
	tb.Helper()
	ts.stop()
	if err := ts.store.Close(); err != nil {
		tb.Fatalf("store.Close() = %v", err)
	}
	var err error
	ts.store, err = storage.Open(filepath.Join(ts.dir, "fieldtip.db"), storage.Options{Logger: ts.cfg.Logger})
	if err != nil {
		tb.Fatal(err)
	}
	ts.start(tb)
}

// stop shuts the server down and waits for Serve, which must return nil.
// It may be called more than once.
func (ts *testServer) stop() {
	ts.stopOnce.Do(func() {
		ts.cancel()
		select {
		case err := <-ts.served:
			if err != nil {
				ts.tb.Errorf("Serve() = %v", err)
			}
		case <-time.After(failAfter):
			ts.tb.Errorf("Serve did not return %v after shutdown began", failAfter)
		}
	})
}

// origin is the base URL of the editors' endpoint and public documents.
func (ts *testServer) origin() string {
	if ts.public != "" {
		return "http://" + ts.public
	}
	return "http://" + ts.addr
}

// wsURL is the sources' endpoint.
func (ts *testServer) wsURL() string { return "ws://" + ts.addr + protocol.DefaultSourcePath }

// makeBundle returns a bundle of the given version listing ts.editors and
// naming ts's log key, changed by edit if set, signed with ts's newsroom
// key.
func (ts *testServer) makeBundle(tb testing.TB, version int64, edit func(*crypto.Bundle)) *crypto.Bundle {
	tb.Helper()
	return ts.makeBundleBy(tb, ts.newsroom, version, edit)
}

// makeBundleBy is makeBundle signed by (and naming) another newsroom key.
func (ts *testServer) makeBundleBy(tb testing.TB, newsroom *crypto.SignerKey, version int64, edit func(*crypto.Bundle)) *crypto.Bundle {
	tb.Helper()
	b := &crypto.Bundle{
		Newsroom: newsroom.Verifier,
		Version:  version,
		Expires:  time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second),
		Log:      ts.logKey.Verifier,
		Policy:   crypto.DefaultPolicy,
	}
	for _, k := range ts.editors {
		b.Editors = append(b.Editors, k.Public)
	}
	if edit != nil {
		edit(b)
	}
	if _, err := crypto.SignBundle(b, newsroom.Signer); err != nil {
		tb.Fatalf("SignBundle() = %v", err)
	}
	return b
}

// newSignerKey generates a newsroom or log key.
func newSignerKey(tb testing.TB, header, name string) *crypto.SignerKey {
	tb.Helper()
	k, err := crypto.GenerateSignerKey(header, name)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// newEditorKey generates an editor key.
func newEditorKey(tb testing.TB, label string, classic bool) *crypto.EditorKey {
	tb.Helper()
	k, err := crypto.GenerateEditorKey(label, classic)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// recipients returns the age recipients of ts's starting bundle.
func (ts *testServer) recipients(tb testing.TB) []age.Recipient {
	tb.Helper()
	rs, err := ts.bundle.Recipients()
	if err != nil {
		tb.Fatal(err)
	}
	return rs
}

// seal seals a tip with the given text to recipients in frames of
// frameSize bytes.
func seal(tb testing.TB, text string, recipients []age.Recipient, frameSize int) []byte {
	tb.Helper()
	ct, err := crypto.Seal(&crypto.Tip{Text: text}, recipients, int64(frameSize))
	if err != nil {
		tb.Fatalf("Seal() = %v", err)
	}
	return ct
}

// send sends a tip with the real client, checks its receipt and records it
// as acknowledged.
func (ts *testServer) send(tb testing.TB, text string) *client.Result {
	tb.Helper()
	return ts.sendWith(tb, text, sourcekit.Options{})
}

func (ts *testServer) sendWith(tb testing.TB, text string, opts sourcekit.Options) *client.Result {
	tb.Helper()
	if opts.Now == nil {
		opts.Now = ts.clock.now
	}
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	res, err := sourcekit.New(tb, "http://"+ts.addr, ts.newsroom.Verifier, opts).Send(ctx, &crypto.Tip{Text: text})
	if err != nil {
		tb.Fatalf("sending a tip: %v", err)
	}
	ts.receipts = append(ts.receipts, res.Receipt)
	return res
}

// intact checks that every tip the server acknowledged is stored whole
// (listed with the receipt's hash and length, its ciphertext hashing to
// the receipt's hash) and that nothing else is stored: a refused session
// leaves no row.
func (ts *testServer) intact(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	metas, err := ts.store.ListTips(ctx, 0, 1<<20)
	if err != nil {
		tb.Fatal(err)
	}
	if len(metas) != len(ts.receipts) {
		tb.Errorf("store holds %d tips, %d were acknowledged", len(metas), len(ts.receipts))
	}
	byID := map[[16]byte]storage.TipMeta{}
	for _, m := range metas {
		byID[m.ID] = m
	}
	for _, r := range ts.receipts {
		m, ok := byID[r.TipID]
		if !ok {
			tb.Errorf("acknowledged tip %s is not listed", r.TipIDString())
			continue
		}
		if m.SHA256 != r.SHA256 || m.Length != r.Length {
			tb.Errorf("tip %s listed with sha256 %x length %d, receipt says %x %d", r.TipIDString(), m.SHA256, m.Length, r.SHA256, r.Length)
		}
		ct, err := ts.store.TipCiphertext(ctx, r.TipID)
		if err != nil {
			tb.Errorf("TipCiphertext(%s) = %v", r.TipIDString(), err)
			continue
		}
		if sha256.Sum256(ct) != r.SHA256 {
			tb.Errorf("tip %s: stored ciphertext does not hash to its receipt's sha256", r.TipIDString())
		}
	}
}

// openReceipt verifies a receipt note against ts's log key and records it.
func (ts *testServer) openReceipt(tb testing.TB, note []byte) *crypto.Receipt {
	tb.Helper()
	r, err := crypto.OpenReceipt(note, ts.logKey.Verifier)
	if err != nil {
		tb.Fatalf("OpenReceipt() = %v", err)
	}
	ts.receipts = append(ts.receipts, r)
	return r
}

// wsConn is a raw source connection speaking the protocol message by
// message.
type wsConn struct {
	tb testing.TB
	ts *testServer
	c  *websocket.Conn
}

var testDialer = &websocket.Dialer{
	HandshakeTimeout: failAfter,
	ReadBufferSize:   4096,
	WriteBufferSize:  protocol.MaxClientMessage + 64,
}

// dial opens a raw source connection; cleanup closes it.
func (ts *testServer) dial(tb testing.TB) *wsConn {
	tb.Helper()
	c, resp, err := testDialer.Dial(ts.wsURL(), nil)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(resp.Body)
			tb.Fatalf("dial %s: %v (%s: %s)", ts.wsURL(), err, resp.Status, body)
		}
		tb.Fatalf("dial %s: %v", ts.wsURL(), err)
	}
	c.SetReadLimit(protocol.MaxServerMessage)
	tb.Cleanup(func() { c.Close() })
	return &wsConn{tb: tb, ts: ts, c: c}
}

// text sends a control message: a protocol value or raw bytes.
func (w *wsConn) text(msg any) {
	w.tb.Helper()
	b, ok := msg.([]byte)
	if !ok {
		b = protocol.Marshal(msg)
	}
	w.write(websocket.TextMessage, b)
}

func (w *wsConn) binary(b []byte) {
	w.tb.Helper()
	w.write(websocket.BinaryMessage, b)
}

func (w *wsConn) write(mt int, b []byte) {
	w.tb.Helper()
	w.c.SetWriteDeadline(time.Now().Add(failAfter))
	if err := w.c.WriteMessage(mt, b); err != nil {
		w.tb.Fatalf("write: %v", err)
	}
}

// frame sends the data frame of ct at offset.
func (w *wsConn) frame(ct []byte, offset int64, frameSize int) {
	w.tb.Helper()
	w.binary(protocol.AppendDataFrame(nil, offset, ct[offset:offset+int64(frameSize)]))
}

// next reads one server message; it returns the read error (a
// *websocket.CloseError once the server closed) instead of a message.
func (w *wsConn) next() (any, error) {
	w.c.SetReadDeadline(time.Now().Add(failAfter))
	mt, data, err := w.c.ReadMessage()
	if err != nil {
		return nil, err
	}
	if mt != websocket.TextMessage {
		return nil, fmt.Errorf("server sent message type %d", mt)
	}
	return protocol.ParseServerMessage(data)
}

// expect reads one message, which must be of type T.
func expect[T any](w *wsConn) T {
	w.tb.Helper()
	m, err := w.next()
	if err != nil {
		w.tb.Fatalf("reading a %T: %v", *new(T), err)
	}
	v, ok := m.(T)
	if !ok {
		w.tb.Fatalf("server sent %T %+v, want %T", m, m, *new(T))
	}
	return v
}

// refusal reads to the end of the session and returns its typed error: the
// last message must be the only error message, followed by a close frame
// whose code suits the error.
func (w *wsConn) refusal() *protocol.Error {
	w.tb.Helper()
	var msgs []any
	var err error
	for {
		var m any
		if m, err = w.next(); err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		w.tb.Fatalf("session ended with %v, want a close frame (messages %+v)", err, msgs)
	}
	if len(msgs) == 0 {
		w.tb.Fatalf("session closed (%v) without an error message", ce)
	}
	e, ok := msgs[len(msgs)-1].(*protocol.Error)
	if !ok {
		w.tb.Fatalf("last message %T %+v, want *protocol.Error", msgs[len(msgs)-1], msgs[len(msgs)-1])
	}
	for _, m := range msgs[:len(msgs)-1] {
		if _, ok := m.(*protocol.Error); ok {
			w.tb.Fatalf("two error messages in one session: %+v", msgs)
		}
	}
	if want := closeCodeFor(e.Code); ce.Code != want {
		w.tb.Errorf("close code %d after %s, want %d", ce.Code, e.Code, want)
	}
	return e
}

// closeCodeFor is the WebSocket close code that follows each error code:
// too large is 1009, try again later 1013, internal 1011, any other
// refusal a policy violation.
func closeCodeFor(c protocol.Code) int {
	switch c {
	case protocol.CodeTooLarge:
		return websocket.CloseMessageTooBig
	case protocol.CodeBusy, protocol.CodeShuttingDown:
		return websocket.CloseTryAgainLater
	case protocol.CodeInternal:
		return websocket.CloseInternalServerErr
	}
	return websocket.ClosePolicyViolation
}

// cachedSeed is a verified seed with its signed note.
type cachedSeed struct {
	seed   *crypto.PoWSeed
	signed []byte
}

// seed returns the server's proof-of-work seed of the current epoch (by
// ts.clock), read as a client reads it: from the answer to a bundle
// request on a new connection, verified against the log key the verified
// bundle names, and current. Seeds are cached by epoch: there is one per
// epoch (TestSeedOnePerEpoch checks that without the cache).
func (ts *testServer) seed(tb testing.TB) *crypto.PoWSeed {
	tb.Helper()
	return ts.seedNote(tb).seed
}

func (ts *testServer) seedNote(tb testing.TB) *cachedSeed {
	tb.Helper()
	epoch := crypto.EpochAt(ts.clock.now(), ts.s.epochSeconds())
	ts.mu.Lock()
	cs := ts.seeds[epoch]
	ts.mu.Unlock()
	if cs != nil {
		return cs
	}
	c := ts.dial(tb)
	defer c.hangUp()
	c.text(&protocol.BundleRequest{Version: protocol.Version})
	reply := expect[*protocol.BundleReply](c)
	seed := ts.openSeed(tb, reply.Bundle, reply.Seed)
	if seed.Epoch != epoch {
		tb.Fatalf("seed of epoch %d, want the current epoch %d", seed.Epoch, epoch)
	}
	cs = &cachedSeed{seed: seed, signed: reply.Seed}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.seeds == nil {
		ts.seeds = map[int64]*cachedSeed{}
	}
	ts.seeds[epoch] = cs
	return cs
}

// openSeed verifies a signed seed as a client does: against the log key
// of the bundle, itself verified against the newsroom key, and current by
// ts.clock.
func (ts *testServer) openSeed(tb testing.TB, bundle, signed []byte) *crypto.PoWSeed {
	tb.Helper()
	b, err := crypto.OpenBundle(bundle, ts.newsroom.Verifier)
	if err != nil {
		tb.Fatalf("OpenBundle() = %v", err)
	}
	seed, err := crypto.OpenPoWSeed(signed, b.Log)
	if err != nil {
		tb.Fatalf("OpenPoWSeed() = %v", err)
	}
	if err := seed.CheckCurrent(ts.clock.now()); err != nil {
		tb.Fatalf("seed of epoch %d: %v", seed.Epoch, err)
	}
	return seed
}

// checkOffsetSeed checks the seed an offset message carries: the signed
// seed of the current epoch, byte for byte the one every session gets.
func (ts *testServer) checkOffsetSeed(tb testing.TB, signed []byte) {
	tb.Helper()
	if want := ts.seedNote(tb).signed; !bytes.Equal(signed, want) {
		tb.Fatalf("offset carries seed %q, want the epoch's seed %q", signed, want)
	}
}

// solve returns the proofs of work of an upload under seed.
func solve(tb testing.TB, seed *crypto.PoWSeed, id protocol.UploadID, length int64) []uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	pow, err := crypto.SolvePoWs(ctx, seed.Params, seed.Seed, id, length)
	if err != nil {
		tb.Fatalf("SolvePoWs() = %v", err)
	}
	return pow
}

// newUpload returns the first message of a new upload of length bytes
// sealed to bundleVersion: a fresh upload id and resume secret (kept for
// resumeMsg), and proofs of work for the server's current seed.
func (ts *testServer) newUpload(tb testing.TB, bundleVersion, length int64, frameSize int) *protocol.Upload {
	tb.Helper()
	up := ts.bareUpload(bundleVersion, length, frameSize)
	seed := ts.seed(tb)
	up.PoWEpoch = seed.Epoch
	if length > 0 {
		up.PoW = solve(tb, seed, up.UploadID, length)
	}
	up.PrePoW = prePoWOf(tb, seed, up)
	return up
}

// prePoWOf returns the pre-proof of up's proofs under seed, whatever they
// are: so that their own check is what proofs meet.
func prePoWOf(tb testing.TB, seed *crypto.PoWSeed, up *protocol.Upload) uint64 {
	tb.Helper()
	pre, err := crypto.SolvePrePoW(context.Background(), seed.Seed, up.UploadID, up.Length, up.PoW)
	if err != nil {
		tb.Fatalf("SolvePrePoW() = %v", err)
	}
	return pre
}

// failingPrePoW returns a nonce that is not a pre-proof of up's proofs.
func failingPrePoW(seed *crypto.PoWSeed, up *protocol.Upload) uint64 {
	n := uint64(1) << 63
	for crypto.CheckPrePoW(seed.Seed, up.UploadID, up.Length, up.PoW, n) {
		n++
	}
	return n
}

// bareUpload is newUpload without proofs of work.
func (ts *testServer) bareUpload(bundleVersion, length int64, frameSize int) *protocol.Upload {
	up := &protocol.Upload{Version: protocol.Version, BundleVersion: bundleVersion, Length: length, FrameSize: frameSize}
	rand.Read(up.UploadID[:])
	var secret [32]byte
	rand.Read(secret[:])
	up.ResumeHash = sha256.Sum256(secret[:])
	ts.mu.Lock()
	if ts.secrets == nil {
		ts.secrets = map[protocol.UploadID][32]byte{}
	}
	ts.secrets[up.UploadID] = secret
	ts.mu.Unlock()
	return up
}

// resumeMsg returns the resume message of an upload newUpload made.
func (ts *testServer) resumeMsg(tb testing.TB, id protocol.UploadID) *protocol.Resume {
	tb.Helper()
	ts.mu.Lock()
	secret, ok := ts.secrets[id]
	ts.mu.Unlock()
	if !ok {
		tb.Fatalf("no resume secret for upload %s", id)
	}
	return &protocol.Resume{Version: protocol.Version, UploadID: id, ResumeSecret: secret}
}

// upload sends ct as a whole upload (first message, frames, commit) without
// waiting, then reads the offset, the acks and the receipt.
func (w *wsConn) upload(ts *testServer, ct []byte, frameSize int) *crypto.Receipt {
	w.tb.Helper()
	w.sendUpload(ts.s.Bundle().Version, ct, frameSize)
	w.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
	return ts.openReceipt(w.tb, w.readUpload(int64(len(ct)), frameSize))
}

// sendUpload sends the first message and every frame of ct, and returns
// the first message.
func (w *wsConn) sendUpload(bundleVersion int64, ct []byte, frameSize int) *protocol.Upload {
	w.tb.Helper()
	up := w.ts.newUpload(w.tb, bundleVersion, int64(len(ct)), frameSize)
	w.text(up)
	for off := int64(0); off < int64(len(ct)); off += int64(frameSize) {
		w.frame(ct, off, frameSize)
	}
	return up
}

// readUpload reads the offset (carrying the epoch's seed), the acks of a
// length-byte upload and the receipt note.
func (w *wsConn) readUpload(length int64, frameSize int) []byte {
	w.tb.Helper()
	w.readOffset(0)
	w.readAcks(length)
	return expect[*protocol.ReceiptReply](w).Receipt
}

// readOffset reads an offset message, which must say offset and carry the
// current epoch's seed.
func (w *wsConn) readOffset(offset int64) {
	w.tb.Helper()
	o := expect[*protocol.Offset](w)
	if o.Offset != offset {
		w.tb.Fatalf("offset %d, want %d", o.Offset, offset)
	}
	w.ts.checkOffsetSeed(w.tb, o.Seed)
}

// readAck reads an ack, which must be of offset.
func (w *wsConn) readAck(offset int64) {
	w.tb.Helper()
	if a := expect[*protocol.Ack](w); a.Offset != offset {
		w.tb.Fatalf("ack of offset %d, want %d", a.Offset, offset)
	}
}

// readAcks reads acks up to offset to: the server stores the frames that
// arrived together in one write and acknowledges them with one ack, so
// one ack may cover several frames.
func (w *wsConn) readAcks(to int64) {
	w.tb.Helper()
	for at := int64(-1); at != to; {
		a := expect[*protocol.Ack](w)
		if a.Offset <= at || a.Offset > to {
			w.tb.Fatalf("ack of offset %d after %d, want acks up to %d", a.Offset, at, to)
		}
		at = a.Offset
	}
}

// drop closes the connection without a close frame, as a dropped link
// does.
func (w *wsConn) drop() { w.c.Close() }

// hangUp sends a close frame and closes the connection, as a source does
// when it is done: an idle connection left open would hold a shutdown for
// the server's wait for its close frame.
func (w *wsConn) hangUp() {
	w.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(failAfter))
	w.c.Close()
}

// partial is an upload of ct in flight on its own connection.
type partial struct {
	c         *wsConn
	up        *protocol.Upload
	ct        []byte
	frameSize int
}

// startUpload opens an upload of ct on a new connection, sends its first
// acked frames and reads their acks.
func (ts *testServer) startUpload(tb testing.TB, ct []byte, frameSize, acked int) *partial {
	tb.Helper()
	p := &partial{c: ts.dial(tb), ct: ct, frameSize: frameSize}
	p.up = ts.newUpload(tb, ts.s.Bundle().Version, int64(len(ct)), frameSize)
	p.c.text(p.up)
	for i := range acked {
		p.c.frame(ct, int64(i*frameSize), frameSize)
	}
	p.c.readOffset(0)
	if acked > 0 {
		p.c.readAcks(int64(acked * frameSize))
	}
	return p
}

// finish sends the frames of p from offset on p.c, commits, reads the acks
// and the receipt, checks and records the receipt, and hangs up.
func (p *partial) finish(tb testing.TB, offset int64) *crypto.Receipt {
	tb.Helper()
	for off := offset; off < int64(len(p.ct)); off += int64(p.frameSize) {
		p.c.frame(p.ct, off, p.frameSize)
	}
	p.c.text(&protocol.Commit{SHA256: sha256.Sum256(p.ct)})
	if offset < int64(len(p.ct)) {
		p.c.readAcks(int64(len(p.ct)))
	}
	r := p.c.ts.openReceipt(tb, expect[*protocol.ReceiptReply](p.c).Receipt)
	if r.SHA256 != sha256.Sum256(p.ct) || r.Length != int64(len(p.ct)) {
		tb.Fatalf("receipt names sha256 %x length %d, not the ciphertext sent", r.SHA256, r.Length)
	}
	p.c.hangUp()
	return r
}

// resumeOn resumes p on a new connection, checks that the server's offset
// is offset, and makes that connection p's.
func (p *partial) resumeOn(tb testing.TB, offset int64) {
	tb.Helper()
	p.c = p.c.ts.dial(tb)
	p.c.text(p.c.ts.resumeMsg(tb, p.up.UploadID))
	p.c.readOffset(offset)
}

// startOther starts an upload of two frames, sealed to the bundle in
// force, and sends its first frame: a source whose upload runs while a
// test provokes a refusal on another connection. other.finish(tb, fs16)
// must then get its receipt.
func (ts *testServer) startOther(tb testing.TB) *partial {
	tb.Helper()
	rs, err := ts.s.Bundle().Recipients()
	if err != nil {
		tb.Fatal(err)
	}
	ct := seal(tb, twoFrameText, rs, fs16)
	if len(ct) != 2*fs16 {
		tb.Fatalf("sealed %d bytes, want two frames", len(ct))
	}
	return ts.startUpload(tb, ct, fs16, 1)
}

// testLogger routes the server's logs to tb.Log until the test ends.
func testLogger(tb testing.TB) *slog.Logger { return testLoggerLevel(tb, slog.LevelDebug) }

// testLoggerLevel is testLogger for records at level or above.
func testLoggerLevel(tb testing.TB, level slog.Level) *slog.Logger {
	w := &tbWriter{tb: tb}
	tb.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// tbWriter writes each log line to tb.Log; lines written after the test's
// cleanup began are dropped (testing panics on a Log after the end).
type tbWriter struct {
	tb   testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// httpDo makes one plain HTTP request, with the Authorization header auth
// unless it is empty, and returns the status and body.
func httpDo(tb testing.TB, method, url, auth string, body []byte) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	c := &http.Client{Timeout: failAfter}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, b
}

// httpError parses a typed error body.
func httpError(tb testing.TB, body []byte) *protocol.Error {
	tb.Helper()
	m, err := protocol.ParseServerMessage(bytes.TrimSuffix(body, []byte("\n")))
	if err != nil {
		tb.Fatalf("error body %q: %v", body, err)
	}
	e, ok := m.(*protocol.Error)
	if !ok {
		tb.Fatalf("error body is %T, want *protocol.Error", m)
	}
	return e
}

// localAddrDialer dials and records each connection's local address.
type localAddrDialer struct {
	mu    sync.Mutex
	addrs []string
}

func (d *localAddrDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		d.mu.Lock()
		d.addrs = append(d.addrs, c.LocalAddr().String())
		d.mu.Unlock()
	}
	return c, err
}
