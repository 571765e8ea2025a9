package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/http"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/protocol"
	"fieldtip/server"

	"github.com/gorilla/websocket"
)

// testTip returns a tip whose text and attachment each carry a marker
// that must never appear in a file the client writes.
func testTip(t testing.TB, attachmentSize int) (tip *crypto.Tip, textMarker, fileMarker string) {
	t.Helper()
	textMarker = "copper-trucks-" + rand.Text()
	fileMarker = "photo-bytes-" + rand.Text()
	data := make([]byte, attachmentSize)
	rand.Read(data)
	copy(data[len(data)/2:], fileMarker)
	return &crypto.Tip{
		Text:        textMarker + " at the river crossing\nsecond line",
		Attachments: []crypto.Attachment{{Name: "photo.jpg", Type: "image/jpeg", Data: data}},
	}, textMarker, fileMarker
}

func TestSendHappyPath(t *testing.T) {
	tests := []struct {
		name      string
		classic   bool
		frameSize int
	}{
		{"classic_default_frames", true, 0},
		{"hybrid_low_bandwidth_frames", false, protocol.LowBandwidthFrameSz},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nk := newTestNewsroom(t, tt.classic)
			srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{})
			dir := initClient(t, srv.URL, nk.key.Verifier)
			tip, textMarker, fileMarker := testTip(t, 20<<10)

			var lastAcked, lastTotal int64
			res, err := Send(context.Background(), dir, tip, SendOptions{
				FrameSize: tt.frameSize,
				Progress:  func(acked, total int64) { lastAcked, lastTotal = acked, total },
			})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}

			// The receipt verifies against the server's log key and is the
			// one the server stored.
			rc, err := crypto.OpenReceipt(res.ReceiptNote, srv.LogKey.Verifier)
			if err != nil {
				t.Fatalf("OpenReceipt(ReceiptNote): %v", err)
			}
			if *rc != *res.Receipt {
				t.Errorf("Result.Receipt = %+v, ReceiptNote says %+v", *res.Receipt, *rc)
			}
			if res.BundleVersion != 1 {
				t.Errorf("BundleVersion = %d, want 1", res.BundleVersion)
			}
			tips, err := srv.Store.ListTips(context.Background(), 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(tips) != 1 {
				t.Fatalf("server stored %d tips, want 1", len(tips))
			}
			stored := tips[0]
			if stored.ID != rc.TipID || stored.SHA256 != rc.SHA256 || stored.Length != rc.Length || stored.Day != rc.Day {
				t.Errorf("stored tip %x sha256 %x length %d day %s; receipt says %x %x %d %s",
					stored.ID, stored.SHA256, stored.Length, stored.Day, rc.TipID, rc.SHA256, rc.Length, rc.Day)
			}
			if !bytes.Equal(stored.Receipt, res.ReceiptNote) {
				t.Errorf("stored receipt differs from the one Send returned")
			}
			ct, err := srv.Store.TipCiphertext(context.Background(), rc.TipID)
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(ct) != rc.SHA256 || int64(len(ct)) != rc.Length {
				t.Errorf("stored ciphertext: sha256 %x length %d, receipt says %x %d", sha256.Sum256(ct), len(ct), rc.SHA256, rc.Length)
			}
			frame := int64(tt.frameSize)
			if frame == 0 {
				frame = protocol.FrameSize
			}
			if rc.Length%frame != 0 {
				t.Errorf("ciphertext length %d is not a whole number of %d-byte frames", rc.Length, frame)
			}
			if lastAcked != rc.Length || lastTotal != rc.Length {
				t.Errorf("last Progress(%d, %d), want (%d, %d)", lastAcked, lastTotal, rc.Length, rc.Length)
			}
			if res.BytesSent < rc.Length {
				t.Errorf("BytesSent = %d, less than the ciphertext's %d", res.BytesSent, rc.Length)
			}

			// The editor decrypts exactly what was sent.
			got, err := crypto.Open(ct, nk.editor.Identity)
			if err != nil {
				t.Fatalf("crypto.Open(stored ciphertext): %v", err)
			}
			if got.Text != tip.Text {
				t.Errorf("decrypted text = %q, want %q", got.Text, tip.Text)
			}
			if len(got.Attachments) != 1 {
				t.Fatalf("decrypted %d attachments, want 1", len(got.Attachments))
			}
			a, want := got.Attachments[0], tip.Attachments[0]
			if a.Name != want.Name || a.Type != want.Type || !bytes.Equal(a.Data, want.Data) {
				t.Errorf("decrypted attachment %q %q (%d bytes), want %q %q (%d bytes)", a.Name, a.Type, len(a.Data), want.Name, want.Type, len(want.Data))
			}

			cfg, err := LoadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HighestBundleVersion != 1 {
				t.Errorf("HighestBundleVersion = %d after sending with bundle 1", cfg.HighestBundleVersion)
			}
			fieldtiptest.AssertNoPlaintext(t, dir, textMarker, fileMarker)
		})
	}
}

func TestSendRefusesBundle(t *testing.T) {
	nk := newTestNewsroom(t, true)
	other := newTestNewsroom(t, true)
	future := func() time.Time { return time.Now().Add(48 * time.Hour) }
	tests := []struct {
		name   string
		bundle func(t *testing.T, log string) []byte
		now    func() time.Time
		want   error
	}{
		{
			name:   "signed_by_another_newsroom",
			bundle: func(t *testing.T, log string) []byte { return other.bundle(t, 1, log) },
			want:   crypto.ErrUnknownSigner,
		},
		{
			name:   "expired_by_client_clock",
			bundle: func(t *testing.T, log string) []byte { return nk.bundle(t, 1, log) },
			now:    future,
			want:   crypto.ErrExpired,
		},
		{
			name: "expired_in_force_on_server",
			bundle: func(t *testing.T, log string) []byte {
				return nk.bundleExpiring(t, 1, log, time.Now().Add(-time.Hour))
			},
			want: crypto.ErrExpired,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, func(log string) []byte { return tt.bundle(t, log) }, serverOptions{})
			dir := initClient(t, srv.URL, nk.key.Verifier)
			res, err := Send(context.Background(), dir, &crypto.Tip{Text: "hello"}, SendOptions{Now: tt.now})
			mustFail(t, res, err)
			if !errors.Is(err, tt.want) {
				t.Errorf("Send = %v, want %v", err, tt.want)
			}
			if n, err := srv.Store.CountTips(context.Background()); err != nil || n != 0 {
				t.Errorf("server holds %d tips (%v) after a refused bundle, want 0", n, err)
			}
			cfg, err := LoadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HighestBundleVersion != 0 {
				t.Errorf("a refused bundle raised HighestBundleVersion to %d", cfg.HighestBundleVersion)
			}
		})
	}
}

func TestSendRefusesBundleRollback(t *testing.T) {
	ctx := context.Background()
	nk := newTestNewsroom(t, true)
	var v1 []byte
	a := startServer(t, func(log string) []byte { v1 = nk.bundle(t, 1, log); return v1 }, serverOptions{})
	dir := initClient(t, a.URL, nk.key.Verifier)
	send := func(want int64) {
		t.Helper()
		res, err := Send(ctx, dir, &crypto.Tip{Text: "hello"}, SendOptions{})
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if res.BundleVersion != want {
			t.Fatalf("Send used bundle version %d, want %d", res.BundleVersion, want)
		}
	}
	send(1)

	// The newsroom publishes version 2; the client sees it on its next send.
	resp, err := http.Post(a.URL+protocol.PathBundle, "text/plain", bytes.NewReader(nk.bundle(t, 2, a.LogKey.Verifier)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("publish bundle 2: %s", resp.Status)
	}
	send(2)

	// Another server (same log key) replays the genuine version 1 bundle.
	b := startServer(t, func(string) []byte { return v1 }, serverOptions{LogKey: a.LogKey})
	if err := Init(dir, b.URL, nk.key.Verifier); err != nil {
		t.Fatal(err)
	}
	res, err := Send(ctx, dir, &crypto.Tip{Text: "hello"}, SendOptions{})
	mustFail(t, res, err)
	if !errors.Is(err, ErrBundleRollback) {
		t.Errorf("Send against a server replaying bundle 1 = %v, want ErrBundleRollback", err)
	}
	if n, err := b.Store.CountTips(ctx); err != nil || n != 0 {
		t.Errorf("rollback server holds %d tips (%v), want 0", n, err)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HighestBundleVersion != 2 {
		t.Errorf("HighestBundleVersion = %d after the rollback, want 2", cfg.HighestBundleVersion)
	}
}

func TestSendServerRefusals(t *testing.T) {
	nk := newTestNewsroom(t, true)
	t.Run("upload_too_large", func(t *testing.T) {
		srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{
			Config: func(c *server.Config) { c.MaxUploadSize = protocol.FrameSize },
		})
		dir := initClient(t, srv.URL, nk.key.Verifier)
		tip, _, _ := testTip(t, protocol.FrameSize)
		res, err := Send(context.Background(), dir, tip, SendOptions{})
		mustFail(t, res, err)
		if e, ok := isProtocolError(err); !ok || e.Code != protocol.CodeTooLarge {
			t.Errorf("Send of a tip over the server's limit = %v, want *protocol.Error %s", err, protocol.CodeTooLarge)
		}
	})
	t.Run("connections_full", func(t *testing.T) {
		srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{
			Config: func(c *server.Config) { c.MaxConns = 1 },
		})
		u, err := protocol.ParseServerURL(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		// Once the handshake completed, the server holds the only
		// connection slot.
		held, _, err := websocket.DefaultDialer.Dial(u.WebSocket, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { held.Close() })
		dir := initClient(t, srv.URL, nk.key.Verifier)
		res, err := Send(context.Background(), dir, &crypto.Tip{Text: "hello"}, SendOptions{})
		mustFail(t, res, err)
		if e, ok := isProtocolError(err); !ok || e.Code != protocol.CodeBusy {
			t.Errorf("Send with every connection taken = %v, want *protocol.Error %s", err, protocol.CodeBusy)
		}
	})
	t.Run("wrong_path", func(t *testing.T) {
		srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{})
		dir := initClient(t, srv.URL+"/not-the-source-path", nk.key.Verifier)
		res, err := Send(context.Background(), dir, &crypto.Tip{Text: "hello"}, SendOptions{})
		mustFail(t, res, err)
	})
}

func TestSendContextCanceled(t *testing.T) {
	nk := newTestNewsroom(t, true)
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("the source gave up")
	// A server that takes the bundle request, never answers, and has the
	// source give up meanwhile.
	url := startRogue(t, func(c *rogueConn) {
		if _, ok := c.control(); ok {
			cancel(cause)
			c.drain()
		}
	})
	dir := initClient(t, url, nk.key.Verifier)
	res, err := Send(ctx, dir, &crypto.Tip{Text: "hello"}, SendOptions{})
	mustFail(t, res, err)
	if !errors.Is(err, cause) {
		t.Errorf("Send after cancel = %v, want the cancel cause", err)
	}
}
