package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/http"
	"path/filepath"
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
			p := newPhone(t, srv.URL, nk.key.Verifier, nil)
			dir := p.dir
			tip, textMarker, fileMarker := testTip(t, 20<<10)
			it, err := Compose(context.Background(), p.cfg(t), tip, ComposeOptions{FrameSize: tt.frameSize})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.ob.Add(it); err != nil {
				t.Fatal(err)
			}

			var lastAcked, lastTotal int64
			rep, err := p.send(t, context.Background(), SendOptions{
				Progress: func(acked, total int64) { lastAcked, lastTotal = acked, total },
			})
			if err != nil || len(rep.Sent) != 1 {
				t.Fatalf("SendOutbox = %+v, %v", rep, err)
			}
			res := rep.Sent[0]

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
			if rep.BytesSent < rc.Length {
				t.Errorf("BytesSent = %d, less than the ciphertext's %d", rep.BytesSent, rc.Length)
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

func TestInitRefusesBundle(t *testing.T) {
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
			dir := filepath.Join(t.TempDir(), "fieldtip")
			_, _, _, err := Init(context.Background(), dir, srv.URL, nk.key.Verifier, InitOptions{Now: tt.now})
			if !errors.Is(err, tt.want) {
				t.Errorf("Init = %v, want %v", err, tt.want)
			}
			if _, err := LoadConfig(dir); !errors.Is(err, ErrNotInitialized) {
				t.Errorf("after a refused bundle LoadConfig = %v, want ErrNotInitialized: nothing written", err)
			}
		})
	}
}

func TestInitRefusesBundleRollback(t *testing.T) {
	ctx := context.Background()
	nk := newTestNewsroom(t, true)
	var v1 []byte
	a := startServer(t, func(log string) []byte { v1 = nk.bundle(t, 1, log); return v1 }, serverOptions{})
	dir := initDir(t, a.URL, nk.key.Verifier)

	// The newsroom publishes version 2; the client sees it when it runs
	// init again.
	resp, err := http.Post(a.URL+protocol.PathBundle, "text/plain", bytes.NewReader(nk.bundle(t, 2, a.LogKey.Verifier)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("publish bundle 2: %s", resp.Status)
	}
	if _, b, _, err := Init(ctx, dir, a.URL, nk.key.Verifier, InitOptions{}); err != nil || b.Version != 2 {
		t.Fatalf("Init after bundle 2 = %v", err)
	}
	before := configBytes(t, dir)

	// Another server (same log key) replays the genuine version 1 bundle.
	b := startServer(t, func(string) []byte { return v1 }, serverOptions{LogKey: a.LogKey})
	_, _, _, err = Init(ctx, dir, b.URL, nk.key.Verifier, InitOptions{})
	if !errors.Is(err, ErrBundleRollback) {
		t.Errorf("Init against a server replaying bundle 1 = %v, want ErrBundleRollback", err)
	}
	if !bytes.Equal(configBytes(t, dir), before) {
		t.Errorf("the refused rollback changed the config")
	}
}

func TestSendServerRefusals(t *testing.T) {
	nk := newTestNewsroom(t, true)
	t.Run("upload_too_large", func(t *testing.T) {
		srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{
			Config: func(c *server.Config) { c.MaxUploadSize = protocol.FrameSize },
		})
		p := newPhone(t, srv.URL, nk.key.Verifier, nil)
		tip, _, _ := testTip(t, protocol.FrameSize)
		p.compose(t, tip)
		rep, err := p.send(t, context.Background(), SendOptions{})
		if e, ok := isProtocolError(err); !ok || e.Code != protocol.CodeTooLarge {
			t.Errorf("SendOutbox of a tip over the server's limit = %v, want *protocol.Error %s", err, protocol.CodeTooLarge)
		}
		if len(rep.Held) != 1 || rep.Remaining != 1 {
			t.Errorf("report = %+v, want the item held in the outbox", rep)
		}
	})
	t.Run("connections_full_of_idle", func(t *testing.T) {
		srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{
			Config: func(c *server.Config) { c.MaxConns = 1 },
		})
		p := newPhone(t, srv.URL, nk.key.Verifier, nil)
		u, err := protocol.ParseServerURL(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		// Once the handshake completed, an idle connection holds the
		// only slot: the source's connection takes it over (issue 11),
		// and the idle one is told busy.
		held, _, err := websocket.DefaultDialer.Dial(u.WebSocket, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { held.Close() })
		p.compose(t, &crypto.Tip{Text: "hello"})
		rep, err := p.send(t, context.Background(), SendOptions{})
		if err != nil || len(rep.Sent) != 1 {
			t.Fatalf("SendOutbox with an idle connection holding the only slot = %+v, %v; want the tip sent", rep, err)
		}
		held.SetReadDeadline(time.Now().Add(time.Minute))
		_, b, err := held.ReadMessage()
		if err != nil {
			t.Fatalf("the idle connection: %v, want a busy refusal", err)
		}
		if m, err := protocol.ParseServerMessage(b); err != nil || !protocol.IsError(asError(m), protocol.CodeBusy) {
			t.Errorf("the idle connection got %s, want a busy refusal", b)
		}
	})
	t.Run("wrong_path", func(t *testing.T) {
		srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{})
		dir := filepath.Join(t.TempDir(), "fieldtip")
		if _, _, _, err := Init(context.Background(), dir, srv.URL+"/not-the-source-path", nk.key.Verifier, InitOptions{}); err == nil {
			t.Error("Init at a path that is not the source endpoint succeeded")
		}
	})
}

func TestSendContextCanceled(t *testing.T) {
	r := newRogueSetup(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("the source gave up")
	// A server that takes the upload, never answers, and has the source
	// give up meanwhile.
	p := r.rogueSessions(t, func(c *rogueConn, _ int) {
		if _, ok := c.control(); ok {
			cancel(cause)
			c.drain()
		}
	})
	p.compose(t, &crypto.Tip{Text: "hello"})
	rep, err := p.send(t, ctx, SendOptions{})
	mustNotSend(t, p, rep, err)
	if !errors.Is(err, cause) {
		t.Errorf("SendOutbox after cancel = %v, want the cancel cause", err)
	}
}

// asError returns m as an error if it is a *protocol.Error, else nil.
func asError(m any) error {
	if e, ok := m.(*protocol.Error); ok {
		return e
	}
	return nil
}
