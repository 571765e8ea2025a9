package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
)

// Attacks on the upload slots (issue 11, "Slots cost what they hold"),
// each with an honest source sending successfully during the attack and
// /healthz answering.

// healthz reports whether GET /healthz answers 200 ok.
func (ts *testServer) healthz() error {
	c := &http.Client{Timeout: failAfter}
	resp, err := c.Get(ts.origin() + protocol.PathHealth)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /healthz: %s", resp.Status)
	}
	return nil
}

// flood sends msgs, each on a connection of its own, from workers
// goroutines, and returns the count of each answer's code ("opened" for
// an offset): what an attacker gets for them.
func (ts *testServer) flood(t *testing.T, workers int, msgs [][]byte) map[string]int {
	t.Helper()
	var next atomic.Int64
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(msgs)); i = next.Add(1) - 1 {
				code, err := floodOne(testDialer, ts.wsURL(), msgs[i])
				if err != nil {
					t.Errorf("flood message %d: %v", i, err)
					return
				}
				mu.Lock()
				got[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return got
}

// randomNonceUploads returns n upload messages of one frame whose proofs
// of work and pre-proof are random nonces: what an attacker who computes
// nothing sends. With pre true, each carries a valid pre-proof over its
// random proofs instead: the attacker pays 2^16 SHA-256 evaluations a
// message to reach the Argon2id check.
func (ts *testServer) randomNonceUploads(tb testing.TB, n int, pre bool) [][]byte {
	tb.Helper()
	seed := ts.seed(tb)
	msgs := make([][]byte, n)
	for i := range msgs {
		up := ts.bareUpload(ts.s.Bundle().Version, fs16, fs16)
		up.PoWEpoch, up.PoW = seed.Epoch, randomNonces(1)
		up.PrePoW = randomNonces(1)[0]
		if pre {
			up.PrePoW = prePoWOf(tb, seed, up)
		}
		msgs[i] = protocol.Marshal(up)
	}
	return msgs
}

// TestRandomNonceFlood floods upload messages whose proofs are random
// nonces at a server with the default proof-of-work cost. Without the
// pre-proof each cost the server one Argon2id check (and one in 256 got a
// slot); now each is refused as bad_pow for a small fraction of one
// Argon2id check of process CPU time (attacker's connections and all,
// measured while the server does nothing else), none opens an upload, and
// an honest source sends during the flood while /healthz answers. An
// attacker who pays for a valid pre-proof reaches the Argon2id check, but
// spends more CPU per message than the server does (on a CPU).
func TestRandomNonceFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("solves proofs of work at the default cost")
	}
	ts := newTestServer(t, serverOptions{
		logger: testLoggerLevel(t, slog.LevelError+1), // nothing: a flood of refusals
		config: func(c *Config) { c.PoWParams = crypto.DefaultPoWParams },
	})
	seed := ts.seed(t)
	argon2 := argon2CheckCPU(t, seed)

	// Measured: random pre-proofs, nothing else running.
	const n = 400
	msgs := ts.randomNonceUploads(t, n, false)
	checks := ts.s.powChecks.Load()
	before := processCPU(t)
	got := ts.flood(t, 8, msgs)
	perMsg := (processCPU(t) - before) / n
	t.Logf("random nonces: %v; process CPU per message %v (one Argon2id check %v: %.3f of one)", got, perMsg, argon2, float64(perMsg)/float64(argon2))
	if got[string(protocol.CodeBadPoW)] != n {
		t.Errorf("answers %v, want %d bad_pow", got, n)
	}
	if c := ts.s.powChecks.Load() - checks; c != 0 {
		t.Errorf("the server checked the Argon2id proofs of %d of the %d messages, want none", c, n)
	}
	// Generous: BenchmarkRefusedNonce measures the server's share apart
	// (tens of microseconds); here the process's includes the attacker's
	// dials. Without the pre-proof each message cost one whole Argon2id
	// check, and more.
	if perMsg > argon2 {
		t.Errorf("process CPU per refused message %v, more than one Argon2id check (%v)", perMsg, argon2)
	}

	// An honest source sends while the flood goes on; /healthz answers.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			ts.flood(t, 4, ts.randomNonceUploads(t, 20, false))
		}
	})
	if err := ts.healthz(); err != nil {
		t.Errorf("during the flood: %v", err)
	}
	ts.send(t, "sent during a random-nonce flood")
	if err := ts.healthz(); err != nil {
		t.Errorf("during the flood: %v", err)
	}
	close(stop)
	wg.Wait()

	// Paying for the pre-proof reaches one Argon2id check a message, which
	// costs the attacker more than the server.
	const m = 40
	before = processCPU(t)
	msgs = ts.randomNonceUploads(t, m, true)
	attacker := (processCPU(t) - before) / m
	checks = ts.s.powChecks.Load()
	before = processCPU(t)
	got = ts.flood(t, 2, msgs)
	server := (processCPU(t) - before) / m
	if c := ts.s.powChecks.Load() - checks; c != m {
		t.Errorf("the server checked the Argon2id proofs of %d of the %d messages with a pre-proof, want all", c, m)
	}
	t.Logf("random nonces with pre-proofs: %v; the attacker's CPU per message %v, the process's per message sent %v", got, attacker, server)
	if got[string(protocol.CodeBadPoW)]+got["opened"] != m {
		t.Errorf("answers %v, want %d bad_pow or opened", got, m)
	}
	// On a CPU: about 2^16 SHA-256 evaluations (a few ms) against one
	// Argon2id check and a connection (SECURITY.md says what SHA-256
	// hardware changes).
	if attacker < server {
		t.Errorf("a message with a pre-proof cost the attacker %v and the server (and the attacker's dial) %v: want the attacker's more", attacker, server)
	}
	ts.intact(t)
}

// openStalled opens, on a connection of its own, a new upload of frames
// frames and sends its first acked frames, waits for their ack, and drops
// the connection: a slot left stalled. It returns the upload message.
func (ts *testServer) openStalled(t *testing.T, frames, acked int) *protocol.Upload {
	t.Helper()
	c := ts.dial(t)
	up := ts.newUpload(t, ts.s.Bundle().Version, int64(frames*fs16), fs16)
	c.text(up)
	c.readOffset(0)
	for i := range acked {
		c.binary(frameAt(int64(i*fs16), fs16))
	}
	if acked > 0 {
		c.readAcks(int64(acked * fs16))
	}
	c.drop()
	return up
}

// waitStalled waits until the server holds n slots, none on a connection.
func (ts *testServer) waitStalled(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d stalled slots", n), func() bool {
		ts.s.slots.mu.Lock()
		defer ts.s.slots.mu.Unlock()
		if len(ts.s.slots.m) != n {
			return false
		}
		for _, sl := range ts.s.slots.m {
			if sl.held {
				return false
			}
		}
		return true
	})
}

// TestStalledSlots fills the server's unfinished uploads with stalled ones
// (uploads opened and left, most with nothing acknowledged, some with a
// frame), as an attacker with valid proofs of work would. An honest source
// still sends: its upload evicts the stalled one with the least progress.
// Then, by the server's clock: the empty slots are freed after
// StallTimeout, those with a frame after their longer lifetime, and an
// honest half-sent photo survives six days and resumes.
func TestStalledSlots(t *testing.T) {
	const cap = 12
	ts := newTestServer(t, serverOptions{config: func(c *Config) { c.MaxUnfinishedUploads = cap }})
	// An honest source's photo of 10 frames, half sent, then its link
	// dropped: 80 KiB acknowledged, past 64 KiB, so a week to resume.
	photo := sealFor(t, ts, framesText(10), fs16, 10)
	half := ts.startUpload(t, photo, fs16, 5)
	half.c.drop()
	// The attacker: 8 slots opened and left empty, 3 with one frame.
	var empty, oneFrame []*protocol.Upload
	for range cap - 4 {
		empty = append(empty, ts.openStalled(t, 3, 0))
	}
	for range 3 {
		oneFrame = append(oneFrame, ts.openStalled(t, 3, 1))
	}
	ts.waitStalled(t, cap)

	// The cap is full of stalled uploads: an honest source still sends, on
	// a slot taken from an empty stalled upload; /healthz answers.
	if err := ts.healthz(); err != nil {
		t.Error(err)
	}
	ts.send(t, "sent while the slots were full")
	if err := ts.healthz(); err != nil {
		t.Error(err)
	}
	stored := func() map[protocol.UploadID]bool {
		ps, err := ts.store.ListUploadProgress(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		m := map[protocol.UploadID]bool{}
		for _, p := range ps {
			m[p.ID] = true
		}
		return m
	}
	left := stored()
	evicted := 0
	for _, up := range empty {
		if !left[up.UploadID] {
			evicted++
		}
	}
	if evicted != 1 || len(left) != cap-1 {
		t.Errorf("after the honest send: %d of the empty uploads evicted, %d stored; want 1 evicted, %d stored", evicted, len(left), cap-1)
	}
	for _, up := range append(oneFrame, half.up) {
		if !left[up.UploadID] {
			t.Errorf("an upload with frames acknowledged was evicted while empty ones were stalled")
		}
	}

	sweep := func(d time.Duration) map[protocol.UploadID]bool {
		t.Helper()
		ts.clock.advance(d)
		ts.s.sweepStalled(t.Context())
		return stored()
	}
	// Just before StallTimeout nothing goes; just after, the empty ones.
	left = sweep(ts.s.cfg.StallTimeout - time.Minute)
	if len(left) != cap-1 {
		t.Errorf("%d uploads before the stall timeout, want %d", len(left), cap-1)
	}
	left = sweep(2 * time.Minute)
	for _, up := range empty {
		if left[up.UploadID] {
			t.Errorf("an empty upload outlived the stall timeout %v", ts.s.cfg.StallTimeout)
		}
	}
	if len(left) != 4 {
		t.Errorf("%d uploads after the stall timeout, want the 4 with frames", len(left))
	}
	// One frame (16 KiB) buys a quarter of the way to a week.
	life := ts.s.uploadLifetime(fs16)
	if want := ts.s.cfg.StallTimeout + (ts.s.cfg.UploadExpiry-ts.s.cfg.StallTimeout)/4; life != want {
		t.Errorf("lifetime of 16 KiB acknowledged = %v, want %v", life, want)
	}
	left = sweep(life - ts.s.cfg.StallTimeout - 2*time.Minute)
	if len(left) != 4 {
		t.Errorf("%d uploads just before a frame's lifetime, want 4", len(left))
	}
	left = sweep(2 * time.Minute)
	if len(left) != 1 || !left[half.up.UploadID] {
		t.Errorf("after a frame's lifetime the store holds %d uploads, want only the half-sent photo", len(left))
	}
	// The half-sent photo resumes six days after its drop, and finishes.
	sweep(6*24*time.Hour - life)
	half.resumeOn(t, 5*fs16)
	ts.checkStored(t, half.finish(t, 5*fs16), photo)
	ts.intact(t)
}

// TestEvictionOrder: at the cap, each new upload evicts the stalled slot
// with the least bytes acknowledged, the longest without progress among
// equals; a slot held by a connection is never evicted, and with every
// slot held a new upload is refused busy.
func TestEvictionOrder(t *testing.T) {
	tbl := newSlots()
	now := time.Unix(1_800_000_000, 0)
	ids := make([]protocol.UploadID, 5)
	for i := range ids {
		rand.Read(ids[i][:])
		if _, ok := tbl.reserve(ids[i], 5, now); !ok {
			t.Fatalf("reserve(%d of 5) refused", i)
		}
	}
	// Progress: 2 frames, 0, 1 frame, 0 (older), held with 0.
	tbl.progressed(ids[0], 2*fs16, now)
	tbl.progressed(ids[2], fs16, now)
	tbl.progressed(ids[1], 0, now.Add(time.Minute))
	tbl.progressed(ids[3], 0, now)
	for _, i := range []int{0, 1, 2, 3} {
		tbl.release(ids[i])
	}
	var order []int
	for range 4 {
		var id protocol.UploadID
		rand.Read(id[:])
		victim, ok := tbl.reserve(id, 5, now)
		if !ok || victim == nil {
			t.Fatalf("reserve at the cap = %v, %v, want an eviction", victim, ok)
		}
		for i := range ids {
			if ids[i] == *victim {
				order = append(order, i)
			}
		}
	}
	if want := []int{3, 1, 2, 0}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("evicted %v, want %v (least progress first, the oldest among equals; never the held one)", order, want)
	}
	var id protocol.UploadID
	rand.Read(id[:])
	if victim, ok := tbl.reserve(id, 5, now); ok {
		t.Errorf("reserve with every slot held = %v, ok; want refused", victim)
	}
}

// TestSlotsFullAllHeld: when every slot is held by a live connection there
// is nothing stalled to evict, and a new upload is refused busy; it opens
// once one of them finishes.
func TestSlotsFullAllHeld(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) { c.MaxUnfinishedUploads = 2 }})
	var held []*partial
	for range 2 {
		held = append(held, ts.startUpload(t, sealFor(t, ts, framesText(2), fs16, 2), fs16, 1))
	}
	c := ts.dial(t)
	c.text(ts.newUpload(t, 1, fs16, fs16))
	if e := c.refusal(); !errors.Is(e, errSlotsFull) && e.Code != protocol.CodeBusy {
		t.Errorf("new upload with every slot held: %v, want busy", e)
	}
	for _, p := range held {
		ts.checkStored(t, p.finish(t, fs16), p.ct)
	}
	ts.send(t, "after the held uploads finished")
}

// TestStagingFullOfStalled: the staging space filled with the frames of
// stalled uploads does not refuse an honest source's frames: the stalled
// upload with the least progress makes room. With room taken by uploads
// open on connections, a frame is refused busy.
func TestStagingFullOfStalled(t *testing.T) {
	ts := newTestServer(t, serverOptions{config: func(c *Config) {
		c.MaxStagingBytes = 4 * fs16
		c.MaxUploadSize = 4 * fs16
	}})
	a := ts.openStalled(t, 3, 2)
	b := ts.openStalled(t, 4, 2)
	ts.waitStalled(t, 2)
	if got := ts.s.staging.Load(); got != 4*fs16 {
		t.Fatalf("staging %d, want full (%d)", got, 4*fs16)
	}
	if err := ts.healthz(); err != nil {
		t.Error(err)
	}
	ts.send(t, "sent while the staging space was full of stalled uploads")
	left := 0
	for _, up := range []*protocol.Upload{a, b} {
		if _, err := ts.store.GetUpload(t.Context(), up.UploadID); err == nil {
			left++
		}
	}
	if left != 1 {
		t.Errorf("%d of the 2 stalled uploads left, want 1 (one evicted for the honest frame)", left)
	}
	if got := ts.s.staging.Load(); got != 2*fs16 {
		t.Errorf("staging %d after the honest tip, want the %d of the stalled upload left", got, 2*fs16)
	}
}
