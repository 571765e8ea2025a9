package flakylink_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"fieldtip/internal/testkit/flakylink"
)

// testDeadline bounds every blocking socket call of a test, so that a relay
// bug fails the test instead of hanging it. It is never a timing assertion.
const testDeadline = 10 * time.Second

// checkLeaks records the goroutine count now and, when the test ends (after
// every cleanup registered later), fails it if the count does not come back.
// Register it first.
func checkLeaks(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= base {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines = %d after the test, want <= %d\n%s", n, base, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// startServer runs handle on each connection to a loopback listener until
// the test ends, then closes the listener and every connection and waits for
// the handlers.
func startServer(t *testing.T, handle func(*net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.SetDeadline(time.Now().Add(testDeadline))
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// startEcho echoes each connection, half-closing it at the client's end of
// stream.
func startEcho(t *testing.T) string {
	return startServer(t, func(c *net.TCPConn) {
		defer c.Close()
		// Wrapped so that io.Copy makes plain reads and writes, not a splice
		// from the socket to itself.
		if _, err := io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c}); err == nil {
			_ = c.CloseWrite()
			_, _ = io.Copy(io.Discard, c)
		}
	})
}

// sinkResult is what a sink connection received before it ended.
type sinkResult struct {
	n   int64
	err error // nil at an orderly end of stream
	at  time.Time
}

// startSink reads each connection to its end and reports the count.
func startSink(t *testing.T) (string, <-chan sinkResult) {
	got := make(chan sinkResult, 16)
	addr := startServer(t, func(c *net.TCPConn) {
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		got <- sinkResult{n, err, time.Now()}
	})
	return addr, got
}

func startRelay(t *testing.T, target string, cfg flakylink.Config) *flakylink.Relay {
	t.Helper()
	r, err := flakylink.Start(target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func dial(t *testing.T, r *flakylink.Relay) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(testDeadline)); err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn)
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = rng.Read(b)
	return b
}

func receive(t *testing.T, ch <-chan sinkResult) sinkResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(testDeadline):
		t.Fatal("the sink saw no connection end")
		return sinkResult{}
	}
}

// wantReset fails the test unless err is a TCP reset: the relay's cuts
// and Close must be abrupt, and a deadline expiry means nothing was cut.
func wantReset(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("%s: err = %v, want a connection reset", what, err)
	}
}

func TestThrottledRelayIsIntactAndExact(t *testing.T) {
	checkLeaks(t)
	r := startRelay(t, startEcho(t), flakylink.Config{Profile: flakylink.Profile{
		Name: "test", UpBitsPerSec: 2_000_000, DownBitsPerSec: 1_000_000, RTT: 20 * time.Millisecond,
	}})
	// Two connections at once, written in uneven pieces, so segments of
	// both directions of both connections interleave in the relay.
	const size = 40_000
	var wg sync.WaitGroup
	for i := range 2 {
		c := dial(t, r)
		want := randomBytes(uint64(i), size)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rest := want; len(rest) > 0; {
				n := min(len(rest), 1+int(rest[0])*13)
				if _, err := c.Write(rest[:n]); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				rest = rest[n:]
			}
			if err := c.CloseWrite(); err != nil {
				t.Errorf("close write: %v", err)
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Errorf("connection %d: read: %v", i, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("connection %d: echoed %d bytes differ from the %d sent", i, len(got), len(want))
			}
		}()
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	want := flakylink.Stats{BytesUp: 2 * size, BytesDown: 2 * size, Connections: 2}
	if got := r.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestCutExactlyAtCutEvery(t *testing.T) {
	for _, tc := range []struct {
		name string
		rate int
	}{
		// Unthrottled, the 10,000-byte write arrives as one read and the
		// cut falls inside it.
		{"unthrottled", 0},
		// At 1 Mbit/s segments are 1,250 bytes: the cut falls inside the
		// third.
		{"throttled", 1_000_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			addr, got := startSink(t)
			const cutEvery = 3000
			r := startRelay(t, addr, flakylink.Config{
				Profile:  flakylink.Profile{UpBitsPerSec: tc.rate, DownBitsPerSec: tc.rate},
				CutEvery: cutEvery,
			})

			// Connection 1 sends more than CutEvery: cut at exactly
			// CutEvery.
			c := dial(t, r)
			_, _ = c.Write(randomBytes(1, 10_000)) // may fail once cut
			_, err := io.ReadAll(c)
			wantReset(t, "client after the cut", err)
			if res := receive(t, got); res.n != cutEvery {
				t.Errorf("sink received %d bytes on the cut connection, want %d", res.n, cutEvery)
			}

			// Connection 2 starts a fresh count: 2,000 bytes go through.
			c = dial(t, r)
			if _, err := c.Write(randomBytes(2, 2000)); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(c); err != nil {
				t.Errorf("reconnected client: %v", err)
			}
			if res := receive(t, got); res.n != 2000 || res.err != nil {
				t.Errorf("sink received %d bytes, %v after reconnecting, want 2000, <nil>", res.n, res.err)
			}

			// Connection 3 is cut at CutEvery again.
			c = dial(t, r)
			_, _ = c.Write(randomBytes(3, 5000))
			_, err = io.ReadAll(c)
			wantReset(t, "client after the second cut", err)
			if res := receive(t, got); res.n != cutEvery {
				t.Errorf("sink received %d bytes on the second cut connection, want %d", res.n, cutEvery)
			}

			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			want := flakylink.Stats{BytesUp: cutEvery + 2000 + cutEvery, Connections: 3, Cuts: 2}
			if got := r.Stats(); got != want {
				t.Errorf("Stats() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestMaxCuts(t *testing.T) {
	checkLeaks(t)
	addr, got := startSink(t)
	r := startRelay(t, addr, flakylink.Config{CutEvery: 100, MaxCuts: 1})

	c := dial(t, r)
	_, _ = c.Write(randomBytes(1, 1000))
	_, err := io.ReadAll(c)
	wantReset(t, "first connection", err)
	if res := receive(t, got); res.n != 100 {
		t.Errorf("sink received %d bytes on the cut connection, want 100", res.n)
	}

	// The relay's one cut is spent: this connection goes through whole,
	// written in two pieces so that CutEvery is crossed more than once.
	c = dial(t, r)
	for range 2 {
		if _, err := c.Write(randomBytes(2, 500)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("second connection: %v", err)
	}
	if res := receive(t, got); res.n != 1000 || res.err != nil {
		t.Errorf("sink received %d bytes, %v, want 1000, <nil>", res.n, res.err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := r.Stats(); got.Cuts != 1 || got.BytesUp != 1100 {
		t.Errorf("Stats() = %+v, want Cuts 1, BytesUp 1100", got)
	}
}

// roundTrip sends one byte through c to an echo server and reads it back.
func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := c.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestDelayIsApplied(t *testing.T) {
	checkLeaks(t)
	const rtt = 200 * time.Millisecond
	echo := startEcho(t)
	// Only lower bounds on time are asserted: a slow machine can make the
	// relay slower, never faster.
	t.Run("round trip", func(t *testing.T) {
		r := startRelay(t, echo, flakylink.Config{Profile: flakylink.Profile{RTT: rtt}})
		c := dial(t, r)
		for i := range 2 {
			start := time.Now()
			roundTrip(t, c)
			if d := time.Since(start); d < rtt {
				t.Errorf("round trip %d took %v, want >= %v", i, d, rtt)
			}
		}
	})
	t.Run("handshake", func(t *testing.T) {
		r := startRelay(t, echo, flakylink.Config{Profile: flakylink.Profile{RTT: rtt}, ChargeHandshake: true})
		start := time.Now()
		c := dial(t, r)
		roundTrip(t, c)
		if d := time.Since(start); d < 2*rtt {
			t.Errorf("connect and round trip took %v, want >= %v", d, 2*rtt)
		}
	})
}

func TestRateAndDelayCompose(t *testing.T) {
	checkLeaks(t)
	const (
		size = 10_000
		rate = 80_000
		rtt  = 200 * time.Millisecond
	)
	p := flakylink.Profile{UpBitsPerSec: rate, DownBitsPerSec: rate, RTT: rtt}
	// FIELD.md's model of a link: RTT/2 + bytes*8/rate for one way.
	want := rtt/2 + time.Duration(size*8)*time.Second/rate

	t.Run("up", func(t *testing.T) {
		addr, got := startSink(t)
		r := startRelay(t, addr, flakylink.Config{Profile: p})
		c := dial(t, r)
		start := time.Now()
		if _, err := c.Write(randomBytes(1, size)); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		res := receive(t, got)
		if res.n != size {
			t.Fatalf("sink received %d bytes, want %d", res.n, size)
		}
		if d := res.at.Sub(start); d < want {
			t.Errorf("%d bytes up at %d bit/s with %v RTT took %v, want >= %v", size, rate, rtt, d, want)
		}
	})
	t.Run("down", func(t *testing.T) {
		data := randomBytes(2, size)
		addr := startServer(t, func(c *net.TCPConn) {
			defer c.Close()
			_, _ = c.Write(data)
		})
		r := startRelay(t, addr, flakylink.Config{Profile: p})
		start := time.Now()
		c := dial(t, r)
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		if !bytes.Equal(b, data) {
			t.Fatalf("received %d bytes that differ from the %d sent", len(b), len(data))
		}
		if d < want {
			t.Errorf("%d bytes down at %d bit/s with %v RTT took %v, want >= %v", size, rate, rtt, d, want)
		}
	})
}

func TestCloseCutsLiveConnections(t *testing.T) {
	checkLeaks(t)
	r := startRelay(t, startEcho(t), flakylink.Config{Profile: flakylink.ThreeG})
	c1, c2 := dial(t, r), dial(t, r)
	roundTrip(t, c1)
	roundTrip(t, c2)
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testDeadline):
		t.Fatal("Close did not return with connections live")
	}
	for i, c := range []net.Conn{c1, c2} {
		_, err := c.Read(make([]byte, 1))
		wantReset(t, fmt.Sprintf("connection %d after Close", i), err)
	}
	if _, err := net.Dial("tcp", r.Addr()); err == nil {
		t.Error("dialled the relay after Close")
	}
	if got := r.Stats(); got.Cuts != 0 || got.Connections != 2 {
		t.Errorf("Stats() = %+v, want Connections 2 and no cuts", got)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSetConfig(t *testing.T) {
	checkLeaks(t)
	r := startRelay(t, startEcho(t), flakylink.Config{})
	old := dial(t, r)
	roundTrip(t, old) // accepted under the old configuration

	if err := r.SetConfig(flakylink.Config{CutEvery: -1}); err == nil {
		t.Error("SetConfig accepted CutEvery -1")
	}
	if err := r.SetConfig(flakylink.Config{CutEvery: 10}); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(1, 100)
	if _, err := old.Write(data); err != nil {
		t.Fatal(err)
	}
	if got := make([]byte, len(data)); func() error { _, err := io.ReadFull(old, got); return err }() != nil || !bytes.Equal(got, data) {
		t.Error("a connection opened before SetConfig did not keep its configuration")
	}

	c := dial(t, r)
	_, _ = c.Write(data)
	_, err := io.ReadAll(c)
	wantReset(t, "connection opened after SetConfig", err)
	if got := r.Stats(); got.Cuts != 1 {
		t.Errorf("Stats().Cuts = %d, want 1", got.Cuts)
	}
}

func TestUnreachableTargetResets(t *testing.T) {
	checkLeaks(t)
	// Connecting to port 0 is refused at once. (A port freed by closing a
	// listener could be taken by the relay itself, or by another process.)
	r := startRelay(t, "127.0.0.1:0", flakylink.Config{})
	c, err := net.Dial("tcp", r.Addr())
	if err == nil {
		// The reset can come before the client's connect has returned
		// (then Dial reports it) or after.
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(testDeadline)); err != nil {
			t.Fatal(err)
		}
		_, err = c.Read(make([]byte, 1))
	}
	wantReset(t, "client of an unreachable target", err)
}

func TestStartRefusesInvalidConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target string
		cfg    flakylink.Config
	}{
		{"target without port", "127.0.0.1", flakylink.Config{}},
		{"empty target", "", flakylink.Config{}},
		{"negative uplink", "127.0.0.1:1", flakylink.Config{Profile: flakylink.Profile{UpBitsPerSec: -1}}},
		{"negative downlink", "127.0.0.1:1", flakylink.Config{Profile: flakylink.Profile{DownBitsPerSec: -1}}},
		{"negative RTT", "127.0.0.1:1", flakylink.Config{Profile: flakylink.Profile{RTT: -time.Millisecond}}},
		{"negative CutEvery", "127.0.0.1:1", flakylink.Config{CutEvery: -1}},
		{"negative MaxCuts", "127.0.0.1:1", flakylink.Config{MaxCuts: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := flakylink.Start(tc.target, tc.cfg)
			if err == nil {
				r.Close()
				t.Fatalf("Start(%q, %+v) = nil error, want one", tc.target, tc.cfg)
			}
		})
	}
}

func TestProfilesMatchField(t *testing.T) {
	// FIELD.md, "Link profiles": uplink and round trip.
	for _, tc := range []struct {
		p    flakylink.Profile
		name string
		up   int
		rtt  time.Duration
	}{
		{flakylink.GPRS, "GPRS", 20_000, 500 * time.Millisecond},
		{flakylink.TwoG, "2G", 50_000, 300 * time.Millisecond},
		{flakylink.Good2G, "good 2G", 150_000, 150 * time.Millisecond},
		{flakylink.ThreeG, "3G", 250_000, 100 * time.Millisecond},
	} {
		if tc.p.Name != tc.name || tc.p.UpBitsPerSec != tc.up || tc.p.DownBitsPerSec != tc.up || tc.p.RTT != tc.rtt {
			t.Errorf("profile %q = %+v, want %d bit/s both ways and %v", tc.name, tc.p, tc.up, tc.rtt)
		}
	}
	if len(flakylink.Profiles) != 4 {
		t.Errorf("len(Profiles) = %d, want 4", len(flakylink.Profiles))
	}
}

func ExampleStart() {
	// A target that answers "ok" to anything.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Read(make([]byte, 16))
		_, _ = c.Write([]byte("ok"))
	}()

	r, err := flakylink.Start(ln.Addr().String(), flakylink.Config{Profile: flakylink.ThreeG})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte("hello"))
	reply, _ := io.ReadAll(c) // over 100 ms later: the target closes after replying
	r.Close()
	s := r.Stats()
	fmt.Printf("%s: %d bytes up, %d down\n", reply, s.BytesUp, s.BytesDown)
	// Output: ok: 5 bytes up, 2 down
}
