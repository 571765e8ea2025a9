package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"fieldtip/crypto"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// signPoWSeed signs a stand-in proof-of-work seed entry: package crypto
// owns its text; the log checks its first line and its signer.
func signPoWSeed(t testing.TB, epoch string, s note.Signer) []byte {
	t.Helper()
	return signText(t, PoWSeedHeader+"\nepoch "+epoch+"\n", s)
}

func signReceipts(t testing.TB, p Period, s note.Signer) []byte {
	t.Helper()
	msg, err := SignReceiptsRoot(&ReceiptsRoot{Period: p, Size: 1024, Root: tlog.RecordHash([]byte(p.First)), Key: sha256.Sum256([]byte(p.Last))}, s)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// buildLog builds a log of every entry type: bundle 1 (alice, bob),
// events by both, a receipts root and a seed, bundle 2 (alice, carol;
// bob revoked), events by alice and carol.
func buildLog(t testing.TB) (*testLog, map[string]*crypto.EditorKey) {
	bob, carol := newEditor(t, "bob"), newEditor(t, "carol")
	l := newTestLog(t)
	l.addBundle(1, []*crypto.EditorKey{testAlice, bob})
	l.addEvent(testAlice, &EventBody{Kind: KindTriage, Tip: tipID(1), Status: StatusUseful, Tags: []string{"copper"}})
	l.addEvent(bob, &EventBody{Kind: KindNote, Tip: tipID(1), Text: "Second source?"})
	l.append(signReceipts(t, OneDay("2026-03-13"), testLogKey.Signer))
	l.append(signPoWSeed(t, "2920", testLogKey.Signer))
	l.addEvent(bob, &EventBody{Kind: KindTriage, Tip: tipID(2), Status: StatusSpam})
	l.addBundle(2, []*crypto.EditorKey{testAlice, carol}, "bob")
	l.addEvent(carol, &EventBody{Kind: KindDelete, Tip: tipID(2), Ciphertext: [32]byte{2}})
	l.append(signReceipts(t, Period{"2026-03-14", "2026-03-20"}, testLogKey.Signer))
	l.addEvent(testAlice, &EventBody{Kind: KindNote, Tip: tipID(1), Text: "Confirmed."})
	return l, map[string]*crypto.EditorKey{"alice": testAlice, "bob": bob, "carol": carol}
}

func TestVerifyLog(t *testing.T) {
	l, _ := buildLog(t)
	v, err := l.verify()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.Tree(), l.tree(); got != want {
		t.Errorf("Verifier.Tree() = %v, want %v", got, want)
	}
	for i, want := range map[int64]int64{1: 1, 5: 1, 6: 1, 7: 2, int64(len(l.entries)): 2} {
		if b := v.BundleAt(i); b == nil || b.Version != want {
			t.Errorf("BundleAt(%d) = %v, want version %d", i, b, want)
		}
	}
	if b := v.BundleAt(0); b != nil {
		t.Errorf("BundleAt(0) = version %d, want nil", b.Version)
	}
	if b := v.BundleAt(int64(len(l.entries)) + 1); b != nil {
		t.Errorf("BundleAt(past the end) = version %d, want nil", b.Version)
	}
	// The verifier is a tlog.HashReader over the verified log: prove an
	// entry and a prefix from it.
	tree := v.Tree()
	p, err := tlog.ProveRecord(tree.N, 3, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckRecord(p, tree.N, tree.Hash, 3, tlog.RecordHash(l.entries[3])); err != nil {
		t.Errorf("inclusion proof from the verifier: %v", err)
	}
}

// Verifying in pieces gives what one pass gives; a read error can be
// retried; a refusal sticks.
func TestVerifyIncremental(t *testing.T) {
	l, _ := buildLog(t)
	v, err := NewVerifier(testNewsroom.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := int64(len(l.entries))
	for _, end := range []int64{1, 4, 4, n} {
		if err := v.Verify(ctx, SliceReader(l.entries), end); err != nil {
			t.Fatalf("Verify to %d: %v", end, err)
		}
		if v.Size() != end {
			t.Fatalf("after Verify to %d, Size() = %d", end, v.Size())
		}
	}
	if got, want := v.Tree(), l.tree(); got != want {
		t.Errorf("Tree() after pieces = %v, want %v", got, want)
	}
	// Past the end of what the reader has: an I/O error, not a refusal.
	if err := v.Verify(ctx, SliceReader(l.entries), n+1); err == nil || errors.As(err, new(*EntryError)) {
		t.Fatalf("Verify past the reader's end = %v, want a read error", err)
	}
	l.entries = append(l.entries, signReceipts(t, OneDay("2026-03-21"), testLogKey.Signer))
	if err := v.Verify(ctx, SliceReader(l.entries), n+1); err != nil {
		t.Fatalf("Verify after a read error: %v", err)
	}
	bad := append(append([][]byte{}, l.entries...), l.entries[9]) // a replayed event
	// A reader that returns too few entries is an error too.
	if err := v.Verify(ctx, shortReader{SliceReader(bad)}, n+2); err == nil || errors.As(err, new(*EntryError)) {
		t.Fatalf("Verify with a short reader = %v, want a read error", err)
	}
	err = v.Verify(ctx, SliceReader(bad), n+2)
	if ee := entryError(t, err); ee.Index != n+1 || !errors.Is(err, ErrReplayedEvent) {
		t.Fatalf("Verify of a replayed event = %v, want ErrReplayedEvent at %d", err, n+1)
	}
	if again := v.Verify(ctx, SliceReader(bad), n+2); again != err {
		t.Errorf("Verify after a refusal = %v, want the same refusal", again)
	}
	ctxDone, cancel := context.WithCancel(ctx)
	cancel()
	v2, _ := NewVerifier(testNewsroom.Verifier)
	if err := v2.Verify(ctxDone, SliceReader(l.entries), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with a cancelled context = %v", err)
	}
}

type shortReader struct{ SliceReader }

func (r shortReader) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	e, err := r.SliceReader.ReadEntries(ctx, start, end)
	if err != nil {
		return nil, err
	}
	return e[:len(e)-1], nil
}

// A changed byte anywhere in any entry is caught, at that entry.
func TestVerifyChangedByte(t *testing.T) {
	l, _ := buildLog(t)
	for i, e := range l.entries {
		for _, pos := range []int{0, 5, len(e) / 3, len(e) / 2, len(e) - 90, len(e) - 50, len(e) - 2, len(e) - 1} {
			for _, x := range []byte{0x01, 0x80} {
				entries := bytes.Clone(e)
				entries[pos] ^= x
				bad := append(append(append([][]byte{}, l.entries[:i]...), entries), l.entries[i+1:]...)
				v, _ := NewVerifier(testNewsroom.Verifier)
				err := v.Verify(context.Background(), SliceReader(bad), int64(len(bad)))
				if ee := entryError(t, err); ee.Index != int64(i) {
					t.Errorf("entry %d byte %d ^ %#x: refused at entry %d (%v)", i, pos, x, ee.Index, err)
				}
			}
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	otherNewsroom, err := crypto.GenerateSignerKey(crypto.NewsroomKeyHeader, "newsroom.example")
	if err != nil {
		t.Fatal(err)
	}
	otherLog, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "log.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		// extend appends the bad entry to a valid log and returns its index.
		extend func(l *testLog, eds map[string]*crypto.EditorKey) int64
		want   []error
	}{
		{"replayed event", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			return l.append(l.entries[9])
		}, []error{ErrReplayedEvent}},
		{"event id reused with a new base", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			e := *l.events[int64(len(l.entries)-1)]
			e.Base = l.tree()
			msg, err := SignEvent(&e, signer(t, testAlice))
			if err != nil {
				t.Fatal(err)
			}
			return l.append(msg)
		}, []error{ErrReplayedEvent}},
		{"base of a forked log", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			fork := l.tree()
			fork.Hash[0] ^= 1
			msg, _, _ := l.makeEvent(testAlice, &EventBody{Kind: KindNote, Tip: tipID(1), Text: "x"}, fork)
			return l.append(msg)
		}, []error{ErrNotPrefix}},
		{"base of an earlier size with the current root", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			base := l.tree()
			base.N--
			msg, _, _ := l.makeEvent(testAlice, &EventBody{Kind: KindNote, Tip: tipID(1), Text: "x"}, base)
			return l.append(msg)
		}, []error{ErrNotPrefix}},
		{"base beyond the event's index", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			base := l.tree()
			base.N++
			msg, _, _ := l.makeEvent(testAlice, &EventBody{Kind: KindNote, Tip: tipID(1), Text: "x"}, base)
			return l.append(msg)
		}, []error{ErrNotPrefix}},
		{"revoked editor", func(l *testLog, eds map[string]*crypto.EditorKey) int64 {
			msg, _, _ := l.makeEvent(eds["bob"], &EventBody{Kind: KindNote, Tip: tipID(1), Text: "x"}, l.tree())
			return l.append(msg)
		}, []error{crypto.ErrUnknownSigner, ErrRevokedEditor}},
		{"revoked editor naming the old bundle", func(l *testLog, eds map[string]*crypto.EditorKey) int64 {
			e := *l.events[2]
			e.ID[0] ^= 1
			e.Base = l.tree()
			msg, err := SignEvent(&e, signer(t, eds["bob"]))
			if err != nil {
				t.Fatal(err)
			}
			return l.append(msg)
		}, []error{crypto.ErrUnknownSigner, ErrRevokedEditor}},
		{"editor of no bundle", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			msg, _, _ := l.makeEvent(newEditor(t, "eve"), &EventBody{Kind: KindNote, Tip: tipID(1), Text: "x"}, l.tree())
			return l.append(msg)
		}, []error{crypto.ErrUnknownSigner}},
		{"cosigning key", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			text, err := (&Event{Bundle: 2, Day: "2026-03-14", Base: l.tree()}).text()
			if err != nil {
				t.Fatal(err)
			}
			cs, err := testAlice.Cosigner()
			if err != nil {
				t.Fatal(err)
			}
			return l.append(signText(t, text, cs))
		}, []error{crypto.ErrUnknownSigner}},
		{"event naming the old bundle", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			e := &Event{Bundle: 1, Day: "2026-03-14", Base: l.tree()}
			e.ID[0] = 0x42
			msg, err := SignEvent(e, signer(t, testAlice))
			if err != nil {
				t.Fatal(err)
			}
			return l.append(msg)
		}, []error{ErrWrongBundle}},
		{"bundle version repeated", func(l *testLog, eds map[string]*crypto.EditorKey) int64 {
			l.addBundle(2, []*crypto.EditorKey{testAlice, eds["bob"]})
			return int64(len(l.entries) - 1)
		}, []error{ErrBundleVersion}},
		{"bundle version lower", func(l *testLog, eds map[string]*crypto.EditorKey) int64 {
			l.addBundle(1, []*crypto.EditorKey{testAlice, eds["bob"]})
			return int64(len(l.entries) - 1)
		}, []error{ErrBundleVersion}},
		{"bundle of another newsroom", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			b := &crypto.Bundle{Newsroom: otherNewsroom.Verifier, Version: 9, Expires: l.bundle.Expires, Log: testLogKey.Verifier,
				Policy: crypto.DefaultPolicy, Editors: []crypto.Editor{testAlice.Public}}
			msg, err := crypto.SignBundle(b, otherNewsroom.Signer)
			if err != nil {
				t.Fatal(err)
			}
			return l.append(msg)
		}, []error{crypto.ErrUnknownSigner}},
		{"receipts by another log key", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			return l.append(signReceipts(t, OneDay("2026-03-21"), otherLog.Signer))
		}, []error{crypto.ErrUnknownSigner}},
		{"receipts period repeated", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			return l.append(signReceipts(t, OneDay("2026-03-20"), testLogKey.Signer))
		}, []error{ErrPeriod}},
		{"receipts signed twice", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			msg, err := SignReceiptsRoot(&ReceiptsRoot{Period: OneDay("2026-03-21"), Size: 1}, testLogKey.Signer)
			if err != nil {
				t.Fatal(err)
			}
			return l.append(append(msg, msg[bytes.LastIndex(msg, []byte("\n\n"))+2:]...))
		}, []error{crypto.ErrMalformed}},
		{"seed by another log key", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			return l.append(signPoWSeed(t, "2921", otherLog.Signer))
		}, []error{crypto.ErrUnknownSigner}},
		{"seed by an editor", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			return l.append(signPoWSeed(t, "2921", signer(t, testAlice)))
		}, []error{crypto.ErrUnknownSigner}},
		{"unknown entry type", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			return l.append(signText(t, "fieldtip/claim/v1\nx 1\n", testLogKey.Signer))
		}, []error{ErrUnknownEntry}},
		{"a receipt is not an entry", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			msg, err := crypto.SignReceipt(&crypto.Receipt{SHA256: [32]byte{1}, Length: 1, Day: "2026-03-14"}, testLogKey.Signer)
			if err != nil {
				t.Fatal(err)
			}
			return l.append(msg)
		}, []error{ErrUnknownEntry}},
		{"entry over the cap", func(l *testLog, _ map[string]*crypto.EditorKey) int64 {
			return l.append(append([]byte(EventHeader+"\n"), make([]byte, MaxEntrySize)...))
		}, []error{crypto.ErrMalformed}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, eds := buildLog(t)
			i := c.extend(l, eds)
			_, err := l.verify()
			ee := entryError(t, err)
			if ee.Index != i {
				t.Errorf("refused at entry %d, want %d: %v", ee.Index, i, err)
			}
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Errorf("Verify = %v, want %v", err, w)
				}
			}
		})
	}
}

func TestVerifyFirstEntry(t *testing.T) {
	l := newTestLog(t)
	l.append(signReceipts(t, OneDay("2026-03-13"), testLogKey.Signer))
	_, err := l.verify()
	if ee := entryError(t, err); ee.Index != 0 || !errors.Is(err, ErrNoBundle) {
		t.Fatalf("Verify of a log starting with receipts = %v, want ErrNoBundle at 0", err)
	}
	if _, err := NewVerifier("not a key"); err == nil {
		t.Error("NewVerifier accepted a malformed newsroom key")
	}
}

// BenchmarkVerify measures the verifier over 100,000 entries: a bundle
// and events by two editors, each with a real base checkpoint. Signing is
// done once, outside the timer.
func BenchmarkVerify(b *testing.B) {
	const n = 100_000
	bob := newEditor(b, "bob")
	l := newTestLog(b)
	l.addBundle(1, []*crypto.EditorKey{testAlice, bob})
	signers := []note.Signer{signer(b, testAlice), signer(b, bob)}
	var ev Event
	ev.Bundle, ev.Day = 1, "2026-03-14"
	for i := int64(1); i < n; i++ {
		ev.ID[0], ev.ID[1], ev.ID[2] = byte(i), byte(i>>8), byte(i>>16)
		ev.Ciphertext[0], ev.Public[0], ev.Private[0] = byte(i), byte(i>>1), byte(i>>2)
		// The author last verified a checkpoint a few entries back.
		base := l.tree()
		if i > 8 {
			base.N -= i % 8
			h, err := tlog.TreeHash(base.N, l)
			if err != nil {
				b.Fatal(err)
			}
			base.Hash = h
		}
		ev.Base = base
		msg, err := SignEvent(&ev, signers[i%2])
		if err != nil {
			b.Fatal(err)
		}
		l.append(msg)
	}
	b.ResetTimer()
	for b.Loop() {
		v, err := NewVerifier(testNewsroom.Verifier)
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Verify(context.Background(), SliceReader(l.entries), n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// addCheapEvent appends an event whose hashes are made up (the verifier
// never sees bodies), with the current tree as base.
func (l *testLog) addCheapEvent(editor *crypto.EditorKey) int64 {
	l.t.Helper()
	e := &Event{Bundle: l.bundle.Version, Day: "2026-03-14", Base: l.tree()}
	n := len(l.entries)
	e.ID[0], e.ID[1], e.ID[15] = byte(n), byte(n>>8), 0xee
	e.Public[0] = byte(n)
	msg, err := SignEvent(e, signer(l.t, editor))
	if err != nil {
		l.t.Fatal(err)
	}
	return l.append(msg)
}

// Batches are checked in parallel: a bundle change inside a batch takes
// effect at its index, and of two bad entries in one batch the first is
// reported.
func TestVerifyParallelBatch(t *testing.T) {
	bob, carol := newEditor(t, "bob"), newEditor(t, "carol")
	l := newTestLog(t)
	l.addBundle(1, []*crypto.EditorKey{testAlice, bob})
	for len(l.entries) < 300 {
		l.addCheapEvent(bob)
	}
	l.addBundle(2, []*crypto.EditorKey{testAlice, carol}, "bob")
	for len(l.entries) < 700 {
		l.addCheapEvent(carol)
	}
	if _, err := l.verify(); err != nil {
		t.Fatal(err)
	}
	good := append([][]byte{}, l.entries...)
	l.addCheapEvent(bob) // revoked: index 700
	for len(l.entries) < 740 {
		l.addCheapEvent(testAlice)
	}
	l.append(good[650]) // replayed: index 740
	for len(l.entries) < 800 {
		l.addCheapEvent(testAlice)
	}
	_, err := l.verify()
	if ee := entryError(t, err); ee.Index != 700 || !errors.Is(err, ErrRevokedEditor) {
		t.Fatalf("Verify = %v, want ErrRevokedEditor at 700", err)
	}
	// An event signed by bob just before the bundle that revokes him, in
	// the same batch, is valid.
	l2 := newTestLog(t)
	l2.addBundle(1, []*crypto.EditorKey{testAlice, bob})
	for len(l2.entries) < 100 {
		l2.addCheapEvent(testAlice)
	}
	l2.addCheapEvent(bob)
	l2.addBundle(2, []*crypto.EditorKey{testAlice, carol}, "bob")
	for len(l2.entries) < 200 {
		l2.addCheapEvent(carol)
	}
	if _, err := l2.verify(); err != nil {
		t.Fatal(err)
	}
}
