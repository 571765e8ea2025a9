package e2e

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// rogue is a sources' endpoint that speaks the protocol but is not
// fieldtipd: it serves the bundle it is given, takes an upload and answers
// the commit with a receipt signed by receiptKey, for the ciphertext's
// SHA-256 or, with wrongHash, for other bytes.
type rogue struct {
	bundle     []byte
	receiptKey *crypto.SignerKey
	wrongHash  bool
	uploads    atomic.Int64
}

// serve starts the rogue server and returns its URL.
func (r *rogue) serve(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(r.handle))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (r *rogue) handle(w http.ResponseWriter, req *http.Request) {
	conn, err := (&websocket.Upgrader{}).Upgrade(w, req, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	var up *protocol.Upload
	var received int64
	send := func(m any) bool {
		return conn.WriteMessage(websocket.TextMessage, protocol.Marshal(m)) == nil
	}
	for {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		mt, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if mt == websocket.BinaryMessage {
			if up == nil {
				return
			}
			f, err := protocol.ParseDataFrame(data, up.FrameSize)
			if err != nil {
				return
			}
			received = f.Offset + int64(len(f.Chunk))
			if !send(&protocol.Ack{Offset: received}) {
				return
			}
			continue
		}
		msg, err := protocol.ParseClientMessage(data)
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *protocol.BundleRequest:
			if !send(&protocol.BundleReply{Bundle: r.bundle}) {
				return
			}
		case *protocol.Upload:
			up = m
			r.uploads.Add(1)
			if !send(&protocol.Offset{Offset: 0}) {
				return
			}
		case *protocol.Commit:
			rc := &crypto.Receipt{SHA256: m.SHA256, Length: received, Day: crypto.Day(time.Now())}
			rand.Read(rc.TipID[:])
			if r.wrongHash {
				rc.SHA256[0] ^= 1
			}
			receipt, err := crypto.SignReceipt(rc, r.receiptKey.Signer)
			if err != nil || !send(&protocol.ReceiptReply{Receipt: receipt}) {
				return
			}
		}
	}
}
