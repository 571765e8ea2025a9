package client

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/internal/testkit/flakylink"
)

// BenchmarkFetchReplies measures the connected time of a bucket fetch
// through flakylink at FIELD.md's GPRS profile, against FIELD.md's ideal:
// round trips × RTT + bytes ÷ rate. The round trips: TCP (the relay
// charges it), the WebSocket upgrade (TLS, which the loopback server does
// not run, would be one more: the ideal leaves it out too), the bucket
// (and a second request when the server holds more than 8 replies), and
// the deletes. The bytes are those the relay carried both ways (a fetch
// is mostly downlink, at the same rate in these profiles).
//
// Cases: the server holds 8 replies (one bucket: everything), or 40 (the
// server suggests 3 bits: a second request, a bucket of about 5). Each
// time the source has one reply waiting. It reports, per fetch:
//
//	connected-s  FetchReplies' connected time, dial to close
//	ideal-s      round trips × RTT + (bytes up + bytes down) × 8 ÷ rate
//	ratio        connected-s ÷ ideal-s
//	bytes-down   bytes the relay delivered to the client
//	replies      replies in the bucket
//
//	go test ./client -run X -bench FetchReplies -benchtime 3x
func BenchmarkFetchReplies(b *testing.B) {
	for _, stored := range []int{8, 40} {
		b.Run(fmt.Sprintf("GPRS/stored%d", stored), func(b *testing.B) {
			benchFetch(b, flakylink.GPRS, stored)
		})
	}
}

func benchFetch(b *testing.B, prof flakylink.Profile, stored int) {
	nk := newTestNewsroom(b, false)
	srv := fieldtiptest.StartServer(b, func(log string) []byte { return nk.bundle(b, 1, log) }, fieldtiptest.ServerOptions{})
	relay, err := flakylink.Start(hostPort(b, srv.URL), flakylink.Config{Profile: prof, ChargeHandshake: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { relay.Close() })
	p := newPhone(b, relay.URL("http"), nk.key.Verifier, dialTo(hostPort(b, srv.URL)))
	keys := p.replyKeys(b, p.codename)
	others := p.replyKeys(b, "walnut basin pumice copper truck mountain harbor")
	ctx := context.Background()
	// The other replies go to mailboxes that share the source's first
	// bits evenly with the rest, as random ids do.
	for range stored - 1 {
		var mb [32]byte
		rand.Read(mb[:])
		storeReply(b, srv, others, mb, "for someone else")
	}
	var connected time.Duration
	var up, down int64
	var rounds, bucket int
	b.StopTimer()
	b.ResetTimer()
	for range b.N {
		storeReply(b, srv, keys, keys.Mailbox, "Which company's trucks?")
		before := relay.Stats()
		b.StartTimer()
		rep, err := FetchReplies(ctx, p.cfg(b), keys, FetchOptions{Budget: 5 * time.Minute})
		b.StopTimer()
		if err != nil || len(rep.Replies) != 1 || !rep.Replies[0].Deleted {
			b.Fatalf("FetchReplies = %+v, %v; want the reply read and deleted", rep, err)
		}
		after := relay.Stats()
		connected += rep.Connected
		up += after.BytesUp - before.BytesUp
		down += after.BytesDown - before.BytesDown
		rounds += 2 + rep.RoundTrips // TCP, upgrade, then the client's waits
		bucket += rep.Bucket
	}
	n := float64(b.N)
	conn := connected.Seconds() / n
	ideal := float64(rounds)/n*prof.RTT.Seconds() + float64(up+down)/n*8/float64(prof.DownBitsPerSec)
	b.ReportMetric(conn, "connected-s")
	b.ReportMetric(ideal, "ideal-s")
	b.ReportMetric(conn/ideal, "ratio")
	b.ReportMetric(float64(down)/n, "bytes-down")
	b.ReportMetric(float64(bucket)/n, "replies")
}
