package client

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/internal/testkit/flakylink"
	"fieldtip/protocol"
	"fieldtip/server"
)

// The tests here play FIELD.md: compose offline into the outbox, then
// send in short sessions over a link that drops, with resumable uploads.

// wireFrame is what one data frame costs on the wire, client to server: the
// chunk, the frame header and a masked WebSocket binary header (2 bytes, 2
// of extended length, 4 of mask).
const wireFrame = protocol.FrameSize + protocol.FrameHeaderSize + 8

// sessionOverhead bounds what a session sends besides data frames: the
// HTTP upgrade request, an upload or resume message with its proofs, the
// commit and the close frame.
const sessionOverhead = 1 << 10

// startRelay starts a flaky link to srv, closed when the test ends.
func startRelay(t testing.TB, srv *fieldtiptest.Server, cfg flakylink.Config) *flakylink.Relay {
	t.Helper()
	r, err := flakylink.Start(hostPort(t, srv.URL), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

var scrubbedPhoto = sync.OnceValues(func() ([]byte, error) {
	a, _, err := Attach("IMG_20240512_153012.jpg", fieldtiptest.PhoneJPEG(4000, 3000), false)
	return a.Data, err
})

// photoTip returns a tip with a phone's 12-megapixel photo, through Attach,
// whose scrubbed size is what FIELD.md asks of a photo (about 150 KiB).
func photoTip(t testing.TB, text string) *crypto.Tip {
	t.Helper()
	data, err := scrubbedPhoto()
	if err != nil {
		t.Fatalf("Attach(PhoneJPEG(4000, 3000)): %v", err)
	}
	if len(data) < 100<<10 || len(data) > 250<<10 {
		t.Fatalf("scrubbed photo is %d bytes, want about 150 KiB (100 to 250 KiB)", len(data))
	}
	return &crypto.Tip{Text: text, Attachments: []crypto.Attachment{{Name: "photo-1.jpg", Type: "image/jpeg", Data: data}}}
}

func mustConfig(t testing.TB, dir string) *Config {
	t.Helper()
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// randomTip returns a tip with an incompressible attachment of n bytes.
func randomTip(text string, n int) *crypto.Tip {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7919>>3) ^ byte(i>>11)
	}
	return &crypto.Tip{Text: text, Attachments: []crypto.Attachment{{Name: "notes.bin", Type: "application/octet-stream", Data: data}}}
}

func TestComposeOfflineThenSend(t *testing.T) {
	// The package's one test at the real defaults: a hybrid post-quantum
	// editor key and the default proof-of-work cost (Argon2id, 1 MiB, 8
	// bits).
	nk := newTestNewsroom(t, false)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{
		Config: func(c *server.Config) { c.PoWParams = crypto.DefaultPoWParams },
	})
	// The phone reaches the server through a relay; closing the relay
	// takes the network away.
	relay := startRelay(t, srv, flakylink.Config{})
	p := newPhone(t, relay.URL("http"), nk.key.Verifier, nil)
	relay.Close()
	if _, _, _, err := Init(context.Background(), p.dir, relay.URL("http"), nk.key.Verifier, InitOptions{}); err == nil {
		t.Fatal("Init with the relay closed succeeded: the test has network where it means to have none")
	}

	text := "offline-marker-" + strings.Repeat("x", 40)
	it, err := Compose(context.Background(), p.cfg(t), &crypto.Tip{Text: text}, ComposeOptions{})
	if err != nil {
		t.Fatalf("Compose with no network: %v", err)
	}
	if it.BundleVersion != 1 || it.Started || len(it.PoW) != protocol.Proofs(int64(len(it.Ciphertext))) {
		t.Errorf("Compose = bundle %d, started %t, %d proofs for %d bytes", it.BundleVersion, it.Started, len(it.PoW), len(it.Ciphertext))
	}
	if seed, err := crypto.OpenPoWSeed([]byte(mustConfig(t, p.dir).Seeds[0]), srv.LogKey.Verifier); err != nil || seed.Params != crypto.DefaultPoWParams {
		t.Fatalf("stored seed: %+v, %v; want the default cost", seed, err)
	}
	if err := p.ob.Add(it); err != nil {
		t.Fatal(err)
	}
	fieldtiptest.AssertNoPlaintext(t, p.dir, text)

	// Later, connected by another route: the next run of fieldtip opens
	// the outbox and sends.
	ob := p.reopen(t)
	rep, err := SendOutbox(context.Background(), p.cfg(t), ob, SendOptions{NetDialContext: dialTo(hostPort(t, srv.URL))})
	if err != nil {
		t.Fatalf("SendOutbox: %v", err)
	}
	if len(rep.Sent) != 1 || rep.Remaining != 0 || rep.RemainingBytes != 0 || rep.Sessions != 1 || len(rep.Dropped)+len(rep.Held) != 0 {
		t.Fatalf("SendOutbox report = %+v, want 1 sent in 1 session, nothing left", rep)
	}
	ct := checkDelivered(t, srv, nk, rep.Sent[0], text)
	if !bytes.Equal(ct, it.Ciphertext) {
		t.Errorf("the server stored other bytes than the item composed offline")
	}
	if len(ob.Items) != 0 || len(p.reopen(t).Items) != 0 {
		t.Errorf("the delivered item is still in the outbox")
	}
}

func TestComposeSizesAreOneFrame(t *testing.T) {
	// FIELD.md: a short tip is exactly one frame on the wire, header
	// included, whatever its length.
	for _, classic := range []bool{true, false} {
		nk := newTestNewsroom(t, classic)
		srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{})
		cfg := mustConfig(t, initDir(t, srv.URL, nk.key.Verifier))
		for _, frame := range []int{protocol.FrameSize, protocol.LowBandwidthFrameSz} {
			for _, n := range []int{10, 5000} {
				it, err := Compose(context.Background(), cfg, &crypto.Tip{Text: strings.Repeat("a", n)}, ComposeOptions{FrameSize: frame})
				if err != nil {
					t.Fatal(err)
				}
				if len(it.Ciphertext) != frame || it.FrameSize != frame {
					t.Errorf("classic=%t: Compose(%d characters, %d-byte frames) = %d bytes in %d-byte frames, want one frame", classic, n, frame, len(it.Ciphertext), it.FrameSize)
				}
			}
		}
	}
}

func TestOutboxFileShowsNothing(t *testing.T) {
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{})
	p := newPhone(t, srv.URL, nk.key.Verifier, nil)
	var markers []string
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(OutboxPath(p.dir))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	empty := size()
	for i := range 3 {
		tip, textMarker, fileMarker := testTip(t, 4<<10)
		markers = append(markers, textMarker, fileMarker)
		p.compose(t, tip)
		if got := size(); got != empty {
			t.Errorf("outbox with %d items is %d bytes, empty it was %d", i+1, got, empty)
		}
		// No plaintext, and no age header: the uploads inside are age
		// files, the container shows none of them.
		fieldtiptest.AssertNoPlaintext(t, p.dir, append(markers, "age-encryption.org")...)
	}
	if empty != DefaultOutboxSize {
		t.Errorf("outbox is %d bytes, want DefaultOutboxSize %d", empty, DefaultOutboxSize)
	}
	if n := len(p.reopen(t).Items); n != 3 {
		t.Errorf("reopened outbox holds %d items, want 3", n)
	}
}

func TestSendOutboxFlakyLink(t *testing.T) {
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{})
	relay := startRelay(t, srv, flakylink.Config{})
	p := newPhone(t, relay.URL("http"), nk.key.Verifier, nil)

	// The photo and a long report, in low-bandwidth frames (8 KiB,
	// FIELD.md's worst links): more than 5·Window frames, for 5 cuts below.
	const frame = protocol.LowBandwidthFrameSz
	tip := photoTip(t, "the convoy left at dawn")
	if need := (5*Window+1)*frame - len(tip.Attachments[0].Data); need > 0 {
		tip.Text += strings.Repeat(" and then", need/9+1)
	}
	it, err := Compose(context.Background(), p.cfg(t), tip, ComposeOptions{FrameSize: frame})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ob.Add(it); err != nil {
		t.Fatal(err)
	}
	total := int64(len(it.Ciphertext))
	frames := total / frame

	// Cut every connection half a frame after the Window-th frame (and
	// the session's overhead). The client sends a frame past the Window-th
	// only once an ack came back, so every session moves the upload on
	// (SendOutbox stops after one that does not) whatever the timing; and
	// none carries more than Window whole frames, so the upload needs more
	// than 5 sessions, all but the last cut.
	const wire = frame + protocol.FrameHeaderSize + 8
	cutEvery := int64(sessionOverhead + Window*wire + wire/2)
	link := flakylink.Profile{Name: "fast", UpBitsPerSec: 4_000_000, DownBitsPerSec: 4_000_000, RTT: 10 * time.Millisecond}
	if err := relay.SetConfig(flakylink.Config{Profile: link, CutEvery: cutEvery}); err != nil {
		t.Fatal(err)
	}
	before := relay.Stats()
	rep, err := SendOutbox(context.Background(), p.cfg(t), p.ob, SendOptions{Budget: 2 * time.Minute})
	if err != nil {
		t.Fatalf("SendOutbox over a link cut every %d bytes: %v (report %+v)", cutEvery, err, rep)
	}
	relay.Close()
	st := relay.Stats()
	up, cuts, conns := st.BytesUp-before.BytesUp, int64(st.Cuts-before.Cuts), st.Connections-before.Connections
	t.Logf("%d bytes (%d frames) in %d sessions, %d cuts; %d bytes relayed up", total, frames, rep.Sessions, cuts, up)

	if len(rep.Sent) != 1 || rep.Remaining != 0 {
		t.Fatalf("SendOutbox report = %+v, want the item sent", rep)
	}
	checkDelivered(t, srv, nk, rep.Sent[0], tip.Text)
	if cuts < 5 || int64(rep.Sessions) != cuts+1 || rep.Sessions != conns {
		t.Errorf("%d sessions (%d connections relayed), %d cuts; want at least 5 cuts and one session more, one per connection", rep.Sessions, conns, cuts)
	}
	// A cut costs at most the frames in flight, sent again, and a new
	// session's overhead: nothing is sent from the start again.
	limit := frames*wire + int64(rep.Sessions)*sessionOverhead + cuts*Window*wire
	if up > limit {
		t.Errorf("%d bytes relayed up for %d bytes of ciphertext and %d cuts; want at most %d (the frames, a session's overhead each, and %d frames in flight per cut)", up, total, cuts, limit, Window)
	}
	if rep.BytesSent < total {
		t.Errorf("report counts %d bytes sent, less than the ciphertext's %d", rep.BytesSent, total)
	}
	if len(p.reopen(t).Items) != 0 {
		t.Errorf("the delivered item is still in the outbox file")
	}
}

func TestSendOutboxBudgetThenResume(t *testing.T) {
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{})
	slow := startRelay(t, srv, flakylink.Config{})
	p := newPhone(t, slow.URL("http"), nk.key.Verifier, nil)
	const text = "the budget test"
	it := p.compose(t, randomTip(text, 60<<10))
	id, total := it.UploadID, int64(len(it.Ciphertext))

	// 128 kbit/s: a frame a second, so the upload needs about five
	// seconds and the budget of two and a half stops it midway.
	throttled := flakylink.Profile{Name: "throttled", UpBitsPerSec: 128_000, DownBitsPerSec: 128_000, RTT: 50 * time.Millisecond}
	if err := slow.SetConfig(flakylink.Config{Profile: throttled}); err != nil {
		t.Fatal(err)
	}
	const budget = 2500 * time.Millisecond
	rep, err := SendOutbox(context.Background(), p.cfg(t), p.ob, SendOptions{Budget: budget})
	if !errors.Is(err, ErrBudgetSpent) {
		t.Fatalf("SendOutbox with a %s budget for a %d-byte upload at 128 kbit/s = %v, want ErrBudgetSpent", budget, total, err)
	}
	// The budget is a hard stop; the second's slack is for closing.
	if len(rep.Sent) != 0 || rep.Remaining != 1 || rep.RemainingBytes != total || rep.Connected > budget+time.Second {
		t.Errorf("report after the budget = %+v, want nothing sent, 1 item of %d bytes left, about %s connected", rep, total, budget)
	}
	slow.Close() // what the relay still held is lost, as on a dropped link
	left := p.reopen(t)
	if len(left.Items) != 1 || !left.Items[0].Started || left.Items[0].UploadID != id {
		t.Fatalf("outbox after the budget: %d items (started %t, same upload %t), want the item, started", len(left.Items), len(left.Items) == 1 && left.Items[0].Started, len(left.Items) == 1 && left.Items[0].UploadID == id)
	}
	u, err := srv.Store.GetUpload(context.Background(), id)
	if err != nil {
		t.Fatalf("the server has no upload for the item: %v", err)
	}
	if u.Received <= 0 || u.Received >= total {
		t.Fatalf("the server holds %d of %d bytes after the budget; the test needs part of the upload there", u.Received, total)
	}

	// The next run resumes from the server's offset, on a good link.
	fast := startRelay(t, srv, flakylink.Config{})
	rep, err = SendOutbox(context.Background(), p.cfg(t), left, SendOptions{NetDialContext: dialTo(fast.Addr())})
	if err != nil {
		t.Fatalf("second SendOutbox: %v", err)
	}
	if len(rep.Sent) != 1 || rep.Sessions != 1 || rep.Remaining != 0 {
		t.Fatalf("second SendOutbox report = %+v, want the item sent in one session", rep)
	}
	checkDelivered(t, srv, nk, rep.Sent[0], text)
	fast.Close()
	up := fast.Stats().BytesUp
	remainder := (total - u.Received) / protocol.FrameSize * wireFrame
	t.Logf("the server held %d of %d bytes; the resume sent %d bytes", u.Received, total, up)
	if up > remainder+sessionOverhead {
		t.Errorf("the resume sent %d bytes; the remainder is %d bytes in frames: it sent more than the rest", up, remainder)
	}
	if len(p.reopen(t).Items) != 0 {
		t.Errorf("the delivered item is still in the outbox file")
	}
}

func TestSendOutboxDropsItemOfRetiredBundle(t *testing.T) {
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{
		Config: func(c *server.Config) { c.BundleGrace = -1 }, // version 1 is refused once 2 is in force
	})
	p := newPhone(t, srv.URL, nk.key.Verifier, nil)
	p.compose(t, &crypto.Tip{Text: "sealed to version 1"})
	resp, err := http.Post(srv.URL+protocol.PathBundle, "text/plain", bytes.NewReader(nk.bundle(t, 2, srv.LogKey.Verifier)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("publish bundle 2: %s", resp.Status)
	}

	rep, err := SendOutbox(context.Background(), p.cfg(t), p.ob, SendOptions{})
	if err != nil {
		t.Fatalf("SendOutbox: %v", err)
	}
	if len(rep.Dropped) != 1 || len(rep.Sent) != 0 || len(rep.Held) != 0 || rep.Remaining != 0 {
		t.Fatalf("SendOutbox report = %+v, want the item dropped", rep)
	}
	if d := rep.Dropped[0]; d.BundleVersion != 1 || d.Reason == nil || !strings.Contains(d.Reason.Error(), "version 2") {
		t.Errorf("Dropped = %+v, want bundle version 1 and a reason naming version 2", d)
	}
	if n := len(p.reopen(t).Items); n != 0 {
		t.Errorf("the outbox file holds %d items, want the dropped one gone", n)
	}
	if n, err := srv.Store.CountTips(context.Background()); err != nil || n != 0 {
		t.Errorf("server holds %d tips (%v), want 0", n, err)
	}
	cfg, err := LoadConfig(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HighestBundleVersion != 2 {
		t.Errorf("HighestBundleVersion = %d, want 2 (the bundle that settled the drop)", cfg.HighestBundleVersion)
	}

	// A tip composed now is sealed to version 2 and goes through.
	p.compose(t, &crypto.Tip{Text: "sealed to version 2"})
	rep, err = SendOutbox(context.Background(), p.cfg(t), p.ob, SendOptions{})
	if err != nil || len(rep.Sent) != 1 || rep.Sent[0].BundleVersion != 2 {
		t.Fatalf("SendOutbox of a tip sealed to version 2 = %+v, %v", rep, err)
	}
	checkDelivered(t, srv, nk, rep.Sent[0], "sealed to version 2")
}

func TestSendOutboxRenewsPurgedUpload(t *testing.T) {
	// An unfinished upload expires on the server (72 hours and a spread,
	// FIELD.md) and the purge deletes it: the source's resume is then
	// refused, and the item goes anew under a new upload id. The server's
	// clock cannot be moved from here, so the test deletes the upload as
	// the purge does; rogue_test.go plays the expired refusal itself.
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{})
	p := newPhone(t, srv.URL, nk.key.Verifier, nil)
	const text = "the upload that expired"
	// More frames than a window, so the commit (sent right behind the
	// last frame) cannot go out before the first ack.
	it := p.compose(t, randomTip(text, 100<<10))
	oldID := it.UploadID

	// The source gives up as soon as the server holds the first frame.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := SendOutbox(ctx, p.cfg(t), p.ob, SendOptions{Progress: func(acked, _ int64) {
		if acked > 0 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("SendOutbox cancelled after the first frame = %v, want context.Canceled", err)
	}
	if u, err := srv.Store.GetUpload(context.Background(), oldID); err != nil || u.Received == 0 {
		t.Fatalf("the server's upload after the first session: %+v, %v; want it there with a frame", u, err)
	}
	if err := srv.Store.DeleteUpload(context.Background(), oldID); err != nil {
		t.Fatal(err)
	}

	// The next run resumes, is refused, and sends the item anew under a
	// new upload id, computing its proofs with the radio off in between.
	ob := p.reopen(t)
	if len(ob.Items) != 1 || !ob.Items[0].Started {
		t.Fatalf("outbox after the first session: %d items, want the started one", len(ob.Items))
	}
	var newID [16]byte
	rep, err := SendOutbox(context.Background(), p.cfg(t), ob, SendOptions{Progress: func(int64, int64) {
		newID = ob.Items[0].UploadID
	}})
	if err != nil {
		t.Fatalf("SendOutbox after the purge: %v", err)
	}
	if len(rep.Sent) != 1 || rep.Remaining != 0 || rep.Sessions != 2 {
		t.Fatalf("SendOutbox report = %+v, want the item sent in two sessions (the refused resume, the new upload)", rep)
	}
	if newID == oldID || newID == ([16]byte{}) {
		t.Errorf("the item was sent under upload id %x, the purged one was %x: want a new one", newID, oldID)
	}
	checkDelivered(t, srv, nk, rep.Sent[0], text)
	if n, err := srv.Store.CountTips(context.Background()); err != nil || n != 1 {
		t.Errorf("server holds %d tips (%v), want 1", n, err)
	}
}

func TestSendOutboxAfterEpochChange(t *testing.T) {
	// The source last connected two epochs ago: its stored seed, signed
	// by the server's log key, is that epoch's. The server (on the real
	// clock) now accepts only the current and previous epochs.
	nk := newTestNewsroom(t, true)
	logKey, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "fieldtip-log")
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{LogKey: logKey})
	p := newPhone(t, srv.URL, nk.key.Verifier, nil)
	cfg, err := LoadConfig(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	current := cfg.Seeds[0]
	old := string(signSeed(t, logKey, currentEpoch()-2, 3))
	cfg.Seeds = []string{old}
	if err := cfg.save(); err != nil {
		t.Fatal(err)
	}

	var warned []string
	const text = "composed with an old seed"
	it, err := Compose(context.Background(), p.cfg(t), &crypto.Tip{Text: text}, ComposeOptions{Warn: func(s string) { warned = append(warned, s) }})
	if err != nil {
		t.Fatalf("Compose with an old seed: %v", err)
	}
	if it.PoWEpoch != currentEpoch()-2 || len(warned) != 1 {
		t.Fatalf("Compose: proofs of epoch %d, %d warnings; want epoch %d and a warning", it.PoWEpoch, len(warned), currentEpoch()-2)
	}
	if err := p.ob.Add(it); err != nil {
		t.Fatal(err)
	}

	var sentEpoch int64 = -1
	rep, err := SendOutbox(context.Background(), p.cfg(t), p.ob, SendOptions{Progress: func(int64, int64) {
		sentEpoch = p.ob.Items[0].PoWEpoch
	}})
	if err != nil {
		t.Fatalf("SendOutbox: %v", err)
	}
	if len(rep.Sent) != 1 || rep.Remaining != 0 || rep.Sessions != 2 {
		t.Fatalf("SendOutbox report = %+v, want the item sent in two sessions (fetch the seed, then send)", rep)
	}
	if sentEpoch != currentEpoch() {
		t.Errorf("the item went with proofs of epoch %d, want the current %d", sentEpoch, currentEpoch())
	}
	checkDelivered(t, srv, nk, rep.Sent[0], text)
	cfg, err = LoadConfig(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Seeds) != 2 || cfg.Seeds[0] != old || cfg.Seeds[1] != current {
		t.Errorf("stored seeds after the send: %d, want the old one and the server's current one, oldest first", len(cfg.Seeds))
	}
}

func TestSendOutboxRenewsProofsTheServerCallsStale(t *testing.T) {
	// The phone holds a seed of the previous epoch, signed by the server's
	// log key, that this server never issued (its database was restored
	// from an older backup, say): by the clock the proofs are good, but
	// the server refuses them as stale_pow. The client fetches the current
	// seed, recomputes the proofs with it, and delivers.
	nk := newTestNewsroom(t, true)
	logKey, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "fieldtip-log")
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{LogKey: logKey})
	p := newPhone(t, srv.URL, nk.key.Verifier, nil)
	cfg := mustConfig(t, p.dir)
	current := cfg.Seeds[0]
	cfg.Seeds = []string{string(signSeed(t, logKey, currentEpoch()-1, 5))}
	if err := cfg.save(); err != nil {
		t.Fatal(err)
	}
	const text = "proofs the server calls stale"
	it := p.compose(t, &crypto.Tip{Text: text})
	if it.PoWEpoch != currentEpoch()-1 {
		t.Fatalf("Compose: proofs of epoch %d, want %d", it.PoWEpoch, currentEpoch()-1)
	}
	rep, err := SendOutbox(context.Background(), p.cfg(t), p.ob, SendOptions{})
	if err != nil {
		t.Fatalf("SendOutbox: %v (report %+v)", err, rep)
	}
	if len(rep.Sent) != 1 || rep.Remaining != 0 {
		t.Fatalf("SendOutbox report = %+v, want the item sent", rep)
	}
	checkDelivered(t, srv, nk, rep.Sent[0], text)
	if seeds := mustConfig(t, p.dir).Seeds; len(seeds) != 2 || seeds[1] != current {
		t.Errorf("stored seeds: %d, want the previous epoch's and the server's current one", len(seeds))
	}
}
