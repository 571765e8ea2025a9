package client

import (
	"context"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/internal/testkit/flakylink"
	"fieldtip/server"
)

// idealRoundTrips is the round trips of FIELD.md's ideal connected time
// for one session: three for TCP, TLS and the WebSocket upgrade, one for
// the commit and its receipt (a new upload's data follows its first
// message with no wait). The benchmark runs on loopback with no TLS, so
// the session measured pays one handshake round trip fewer than the ideal
// counts; the relay charges the TCP handshake (ChargeHandshake), which a
// loopback connect does not pay.
const idealRoundTrips = 4

// BenchmarkLinkProfiles measures the connected time SendOutbox takes to
// deliver one tip composed offline through flakylink at FIELD.md's GPRS
// and 2G profiles: a short text tip (one 16 KiB frame) and a tip with a
// phone's photo scrubbed to about 150 KiB. It reports, per tip:
//
//	connected-s  SendOutbox's connected time, dial to close
//	ideal-s      idealRoundTrips × RTT + bytes relayed up ÷ uplink rate
//	ratio        connected-s ÷ ideal-s
//	bytes-up     bytes the relay delivered to the server
//
// Compose, padding, encryption and proofs of work run offline, outside
// the timer. At GPRS the photo takes over a minute a tip: run it with
// -benchtime 1x.
func BenchmarkLinkProfiles(b *testing.B) {
	tips := []struct {
		name string
		tip  func(testing.TB) *crypto.Tip
	}{
		{"text16k", func(testing.TB) *crypto.Tip {
			return &crypto.Tip{Text: strings.Repeat("The trucks crossed at the second bend. ", 125)}
		}},
		{"photo150k", func(tb testing.TB) *crypto.Tip { return photoTip(tb, "the convoy left at dawn") }},
	}
	for _, prof := range []flakylink.Profile{flakylink.GPRS, flakylink.TwoG} {
		for _, tc := range tips {
			b.Run(prof.Name+"/"+tc.name, func(b *testing.B) {
				benchLink(b, prof, tc.tip(b))
			})
		}
	}
}

func benchLink(b *testing.B, prof flakylink.Profile, tip *crypto.Tip) {
	nk := newTestNewsroom(b, true)
	// The default proof-of-work cost: the benchmark measures what a source
	// meets.
	srv := fieldtiptest.StartServer(b, func(log string) []byte { return nk.bundle(b, 1, log) },
		fieldtiptest.ServerOptions{Config: func(c *server.Config) { c.PoWParams = crypto.DefaultPoWParams }})
	relay, err := flakylink.Start(hostPort(b, srv.URL), flakylink.Config{Profile: prof, ChargeHandshake: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { relay.Close() })
	// Init and Fetch happen once, by a direct route; the sends go through
	// the relay.
	p := newPhone(b, relay.URL("http"), nk.key.Verifier, dialTo(hostPort(b, srv.URL)))

	var connected time.Duration
	var up int64
	b.StopTimer()
	b.ResetTimer()
	for range b.N {
		p.compose(b, tip)
		before := relay.Stats().BytesUp
		b.StartTimer()
		rep, err := SendOutbox(context.Background(), p.cfg(b), p.ob, SendOptions{Budget: 5 * time.Minute})
		b.StopTimer()
		if err != nil || len(rep.Sent) != 1 || rep.Sessions != 1 {
			b.Fatalf("SendOutbox = %+v, %v; want the tip sent in one session", rep, err)
		}
		connected += rep.Connected
		up += relay.Stats().BytesUp - before
	}
	n := float64(b.N)
	conn := connected.Seconds() / n
	bytesUp := float64(up) / n
	ideal := idealRoundTrips*prof.RTT.Seconds() + bytesUp*8/float64(prof.UpBitsPerSec)
	b.ReportMetric(conn, "connected-s")
	b.ReportMetric(ideal, "ideal-s")
	b.ReportMetric(conn/ideal, "ratio")
	b.ReportMetric(bytesUp, "bytes-up")
}
