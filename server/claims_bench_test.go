package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"

	"fieldtip/audit"
	"fieldtip/protocol"

	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkPublicationCheck measures the server's check of a publication
// (docs/log.md, "Publications"): building the trail of a claim with 10
// supporting tips in 10 clusters from a log of 100,000 entries (through
// trailLog, reading the store), marshalling it, and running
// audit.CheckTrail on the bytes, as POST /editor/publish does. Baselines
// in the same run: "checktrail", CheckTrail alone on the same bytes (what
// every reader pays), and "prove1", one inclusion proof of an entry in
// the 100,000-entry tree read from the store (what POST /event pays for
// its answer).
//
//	go test -tags sqlite_omit_load_extension ./server -run X -bench PublicationCheck -benchtime 20x
func BenchmarkPublicationCheck(b *testing.B) {
	const logSize, tips = 100_000, 10
	r := newEditorsRun(b, func(s *Server) { s.log = slog.New(slog.DiscardHandler) })
	ctx := context.Background()
	// The log grows to about 100,000 entries through the server's own
	// committer (entries no reader of this trail needs to open).
	l := r.s.elog()
	for l.head.Load().tree.N < logSize-20 {
		n := min(4000, logSize-20-l.head.Load().tree.N)
		batch := make([][]byte, n)
		for i := range batch {
			e := bytes.Repeat([]byte{'x'}, 600)
			copy(e, fmt.Sprintf("fieldtip/bench-filler/v1\nentry %d\n", l.head.Load().tree.N+int64(i)))
			batch[i] = e
		}
		if a := r.s.sequence(&logRequest{entries: batch}); a.err != nil {
			b.Fatal(a.err)
		}
	}
	for i := range tips {
		r.tips = append(r.tips, r.send(b, fmt.Sprintf("tip %d of the benchmark", i)))
	}
	closed := r.closePeriod(0)
	r.receipts = closed.Receipts
	r.handles = benchHandles(b, r, closed.Receipts)
	c := r.newClaim(0, "Ten sources saw it.", "")
	for i := range tips {
		c.link(0, i, fmt.Sprintf("cluster %d", i), audit.StanceSupports)
	}
	c.signoff(1, audit.DecisionApprove)
	c.signoff(2, audit.DecisionApprove)
	req := c.publishEvent(0)
	r.cosignAll(0, 1, 2)
	head := l.head.Load()
	revealed := make([]audit.Revealed, len(req.Events))
	for i, e := range req.Events {
		revealed[i] = audit.Revealed{Index: e.Index, Public: e.Public, Salt: e.Salt}
	}
	data, rep, err := r.s.buildTrail(ctx, head, c.id, revealed)
	if err != nil || len(rep.Policy.Clusters) != tips {
		b.Fatalf("buildTrail() = %v, %d clusters", err, len(rep.Policy.Clusters))
	}
	b.Logf("log of %d entries; trail of %d bytes, %d events", head.tree.N, len(data), len(req.Events))

	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := r.s.buildTrail(ctx, head, c.id, revealed); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("checktrail", func(b *testing.B) {
		for b.Loop() {
			if _, err := audit.CheckTrail(data, r.newsroom.Verifier); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("prove1", func(b *testing.B) {
		for b.Loop() {
			if _, err := tlog.ProveRecord(head.tree.N, req.Publish, r.store.LogHashes(ctx)); err != nil {
				b.Fatal(err)
			}
		}
	})
	// And the endpoint, over HTTP, once: it accepts the publication.
	if status, body := r.post(0, req); status != http.StatusOK {
		b.Fatalf("POST %s = %d %s", protocol.PathPublish, status, body)
	}
}

// benchHandles computes each tip's handle as editor 0 does, from the
// store's copy of the period at the receipts root at index.
func benchHandles(tb testing.TB, r *claimRun, index int64) []audit.Leaf {
	tb.Helper()
	ctx := context.Background()
	p, err := r.store.ReceiptsPeriodAt(ctx, index)
	if err != nil {
		tb.Fatal(err)
	}
	root, err := audit.OpenReceiptsRoot(p.Entry, r.logKey.Verifier)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := audit.OpenPeriodKey(p.SealedKey, root, r.editors[0].Identity)
	if err != nil {
		tb.Fatal(err)
	}
	var out []audit.Leaf
	for _, tip := range r.tips {
		out = append(out, audit.TipLeaf(k, tip.Receipt.SHA256))
	}
	return out
}
