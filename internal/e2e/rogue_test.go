package e2e

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// rogue is a sources' endpoint that speaks the protocol but is not
// fieldtipd: it serves the bundle and the signed proof-of-work seed it is
// given, takes uploads without checking their proofs (and resumes them),
// and answers a commit with a receipt signed by receiptKey, for the
// ciphertext's SHA-256 or, with wrongHash, for other bytes.
type rogue struct {
	bundle     []byte
	seed       []byte
	receiptKey *crypto.SignerKey
	wrongHash  bool
	uploads    atomic.Int64 // upload messages: uploads opened
	commits    atomic.Int64 // commit messages answered

	mu       sync.Mutex
	received map[protocol.UploadID]int64 // bytes held, by upload
}

// serve starts the rogue server and returns its URL.
func (r *rogue) serve(t *testing.T) string {
	r.received = map[protocol.UploadID]int64{}
	srv := httptest.NewServer(http.HandlerFunc(r.handle))
	t.Cleanup(srv.Close)
	return srv.URL
}

// signedSeed returns a seed of the current epoch at the cheapest
// proof-of-work cost, signed by log.
func signedSeed(t *testing.T, log *crypto.SignerKey) []byte {
	t.Helper()
	const week = 7 * 24 * 3600
	s := &crypto.PoWSeed{Epoch: crypto.EpochAt(time.Now(), week), EpochSeconds: week, Params: crypto.PoWParams{MemoryKiB: 8, Time: 1, Bits: 0}}
	rand.Read(s.Seed[:])
	signed, err := crypto.SignPoWSeed(s, log.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func (r *rogue) handle(w http.ResponseWriter, req *http.Request) {
	conn, err := (&websocket.Upgrader{}).Upgrade(w, req, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	var id protocol.UploadID
	var frameSize int
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
			if frameSize == 0 {
				return
			}
			f, err := protocol.ParseDataFrame(data, frameSize)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.received[id] = f.Offset + int64(len(f.Chunk))
			r.mu.Unlock()
			if !send(&protocol.Ack{Offset: f.Offset + int64(len(f.Chunk))}) {
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
			if !send(&protocol.BundleReply{Bundle: r.bundle, Seed: r.seed}) {
				return
			}
		case *protocol.Upload:
			id, frameSize = m.UploadID, m.FrameSize
			r.uploads.Add(1)
			if !send(&protocol.Offset{Offset: 0, Seed: r.seed}) {
				return
			}
		case *protocol.Resume:
			// The rogue keeps no resume hash: it resumes any id it holds.
			r.mu.Lock()
			off, ok := r.received[m.UploadID]
			r.mu.Unlock()
			if !ok {
				return
			}
			id = m.UploadID
			// Only ever a 16 KiB-frame client in these tests.
			frameSize = protocol.FrameSize
			if !send(&protocol.Offset{Offset: off, Seed: r.seed}) {
				return
			}
		case *protocol.Commit:
			r.commits.Add(1)
			r.mu.Lock()
			length := r.received[id]
			r.mu.Unlock()
			rc := &crypto.Receipt{SHA256: m.SHA256, Length: length, Day: crypto.Day(time.Now())}
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
