package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
)

// FuzzClientAgainstRogueServer plays a server that sends the genuine
// bundle and seed, reads the upload and its one frame, then sends whatever
// the input says, one message a line:
//
//	RECEIPT      a receipt correctly signed with the bundle's log key for
//	             the bytes received
//	OFFSET <n>   an offset message for n with the genuine seed
//	BIN <bytes>  a binary message
//	<bytes>      a text message
//
// then closes. It drives the path fieldtip send uses: Init's session gets
// the genuine bundle and seed, the tip is composed into the outbox, and
// SendOutbox meets the script in its first session (later ones are closed
// at once). The property: SendOutbox reports an item sent, and removes it
// from the outbox, only with a receipt that verifies against the bundle's
// log key and matches the bytes the server received, and otherwise keeps
// the item; and the config keeps only seeds the bundle's log key signed,
// one per epoch.
func FuzzClientAgainstRogueServer(f *testing.F) {
	r := newRogueSetup(f)
	const F = protocol.FrameSize
	m := func(msgs ...any) string {
		var lines []string
		for _, x := range msgs {
			if s, ok := x.(string); ok {
				lines = append(lines, s)
			} else {
				lines = append(lines, string(protocol.Marshal(x)))
			}
		}
		return strings.Join(lines, "\n")
	}
	seeds := []string{
		m("OFFSET 0", &protocol.Ack{Offset: F}, "RECEIPT"),                                // honest
		m(&protocol.Offset{Offset: 0, Seed: r.seed}, &protocol.Ack{Offset: F}, "RECEIPT"), // honest, spelt out
		m(&protocol.Ack{Offset: F}, "RECEIPT"),                                            // no offset: refused since protocol v2
		m(&protocol.Offset{}, &protocol.Ack{Offset: F}, "RECEIPT"),                        // offset without its seed
		m(&protocol.Offset{Seed: signSeed(f, r.logKey, currentEpoch()-2, 7)}, &protocol.Ack{Offset: F}, "RECEIPT"),
		m(&protocol.Offset{Seed: signSeed(f, r.nk.key, currentEpoch(), 7)}, &protocol.Ack{Offset: F}, "RECEIPT"),
		m(&protocol.Offset{Seed: signSeed(f, r.logKey, currentEpoch(), 7)}, &protocol.Ack{Offset: F}, "RECEIPT"), // equivocation
		m("OFFSET 0", "RECEIPT"),
		m("OFFSET 0", &protocol.Ack{Offset: F}),
		m("OFFSET 16384", &protocol.Ack{Offset: F}, "RECEIPT"),
		m("OFFSET 0", &protocol.Ack{Offset: 2 * F}, "RECEIPT"),
		m("OFFSET 0", &protocol.Ack{Offset: F}, &protocol.ReceiptReply{Receipt: []byte("garbage")}),
		m("OFFSET 0", &protocol.Ack{Offset: F}, protocol.Errorf(protocol.CodeBusy, "busy")),
		m("OFFSET 0", &protocol.Ack{Offset: F}, &protocol.Ack{Offset: F}, "RECEIPT"),
		m("OFFSET 0", "OFFSET 0", &protocol.Ack{Offset: F}, "RECEIPT"),
		m("OFFSET 0", "BIN "+string(protocol.Marshal(&protocol.Ack{Offset: F})), "RECEIPT"),
		m("OFFSET 0", `{"type":"ack","offset":16384,"offset":16384}`, "RECEIPT"),
		"",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	errHung := errors.New("send hung")
	f.Fuzz(func(t *testing.T, script string) {
		var received []byte
		gotFrame := make(chan struct{})
		p := r.rogueSessions(t, func(c *rogueConn, session int) {
			if session > 1 {
				c.conn.Close()
				return
			}
			up, ok := c.upload()
			if !ok {
				return
			}
			fr, ok := c.frame(up)
			if !ok {
				return
			}
			received = bytes.Clone(fr.Chunk)
			close(gotFrame)
			for line := range strings.SplitSeq(script, "\n") {
				switch {
				case line == "RECEIPT":
					rc := &crypto.Receipt{SHA256: sha256.Sum256(received), Length: int64(len(received)), Day: "2026-01-02"}
					msg, err := crypto.SignReceipt(rc, r.logKey.Signer)
					if err != nil {
						t.Error(err)
						return
					}
					c.send(&protocol.ReceiptReply{Receipt: msg})
				case strings.HasPrefix(line, "OFFSET "):
					n, err := strconv.ParseInt(line[len("OFFSET "):], 10, 64)
					if err != nil {
						c.write(websocket.TextMessage, []byte(line))
						continue
					}
					c.send(&protocol.Offset{Offset: n, Seed: r.seed})
				case strings.HasPrefix(line, "BIN "):
					c.write(websocket.BinaryMessage, []byte(line[4:]))
				default:
					c.write(websocket.TextMessage, []byte(line))
				}
			}
			c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			c.drain()
		})
		p.compose(t, &crypto.Tip{Text: "hello"})
		// SendOutbox must end on its own whatever the server does; the
		// deadline only turns a hang into a failure that names the script.
		ctx, cancel := context.WithTimeoutCause(context.Background(), 20*time.Second, errHung)
		defer cancel()
		rep, err := p.send(t, ctx, SendOptions{Budget: time.Minute})
		if errors.Is(err, errHung) {
			t.Fatalf("SendOutbox hung on server script %q", script)
		}
		// Whatever the server sent, the config keeps only seeds signed by
		// the bundle's log key, one per epoch, at most two.
		cfg := p.cfg(t)
		epochs := map[int64]bool{}
		for _, s := range cfg.Seeds {
			seed, serr := crypto.OpenPoWSeed([]byte(s), r.logKey.Verifier)
			if serr != nil || epochs[seed.Epoch] {
				t.Fatalf("config holds seed %q (%v), twice an epoch or not the log key's, after script %q", s, serr, script)
			}
			epochs[seed.Epoch] = true
		}
		if len(cfg.Seeds) > 2 {
			t.Fatalf("config holds %d seeds after script %q, want at most 2", len(cfg.Seeds), script)
		}
		left := len(p.reopen(t).Items)
		if len(rep.Sent) == 0 {
			if err == nil || left != 1 {
				t.Fatalf("SendOutbox sent nothing with error %v and left %d items, want an error and the item kept (script %q)", err, left, script)
			}
			return
		}
		if len(rep.Sent) != 1 || left != 0 || rep.Remaining != 0 {
			t.Fatalf("SendOutbox = %+v, %d items left (script %q)", rep, left, script)
		}
		select {
		case <-gotFrame: // the script ran: received is set
		case <-time.After(20 * time.Second):
			t.Fatalf("SendOutbox sent without the server seeing a frame, script %q", script)
		}
		res := rep.Sent[0]
		rc, err := crypto.OpenReceipt(res.ReceiptNote, r.logKey.Verifier)
		if err != nil {
			t.Fatalf("SendOutbox accepted a receipt that does not verify: %v", err)
		}
		if *rc != *res.Receipt || rc.SHA256 != sha256.Sum256(received) || rc.Length != int64(len(received)) {
			t.Fatalf("SendOutbox accepted receipt %+v for %d bytes with SHA-256 %x", *rc, len(received), sha256.Sum256(received))
		}
	})
}
