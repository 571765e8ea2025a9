package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
	"golang.org/x/mod/sumdb/note"
)

// The harness lives in internal/testkit/fieldtiptest; these names keep this
// package's tests short.
type testNewsroom struct {
	key    *crypto.SignerKey
	editor *crypto.EditorKey
}

func newTestNewsroom(t testing.TB, classic bool) *testNewsroom {
	t.Helper()
	n := fieldtiptest.NewNewsroom(t, classic)
	return &testNewsroom{key: n.Key, editor: n.Editor}
}

func (n *testNewsroom) bundle(t testing.TB, version int64, logKey string) []byte {
	t.Helper()
	return n.shared().Bundle(t, version, logKey)
}

func (n *testNewsroom) bundleExpiring(t testing.TB, version int64, logKey string, expires time.Time) []byte {
	t.Helper()
	return n.shared().BundleExpiring(t, version, logKey, expires)
}

func (n *testNewsroom) shared() *fieldtiptest.Newsroom {
	return &fieldtiptest.Newsroom{Key: n.key, Editor: n.editor}
}

type serverOptions = fieldtiptest.ServerOptions

var startServer = fieldtiptest.StartServer

// initDir runs Init for a new config dir against serverURL and returns
// the dir.
func initDir(t testing.TB, serverURL, newsroom string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fieldtip")
	if _, _, _, err := Init(context.Background(), dir, serverURL, newsroom, InitOptions{}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return dir
}

// offlineConfig saves, in a new dir, a config pinned to newsroom for
// serverURL that has never fetched a bundle, as no program writes it: for
// tests of what needs no server.
func offlineConfig(t testing.TB, serverURL, newsroom string) *Config {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fieldtip")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Version: configVersion, Server: serverURL, Newsroom: newsroom, dir: dir}
	if err := cfg.save(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// rogueConn is the server end of one WebSocket session with the client, for
// tests that play a misbehaving server. Its methods report false once the
// client has gone, which is how most rogue sessions end.
type rogueConn struct {
	t    *testing.T
	conn *websocket.Conn
}

// startRogue serves script on every WebSocket session at a new loopback
// server and returns the server's URL.
func startRogue(t *testing.T, script func(c *rogueConn)) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		// A safety net, not an assertion: a client that stops talking must
		// not hang the test forever.
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		script(&rogueConn{t: t, conn: conn})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// startHTTP serves h at a new loopback server and returns its URL.
func startHTTP(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func (c *rogueConn) read() (int, []byte, bool) {
	mt, b, err := c.conn.ReadMessage()
	if err != nil {
		return 0, nil, false
	}
	return mt, b, true
}

// control reads a control message from the client.
func (c *rogueConn) control() (any, bool) {
	mt, b, ok := c.read()
	if !ok {
		return nil, false
	}
	if mt != websocket.TextMessage {
		c.t.Errorf("rogue: client sent a binary message where a control message belongs")
		return nil, false
	}
	m, err := protocol.ParseClientMessage(b)
	if err != nil {
		c.t.Errorf("rogue: client sent a malformed control message: %v", err)
		return nil, false
	}
	return m, true
}

func (c *rogueConn) send(msg any) bool { return c.write(websocket.TextMessage, protocol.Marshal(msg)) }

func (c *rogueConn) write(mt int, b []byte) bool {
	return c.conn.WriteMessage(mt, b) == nil
}

// serveBundle reads the client's bundle request and answers with the
// signed bundle and seed.
func (c *rogueConn) serveBundle(signed, seed []byte) bool {
	m, ok := c.control()
	if !ok {
		return false
	}
	if r, isReq := m.(*protocol.BundleRequest); !isReq || r.Version != protocol.Version {
		c.t.Errorf("rogue: first client message is %#v, want a bundle request", m)
		return false
	}
	return c.send(&protocol.BundleReply{Bundle: signed, Seed: seed})
}

// upload reads the client's upload message.
func (c *rogueConn) upload() (*protocol.Upload, bool) {
	m, ok := c.control()
	if !ok {
		return nil, false
	}
	up, isUp := m.(*protocol.Upload)
	if !isUp {
		c.t.Errorf("rogue: client sent %T, want an upload", m)
		return nil, false
	}
	return up, true
}

// frame reads one data frame of up.
func (c *rogueConn) frame(up *protocol.Upload) (*protocol.DataFrame, bool) {
	mt, b, ok := c.read()
	if !ok {
		return nil, false
	}
	if mt != websocket.BinaryMessage {
		c.t.Errorf("rogue: client sent a text message where a data frame belongs")
		return nil, false
	}
	f, err := protocol.ParseDataFrame(b, up.FrameSize)
	if err != nil {
		c.t.Errorf("rogue: client sent a bad data frame: %v", err)
		return nil, false
	}
	return f, true
}

// frames answers up with offset 0 and seed, reads every data frame of up,
// acknowledging each, and returns the ciphertext.
func (c *rogueConn) frames(up *protocol.Upload, seed []byte) ([]byte, bool) {
	if !c.send(&protocol.Offset{Offset: 0, Seed: seed}) {
		return nil, false
	}
	var ct []byte
	for int64(len(ct)) < up.Length {
		f, ok := c.frame(up)
		if !ok {
			return nil, false
		}
		if f.Offset != int64(len(ct)) {
			c.t.Errorf("rogue: frame at offset %d, want %d", f.Offset, len(ct))
			return nil, false
		}
		ct = append(ct, f.Chunk...)
		if !c.send(&protocol.Ack{Offset: int64(len(ct))}) {
			return nil, false
		}
	}
	return ct, true
}

// commit reads the client's commit.
func (c *rogueConn) commit() (*protocol.Commit, bool) {
	m, ok := c.control()
	if !ok {
		return nil, false
	}
	cm, isCommit := m.(*protocol.Commit)
	if !isCommit {
		c.t.Errorf("rogue: client sent %T, want a commit", m)
		return nil, false
	}
	return cm, true
}

// drain reads until the client goes.
func (c *rogueConn) drain() {
	for {
		if _, _, ok := c.read(); !ok {
			return
		}
	}
}

// refuse sends a typed error and a close frame, as the real server does.
func (c *rogueConn) refuse(e *protocol.Error) {
	if !c.send(e) {
		return
	}
	c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, string(e.Code)), time.Now().Add(time.Second))
	c.drain()
}

// fakeServer plays the real protocol with a bundle and seed of its
// choosing and signs receipts with a key of its choosing.
type fakeServer struct {
	bundle, seed []byte
	// signer signs the receipts.
	signer note.Signer
	// receipt, if set, changes a receipt before it is signed.
	receipt func(r *crypto.Receipt)
}

func (f *fakeServer) run(c *rogueConn) {
	up, ok := c.upload()
	if !ok {
		return
	}
	c.accept(up, f.seed, f.signer, f.receipt)
}

// accept answers up with offset 0 and seed, reads and acknowledges its
// frames, reads the commit and answers with a receipt for the bytes
// received signed by signer (changed by change first, if set).
func (c *rogueConn) accept(up *protocol.Upload, seed []byte, signer note.Signer, change func(*crypto.Receipt)) {
	ct, ok := c.frames(up, seed)
	if !ok {
		return
	}
	if _, ok := c.commit(); !ok {
		return
	}
	r := &crypto.Receipt{SHA256: sha256.Sum256(ct), Length: int64(len(ct)), Day: crypto.Day(time.Now())}
	r.TipID[0] = 1
	if change != nil {
		change(r)
	}
	msg, err := crypto.SignReceipt(r, signer)
	if err != nil {
		c.t.Errorf("rogue: %v", err)
		return
	}
	if c.send(&protocol.ReceiptReply{Receipt: msg}) {
		c.drain()
	}
}

// seedEpochSeconds is the epoch length of the seeds tests sign: the
// server's default, a week, so that they mix with a real server's.
const seedEpochSeconds = 7 * 24 * 3600

// currentEpoch is the epoch now falls in, with seedEpochSeconds.
func currentEpoch() int64 { return crypto.EpochAt(time.Now(), seedEpochSeconds) }

// signSeed signs a proof-of-work seed for epoch with key, at the test
// servers' cost (fieldtiptest.CheapPoW), its 32 bytes all fill.
func signSeed(t testing.TB, key *crypto.SignerKey, epoch int64, fill byte) []byte {
	t.Helper()
	s := &crypto.PoWSeed{Epoch: epoch, EpochSeconds: seedEpochSeconds, Params: fieldtiptest.CheapPoW}
	for i := range s.Seed {
		s.Seed[i] = fill
	}
	return signPoWSeed(t, key, s)
}

// signPoWSeed signs s with key.
func signPoWSeed(t testing.TB, key *crypto.SignerKey, s *crypto.PoWSeed) []byte {
	t.Helper()
	msg, err := crypto.SignPoWSeed(s, key.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// mustNotSend checks that SendOutbox failed, reported nothing sent, and
// left p's one item in the outbox file.
func mustNotSend(t *testing.T, p *phone, rep *SendReport, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("SendOutbox succeeded with report %+v, want an error", rep)
	}
	if len(rep.Sent) != 0 {
		t.Fatalf("SendOutbox reported %d sent with error %v", len(rep.Sent), err)
	}
	if n := len(p.reopen(t).Items); n != 1 {
		t.Fatalf("the outbox holds %d items after SendOutbox = %v, want the item kept", n, err)
	}
}

// isProtocolError reports the *protocol.Error in err's chain, if any.
func isProtocolError(err error) (*protocol.Error, bool) {
	var e *protocol.Error
	ok := errors.As(err, &e)
	return e, ok
}

// testOutboxKDF is a cheap outbox key cost for tests: real Argon2id, 64
// KiB, one pass. outbox_test.go runs the default.
var testOutboxKDF = crypto.CodenameKDF{MemoryKiB: 64, Time: 1}

// phone is a source's phone: a config dir that ran Init, and an open
// outbox in it under a fresh codename.
type phone struct {
	dir      string
	codename string
	ob       *Outbox
}

// newPhone runs Init for serverURL (dialling with dial, if set), then
// creates the outbox in the config dir.
func newPhone(t testing.TB, serverURL, newsroom string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *phone {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fieldtip")
	if _, _, _, err := Init(context.Background(), dir, serverURL, newsroom, InitOptions{NetDialContext: dial}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return outboxIn(t, dir)
}

// outboxIn creates an outbox under a fresh codename in dir, a config dir
// that ran Init.
func outboxIn(t testing.TB, dir string) *phone {
	t.Helper()
	codename, err := crypto.GenerateCodename()
	if err != nil {
		t.Fatal(err)
	}
	ob, err := CreateOutbox(OutboxPath(dir), codename, 0, testOutboxKDF)
	if err != nil {
		t.Fatalf("CreateOutbox: %v", err)
	}
	return &phone{dir: dir, codename: codename, ob: ob}
}

// cfg loads the phone's config, as each run of fieldtip does.
func (p *phone) cfg(t testing.TB) *Config {
	t.Helper()
	return mustConfig(t, p.dir)
}

// compose composes tip with no network and adds it to the outbox.
func (p *phone) compose(t testing.TB, tip *crypto.Tip) *OutboxItem {
	t.Helper()
	it, err := Compose(context.Background(), p.cfg(t), tip, ComposeOptions{})
	if err != nil {
		t.Fatalf("Compose: %v", err)
	}
	if err := p.ob.Add(it); err != nil {
		t.Fatalf("Outbox.Add: %v", err)
	}
	return it
}

// send runs SendOutbox on the phone's open outbox.
func (p *phone) send(t testing.TB, ctx context.Context, opts SendOptions) (*SendReport, error) {
	t.Helper()
	return SendOutbox(ctx, p.cfg(t), p.ob, opts)
}

// reopen opens the outbox file again, as the next run of fieldtip does.
func (p *phone) reopen(t testing.TB) *Outbox {
	t.Helper()
	ob, err := OpenOutbox(OutboxPath(p.dir), p.codename, testOutboxKDF)
	if err != nil {
		t.Fatalf("OpenOutbox: %v", err)
	}
	return ob
}

// dialTo returns a dial function that connects to addr whatever address
// it is asked for: the same server by another route.
func dialTo(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// hostPort returns the host:port of a test server's URL.
func hostPort(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		t.Fatalf("server URL %q has no host: %v", rawURL, err)
	}
	return u.Host
}

// checkDelivered checks that res is a receipt of srv's log key for a tip
// srv stored, and that the editor decrypts it to text. It returns the
// stored ciphertext.
func checkDelivered(t testing.TB, srv *fieldtiptest.Server, nk *testNewsroom, res *Result, text string) []byte {
	t.Helper()
	rc, err := crypto.OpenReceipt(res.ReceiptNote, srv.LogKey.Verifier)
	if err != nil {
		t.Fatalf("receipt does not verify against the server's log key: %v", err)
	}
	if *rc != *res.Receipt {
		t.Errorf("Result.Receipt = %+v, its note says %+v", *res.Receipt, *rc)
	}
	ct, err := srv.Store.TipCiphertext(context.Background(), rc.TipID)
	if err != nil {
		t.Fatalf("the server has no tip %x: %v", rc.TipID, err)
	}
	if sha256.Sum256(ct) != rc.SHA256 || int64(len(ct)) != rc.Length {
		t.Errorf("stored tip: %d bytes, SHA-256 %x; the receipt says %d, %x", len(ct), sha256.Sum256(ct), rc.Length, rc.SHA256)
	}
	tip, err := crypto.Open(ct, nk.editor.Identity)
	if err != nil {
		t.Fatalf("the editor cannot open the stored tip: %v", err)
	}
	if tip.Text != text {
		t.Errorf("the editor reads %q, want %q", tip.Text, text)
	}
	return ct
}
