package client

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/fieldtiptest"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
	"golang.org/x/mod/sumdb/note"
)

// The harness lives in internal/fieldtiptest; these names keep this
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

// initClient runs Init for a new config dir and returns it.
func initClient(t testing.TB, serverURL, newsroom string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fieldtip")
	if err := Init(dir, serverURL, newsroom); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return dir
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

// serveBundle reads the client's bundle request and answers with signed.
func (c *rogueConn) serveBundle(signed []byte) bool {
	m, ok := c.control()
	if !ok {
		return false
	}
	if r, isReq := m.(*protocol.BundleRequest); !isReq || r.Version != protocol.Version {
		c.t.Errorf("rogue: first client message is %#v, want a bundle request", m)
		return false
	}
	return c.send(&protocol.BundleReply{Bundle: signed})
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

// frames reads every data frame of up, acknowledging each, and returns
// the ciphertext.
func (c *rogueConn) frames(up *protocol.Upload) ([]byte, bool) {
	if !c.send(&protocol.Offset{Offset: 0}) {
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

// fakeServer plays the real protocol with a bundle of its choosing and
// signs receipts with a key of its choosing.
type fakeServer struct {
	bundle []byte
	// signer signs the receipts.
	signer note.Signer
	// receipt, if set, changes a receipt before it is signed.
	receipt func(r *crypto.Receipt)
}

func (f *fakeServer) run(c *rogueConn) {
	if !c.serveBundle(f.bundle) {
		return
	}
	up, ok := c.upload()
	if !ok {
		return
	}
	ct, ok := c.frames(up)
	if !ok {
		return
	}
	if _, ok := c.commit(); !ok {
		return
	}
	r := &crypto.Receipt{SHA256: sha256.Sum256(ct), Length: int64(len(ct)), Day: crypto.Day(time.Now())}
	r.TipID[0] = 1
	if f.receipt != nil {
		f.receipt(r)
	}
	msg, err := crypto.SignReceipt(r, f.signer)
	if err != nil {
		c.t.Errorf("rogue: %v", err)
		return
	}
	if c.send(&protocol.ReceiptReply{Receipt: msg}) {
		c.drain()
	}
}

// mustFail checks that Send failed and returned no Result.
func mustFail(t *testing.T, res *Result, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("Send succeeded with receipt %+v, want an error", res.Receipt)
	}
	if res != nil {
		t.Fatalf("Send returned a Result with error %v", err)
	}
}

// isProtocolError reports the *protocol.Error in err's chain, if any.
func isProtocolError(err error) (*protocol.Error, bool) {
	var e *protocol.Error
	ok := errors.As(err, &e)
	return e, ok
}
