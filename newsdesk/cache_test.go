package newsdesk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"
	"unicode/utf8"

	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/internal/testkit/sourcekit"
	"fieldtip/protocol"
	"fieldtip/server"

	"filippo.io/age"
)

// desk is a running server, a source configured for it and an editor's
// empty cache.
type desk struct {
	nk    *testNewsroom
	srv   *testServer
	src   *sourcekit.Phone
	cache *Cache
}

func newDesk(t *testing.T, nk *testNewsroom, opts serverOptions) *desk {
	t.Helper()
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, opts)
	src := sourcekit.New(t, srv.URL, nk.key.Verifier, sourcekit.Options{})
	return &desk{nk: nk, srv: srv, src: src, cache: &Cache{Dir: filepath.Join(t.TempDir(), "cache")}}
}

// setCiphertext replaces the bytes the cache holds for a tip, in its
// pack, and returns its entry.
func setCiphertext(t testing.TB, c *Cache, id string, ct []byte) *Entry {
	t.Helper()
	e, err := c.Find(id)
	if err != nil {
		t.Fatal(err)
	}
	es, err := openPack(e.pack)
	if err != nil {
		t.Fatal(err)
	}
	var recs []packRecord
	for _, pe := range es {
		b, err := readAt(e.pack, pe.Off, pe.N)
		if err != nil {
			t.Fatal(err)
		}
		if pe.ID == id {
			b = ct
		}
		recs = append(recs, packRecord{Seq: pe.Seq, ID: pe.ID, Receipt: pe.Receipt, Ciphertext: b})
	}
	b, _, err := formatPack(recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.pack, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if e, err = c.Find(id); err != nil {
		t.Fatal(err)
	}
	return e
}

// tipsOf returns the tips' summaries an offline session on dir gives.
func tipsOf(t testing.TB, dir string, key *crypto.EditorKey) []TipSummary {
	t.Helper()
	s, err := OpenSession(context.Background(), SessionConfig{Cache: dir, Key: key})
	if err != nil {
		t.Fatalf("OpenSession: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	sums, err := s.Tips()
	if err != nil {
		t.Fatalf("Tips: %v", err)
	}
	return sums
}

// openTip opens a tip in an offline session on dir.
func openTip(t testing.TB, dir string, key *crypto.EditorKey, id string) (*crypto.Tip, *Entry, error) {
	t.Helper()
	s, err := OpenSession(context.Background(), SessionConfig{Cache: dir, Key: key})
	if err != nil {
		t.Fatalf("OpenSession: %v", err)
	}
	defer s.Close()
	return s.OpenTip(id)
}

// send sends a tip as a source and returns its verified receipt.
func (d *desk) send(t *testing.T, tip *crypto.Tip) *crypto.Receipt {
	t.Helper()
	res, err := d.src.Send(context.Background(), tip)
	if err != nil {
		t.Fatalf("sending a tip: %v", err)
	}
	return res.Receipt
}

// pull pulls into the cache and returns the ids pulled.
func (d *desk) pull(t *testing.T, opts PullOptions) []string {
	t.Helper()
	var ids []string
	opts.Pulled = func(id string) { ids = append(ids, id) }
	n, err := d.cache.Pull(context.Background(), d.srv.URL, d.nk.editor, opts)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if n != len(ids) {
		t.Errorf("Pull = %d, but reported %d ids", n, len(ids))
	}
	return ids
}

// markedTip returns a tip whose text and attachment each carry a unique
// marker.
func markedTip(firstLine string) (tip *crypto.Tip, textMarker, fileMarker string) {
	textMarker = "text-marker-" + rand.Text()
	fileMarker = "file-marker-" + rand.Text()
	data := make([]byte, 3000)
	rand.Read(data)
	copy(data[1000:], fileMarker)
	return &crypto.Tip{
		Text:        firstLine + "\n" + textMarker + " seen at the Hyesan mine",
		Attachments: []crypto.Attachment{{Name: "truck.jpg", Type: "image/jpeg", Data: data}},
	}, textMarker, fileMarker
}

func TestPull(t *testing.T) {
	d := newDesk(t, newTestNewsroom(t, true), serverOptions{})
	tip1, text1, file1 := markedTip("Copper concentrate crosses the Yalu at night")
	tip2 := &crypto.Tip{Text: "Second source\tconfirms\x07 the trucks\nmore"}
	r1 := d.send(t, tip1)
	r2 := d.send(t, tip2)

	ids := d.pull(t, PullOptions{})
	if want := []string{r1.TipIDString(), r2.TipIDString()}; !slices.Equal(ids, want) {
		t.Fatalf("first Pull pulled %q, want %q", ids, want)
	}
	if ids := d.pull(t, PullOptions{}); len(ids) != 0 {
		t.Errorf("second Pull pulled %q, want nothing", ids)
	}
	tip3, text3, file3 := markedTip("Third: the mine's guards are paid in copper")
	r3 := d.send(t, tip3)
	if ids := d.pull(t, PullOptions{}); !slices.Equal(ids, []string{r3.TipIDString()}) {
		t.Errorf("Pull after a new send pulled %q, want [%s]", ids, r3.TipIDString())
	}

	pinned, err := os.ReadFile(filepath.Join(d.cache.Dir, "newsroom"))
	if err != nil || strings.TrimSpace(string(pinned)) != d.nk.key.Verifier {
		t.Errorf("pinned newsroom key = %q (%v), want %q", pinned, err, d.nk.key.Verifier)
	}

	receipts := []*crypto.Receipt{r1, r2, r3}
	tips := []*crypto.Tip{tip1, tip2, tip3}
	entries, err := d.cache.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("List = %d entries, want 3", len(entries))
	}
	for i, e := range entries {
		if e.ID != receipts[i].TipIDString() || *e.Receipt != *receipts[i] {
			t.Errorf("entry %d = %s %+v, want %s %+v", i, e.ID, *e.Receipt, receipts[i].TipIDString(), *receipts[i])
		}
		if i > 0 && e.Seq <= entries[i-1].Seq {
			t.Errorf("entry %d has seq %d after %d", i, e.Seq, entries[i-1].Seq)
		}
		got, err := e.Open(d.nk.editor)
		if err != nil {
			t.Fatalf("entry %d: Open: %v", i, err)
		}
		if got.Text != tips[i].Text || len(got.Attachments) != len(tips[i].Attachments) {
			t.Errorf("entry %d: Open = %q with %d attachments, want %q with %d", i, got.Text, len(got.Attachments), tips[i].Text, len(tips[i].Attachments))
		}
	}

	sums := tipsOf(t, d.cache.Dir, d.nk.editor)
	if len(sums) != 3 {
		t.Fatalf("Tips = %d summaries, want 3: %+v", len(sums), sums)
	}
	wantSummaries := []struct {
		line        string
		attachments int
	}{
		{"Copper concentrate crosses the Yalu at night", 1},
		{"Second sourceconfirms the trucks", 0}, // control characters dropped
		{"Third: the mine's guards are paid in copper", 1},
	}
	for i, sum := range sums {
		w := wantSummaries[i]
		if sum.ID != receipts[i].TipIDString() || sum.Day != receipts[i].Day || sum.Length != receipts[i].Length ||
			sum.FirstLine != w.line || len(sum.Attachments) != w.attachments || sum.Unreadable != "" {
			t.Errorf("Tips()[%d] = %+v, want %s %s %d %q with %d attachment(s)", i, sum, receipts[i].TipIDString(), receipts[i].Day, receipts[i].Length, w.line, w.attachments)
		}
	}

	fieldtiptest.AssertNoPlaintext(t, d.cache.Dir, text1, file1, text3, file3, "Second source")
}

func TestPullPinsNewsroom(t *testing.T) {
	nk := newTestNewsroom(t, true)
	d := newDesk(t, nk, serverOptions{})
	d.send(t, &crypto.Tip{Text: "first"})
	d.pull(t, PullOptions{})
	bundleBefore, err := os.ReadFile(filepath.Join(d.cache.Dir, "bundle.txt"))
	if err != nil {
		t.Fatal(err)
	}

	// Another server whose bundle another newsroom key signed, listing the
	// same editor: the cache refuses it.
	other := &testNewsroom{key: newTestNewsroom(t, true).key, editor: nk.editor}
	evil := startServer(t, func(log string) []byte { return other.bundle(t, 5, log) }, serverOptions{})
	_, err = d.cache.Pull(context.Background(), evil.URL, nk.editor, PullOptions{})
	if !errors.Is(err, crypto.ErrUnknownSigner) {
		t.Errorf("Pull from a server with another newsroom's bundle = %v, want ErrUnknownSigner", err)
	}
	pinned, _ := os.ReadFile(filepath.Join(d.cache.Dir, "newsroom"))
	if strings.TrimSpace(string(pinned)) != nk.key.Verifier {
		t.Errorf("pinned newsroom key changed to %q", pinned)
	}
	if b, _ := os.ReadFile(filepath.Join(d.cache.Dir, "bundle.txt")); !bytes.Equal(b, bundleBefore) {
		t.Error("a refused bundle replaced the cached one")
	}

	// Asking for another newsroom key than the pinned one is refused too.
	if _, err := d.cache.Pull(context.Background(), d.srv.URL, nk.editor, PullOptions{Newsroom: other.key.Verifier}); err == nil {
		t.Error("Pull with --newsroom other than the pinned key = nil, want a refusal")
	}

	// A fresh cache told the newsroom key refuses a server signed by
	// another, and pins nothing.
	fresh := &Cache{Dir: filepath.Join(t.TempDir(), "cache")}
	if _, err := fresh.Pull(context.Background(), evil.URL, nk.editor, PullOptions{Newsroom: nk.key.Verifier}); !errors.Is(err, crypto.ErrUnknownSigner) {
		t.Errorf("fresh Pull with the newsroom key given = %v, want ErrUnknownSigner", err)
	}
	if _, err := os.Stat(filepath.Join(fresh.Dir, "newsroom")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused first Pull pinned a key: %v", err)
	}
}

func TestPullRefusesOlderBundle(t *testing.T) {
	nk := newTestNewsroom(t, true)
	newer := startServer(t, func(log string) []byte { return nk.bundle(t, 3, log) }, serverOptions{})
	cache := &Cache{Dir: filepath.Join(t.TempDir(), "cache")}
	if _, err := cache.Pull(context.Background(), newer.URL, nk.editor, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	older := startServer(t, func(log string) []byte { return nk.bundle(t, 2, log) }, serverOptions{})
	if _, err := cache.Pull(context.Background(), older.URL, nk.editor, PullOptions{}); err == nil {
		t.Error("Pull from a server with an older bundle = nil, want a refusal")
	}
	if b, err := cache.Bundle(); err != nil || b.Version != 3 {
		t.Errorf("cached bundle after the refusal = %v, %v; want version 3", b, err)
	}
}

func TestPullRefusesTamperingInTransit(t *testing.T) {
	// A proxy between the editor and the server changes what it relays:
	// Pull refuses, caches nothing and leaves the cursor alone; relayed
	// faithfully afterwards, the tip arrives.
	nk := newTestNewsroom(t, true)
	otherLog, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, server.DefaultLogName)
	if err != nil {
		t.Fatal(err)
	}
	var target *url.URL
	// tamper changes a response body of the given path; nil relays as is.
	var tamper atomic.Pointer[func(path string, body []byte) []byte]
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		ModifyResponse: func(resp *http.Response) error {
			f := tamper.Load()
			if f == nil || resp.StatusCode != http.StatusOK {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			b = (*f)(resp.Request.URL.Path, b)
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		},
	})
	t.Cleanup(proxy.Close)
	d := newDesk(t, nk, serverOptions{Config: func(c *server.Config) { c.Origin = proxy.URL }})
	if target, err = url.Parse(d.srv.URL); err != nil {
		t.Fatal(err)
	}
	d.send(t, &crypto.Tip{Text: "hello"})

	isTip := func(path string) bool { return strings.HasPrefix(path, protocol.PathTips+"/") }
	isList := func(path string) bool { return path == protocol.PathTips }
	// listing rewrites the first tip of a tip list.
	listing := func(change func(ti *protocol.TipInfo)) func(string, []byte) []byte {
		return func(path string, b []byte) []byte {
			if !isList(path) {
				return b
			}
			var l protocol.TipList
			if err := json.Unmarshal(b, &l); err != nil || len(l.Tips) == 0 {
				return b
			}
			change(&l.Tips[0])
			out, _ := json.Marshal(&l)
			return out
		}
	}
	tests := []struct {
		name   string
		tamper func(path string, b []byte) []byte
		want   error // nil: any error
	}{
		{"ciphertext_byte_changed", func(path string, b []byte) []byte {
			if isTip(path) {
				b[len(b)/2] ^= 1
			}
			return b
		}, ErrChecksum},
		{"ciphertext_truncated", func(path string, b []byte) []byte {
			if isTip(path) {
				return b[:len(b)-protocol.FrameSize/2]
			}
			return b
		}, ErrChecksum},
		{"ciphertext_of_other_tip", func(path string, b []byte) []byte {
			if isTip(path) {
				return bytes.Repeat([]byte{'x'}, len(b))
			}
			return b
		}, ErrChecksum},
		{"receipt_signed_by_other_log_key", listing(func(ti *protocol.TipInfo) {
			rc, err := crypto.OpenReceipt([]byte(ti.Receipt), d.srv.LogKey.Verifier)
			if err != nil {
				t.Error(err)
				return
			}
			msg, _ := crypto.SignReceipt(rc, otherLog.Signer)
			ti.Receipt = string(msg)
		}), crypto.ErrUnknownSigner},
		{"receipt_byte_changed", listing(func(ti *protocol.TipInfo) {
			ti.Receipt = strings.Replace(ti.Receipt, "length ", "length 1", 1)
		}), crypto.ErrBadSignature},
		{"listing_sha256_changed", listing(func(ti *protocol.TipInfo) {
			ti.SHA256 = strings.Repeat("0", 64)
		}), nil},
		{"listing_length_changed", listing(func(ti *protocol.TipInfo) { ti.Length++ }), nil},
		{"listing_id_changed", listing(func(ti *protocol.TipInfo) { ti.ID = "AAAAAAAAAAAAAAAAAAAAAA" }), nil},
		{"listing_day_changed", listing(func(ti *protocol.TipInfo) { ti.Day = "1999-01-01" }), nil},
		{"listing_seq_not_after_cursor", listing(func(ti *protocol.TipInfo) { ti.Seq = 0 }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tamper.Store(&tt.tamper)
			defer tamper.Store(nil)
			cache := &Cache{Dir: filepath.Join(t.TempDir(), "cache")}
			n, err := cache.Pull(context.Background(), proxy.URL, nk.editor, PullOptions{})
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || n != 0 {
				t.Errorf("Pull through a tampering proxy = %d, %v; want 0 and an error (%v)", n, err, tt.want)
			}
			if names, _ := filepath.Glob(filepath.Join(cache.Dir, "tips", "*")); len(names) != 0 {
				t.Errorf("a refused tip was cached: %q", names)
			}
			if _, err := os.Stat(filepath.Join(cache.Dir, "cursor")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused tip moved the cursor: %v", err)
			}
		})
	}
	cache := &Cache{Dir: filepath.Join(t.TempDir(), "cache")}
	if n, err := cache.Pull(context.Background(), proxy.URL, nk.editor, PullOptions{}); n != 1 || err != nil {
		t.Errorf("Pull through a faithful proxy = %d, %v; want 1 tip", n, err)
	}
}

func TestEntryOpenRefusesChangedFile(t *testing.T) {
	d := newDesk(t, newTestNewsroom(t, true), serverOptions{})
	tip, _, _ := markedTip("first line")
	tip.Attachments[0].Data = make([]byte, 150<<10) // several age chunks
	rand.Read(tip.Attachments[0].Data)
	rc := d.send(t, tip)
	d.pull(t, PullOptions{})
	e, err := d.cache.Find(rc.TipIDString())
	if err != nil {
		t.Fatal(err)
	}
	orig, err := e.ciphertext()
	if err != nil {
		t.Fatal(err)
	}
	n := len(orig)
	changed := func(i int) []byte { b := bytes.Clone(orig); b[i] ^= 0x80; return b }
	tests := []struct {
		name string
		file []byte
	}{
		{"first_byte_changed", changed(0)},
		{"middle_byte_changed", changed(n / 2)},
		{"last_byte_changed", changed(n - 1)},
		{"truncated_by_one", orig[:n-1]},
		{"truncated_to_half", orig[:n/2]},
		{"truncated_to_one_frame", orig[:protocol.FrameSize]},
		{"empty", nil},
		{"byte_appended", append(bytes.Clone(orig), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setCiphertext(t, d.cache, rc.TipIDString(), tt.file)
			t.Cleanup(func() { setCiphertext(t, d.cache, rc.TipIDString(), orig) })
			got, err := e.Open(d.nk.editor)
			if !errors.Is(err, ErrChecksum) {
				t.Errorf("Open = %v, want ErrChecksum", err)
			}
			if got != nil {
				t.Errorf("Open returned a tip (%q) with error %v", got.Text, err)
			}
			if _, _, err := openTip(t, d.cache.Dir, d.nk.editor, rc.TipIDString()); !errors.Is(err, ErrChecksum) {
				t.Errorf("OpenTip = %v, want ErrChecksum", err)
			}
			// The sealed index summarizes the tip as it was when it
			// checked out; without it, the inbox says it does not open.
			if err := os.Remove(filepath.Join(d.cache.Dir, snapshotFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			sums := tipsOf(t, d.cache.Dir, d.nk.editor)
			if len(sums) != 1 || sums[0].ID != rc.TipIDString() || !strings.Contains(sums[0].Unreadable, "does not match") || sums[0].FirstLine != "" {
				t.Errorf("Tips with a changed file = %+v, want the id and why it does not open", sums)
			}
		})
	}
	if e, err = d.cache.Find(rc.TipIDString()); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Open(d.nk.editor); err != nil || got.Text != tip.Text {
		t.Errorf("Open of the restored file = %v, %v", got, err)
	}
}

func TestOpenTruncatedCiphertext(t *testing.T) {
	// age authenticates every chunk and marks the last one: a ciphertext
	// cut anywhere, even exactly between two chunks, is an error and no
	// text.
	ek, err := crypto.GenerateEditorKey("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	recipients, err := (&crypto.Bundle{Editors: []crypto.Editor{ek.Public}}).Recipients()
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 200<<10)
	rand.Read(data)
	tip := &crypto.Tip{Text: "all of it or nothing", Attachments: []crypto.Attachment{{Name: "a.bin", Type: "application/octet-stream", Data: data}}}
	ct, err := crypto.Seal(tip, recipients, protocol.FrameSize)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(ct))
	if err != nil {
		t.Fatal(err)
	}
	const nonce, chunk, tag = 16, 64 << 10, 16
	cuts := []int{0, 1, len(hdr) - 1, len(hdr), len(hdr) + nonce, len(ct) - 1, len(ct) - tag, len(ct) / 2}
	for k := 1; len(hdr)+nonce+k*(chunk+tag) < len(ct); k++ {
		end := len(hdr) + nonce + k*(chunk+tag) // exactly k whole chunks
		cuts = append(cuts, end, end-1, end+1)
	}
	for f := protocol.FrameSize; f < len(ct); f += protocol.FrameSize {
		cuts = append(cuts, f)
	}
	for _, n := range cuts {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			got, err := crypto.Open(ct[:n], ek.Identity)
			if err == nil || got != nil {
				t.Errorf("crypto.Open(first %d of %d bytes) = %v, %v; want an error and no tip", n, len(ct), got, err)
			}
		})
	}
	if got, err := crypto.Open(ct, ek.Identity); err != nil || got.Text != tip.Text {
		t.Errorf("crypto.Open(whole) = %v, %v", got, err)
	}
}

// TestWriteAttachments: every attachment is written, never over a file:
// a name taken, in the directory or by an earlier attachment, gets a
// number (issue 12: the first collision stopped the rest); hostile names
// are made plain.
func TestWriteAttachments(t *testing.T) {
	tip := &crypto.Tip{Text: "x", Attachments: []crypto.Attachment{
		{Name: "a.jpg", Type: "image/jpeg", Data: []byte("new a")},
		{Name: "b.jpg", Type: "image/jpeg", Data: []byte("new b")},
	}}
	check := func(t *testing.T, paths, want []string, tip *crypto.Tip) {
		t.Helper()
		if !slices.Equal(paths, want) {
			t.Fatalf("WriteAttachments = %q, want %q", paths, want)
		}
		for i, p := range paths {
			if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, tip.Attachments[i].Data) {
				t.Errorf("%s = %q, %v; want %q", p, b, err, tip.Attachments[i].Data)
			}
		}
		assertNoTempFiles(t, filepath.Dir(paths[0]))
	}
	t.Run("fresh_dir_then_again", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		paths, err := WriteAttachments(dir, tip)
		if err != nil {
			t.Fatal(err)
		}
		check(t, paths, []string{filepath.Join(dir, "a.jpg"), filepath.Join(dir, "b.jpg")}, tip)
		again, err := WriteAttachments(dir, tip)
		if err != nil {
			t.Fatal(err)
		}
		check(t, again, []string{filepath.Join(dir, "a (2).jpg"), filepath.Join(dir, "b (2).jpg")}, tip)
		check(t, paths, []string{filepath.Join(dir, "a.jpg"), filepath.Join(dir, "b.jpg")}, tip)
	})
	t.Run("second_exists", func(t *testing.T) {
		dir := t.TempDir()
		existing := filepath.Join(dir, "b.jpg")
		if err := os.WriteFile(existing, []byte("old b"), 0o600); err != nil {
			t.Fatal(err)
		}
		paths, err := WriteAttachments(dir, tip)
		if err != nil {
			t.Fatal(err)
		}
		check(t, paths, []string{filepath.Join(dir, "a.jpg"), filepath.Join(dir, "b (2).jpg")}, tip)
		if b, _ := os.ReadFile(existing); string(b) != "old b" {
			t.Errorf("existing file changed to %q", b)
		}
	})
	t.Run("duplicate_names", func(t *testing.T) {
		dir := t.TempDir()
		dup := &crypto.Tip{Attachments: []crypto.Attachment{
			{Name: "a.txt", Type: "text/plain", Data: []byte("first")},
			{Name: "a.txt", Type: "text/plain", Data: []byte("second")},
			{Name: "a.txt", Type: "text/plain", Data: []byte("third")},
			{Name: "b", Type: "text/plain", Data: []byte("fourth")},
		}}
		paths, err := WriteAttachments(dir, dup)
		if err != nil {
			t.Fatal(err)
		}
		check(t, paths, []string{filepath.Join(dir, "a.txt"), filepath.Join(dir, "a (2).txt"), filepath.Join(dir, "a (3).txt"), filepath.Join(dir, "b")}, dup)
	})
	t.Run("hostile_names", func(t *testing.T) {
		dir := t.TempDir()
		long := strings.Repeat("é", 125) + ".txt" // 254 bytes: 258 once numbered
		hostile := &crypto.Tip{Attachments: []crypto.Attachment{
			{Name: ".bashrc", Type: "text/plain", Data: []byte("1")},
			{Name: "invoice\u202etxt.exe", Type: "text/plain", Data: []byte("2")},
			{Name: `a:b<c>d"e|f?g*h`, Type: "text/plain", Data: []byte("3")},
			{Name: "CON.txt", Type: "text/plain", Data: []byte("4")},
			{Name: "trailing. ", Type: "text/plain", Data: []byte("5")},
			{Name: "zero\u200bwidth", Type: "text/plain", Data: []byte("6")},
			{Name: long, Type: "text/plain", Data: []byte("7")},
			{Name: long, Type: "text/plain", Data: []byte("8")},
		}}
		paths, err := WriteAttachments(dir, hostile)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"_bashrc", "invoice_txt.exe", "a_b_c_d_e_f_g_h", "_CON.txt", "trailing__", "zero_width", long, strings.Repeat("é", 123) + " (2).txt"}
		for i := range want {
			want[i] = filepath.Join(dir, want[i])
		}
		check(t, paths, want, hostile)
	})
}

func TestLogin(t *testing.T) {
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{})
	r, err := Login(context.Background(), srv.URL, nk.editor)
	if err != nil {
		t.Fatalf("Login as a bundle editor: %v", err)
	}
	if r.Editor != "alice" {
		t.Errorf("logged in as %q, want alice", r.Editor)
	}

	stranger, err := crypto.GenerateEditorKey("mallory", true)
	if err != nil {
		t.Fatal(err)
	}
	// Same label as the bundle's editor, other keys.
	impostor, err := crypto.GenerateEditorKey("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*crypto.EditorKey{stranger, impostor} {
		_, err := Login(context.Background(), srv.URL, k)
		var perr *protocol.Error
		if !errors.As(err, &perr) || perr.Code != protocol.CodeUnauthorized {
			t.Errorf("Login as %s (not in the bundle) = %v, want *protocol.Error %s", k.Label, err, protocol.CodeUnauthorized)
		}
	}

	// Without a session the tip list is refused.
	_, err = (&Remote{url: r.url, http: r.http}).ListTips(context.Background(), 0, 10)
	if !protocol.IsError(err, protocol.CodeUnauthorized) {
		t.Errorf("ListTips without a session = %v, want %s", err, protocol.CodeUnauthorized)
	}
}

// FirstLine cuts a tip's text to its first line without control
// characters; what is printed of it goes through cli.TerminalSafe, which
// escapes the format characters it keeps.
func TestFirstLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain text\nsecond line", 72, "plain text"},
		{"clear\x1b[2Jscreen", 72, "clear[2Jscreen"},
		{"invoice_\u202egpj.exe\r", 72, `invoice_\u202egpj.exe`},
		{"한국어 텍스트", 3, "한국어…"},
	} {
		if got := cli.TerminalSafe(FirstLine(tc.in, tc.max)); got != tc.want {
			t.Errorf("TerminalSafe(FirstLine(%q, %d)) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// FuzzSafeFileName: whatever a source names an attachment, the file name
// is plain: not empty, at most 255 bytes of UTF-8, no path, control,
// format or Windows-reserved character, no leading dot or dash, no
// trailing dot or space; and making it safe again changes nothing.
func FuzzSafeFileName(f *testing.F) {
	for _, s := range []string{"a.txt", ".bashrc", "invoice\u202etxt.exe", "CON", "nul.tar.gz", "x. ", "", "-rf", strings.Repeat("é", 200) + ".jpeg", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := SafeFileName(name)
		if got == "" || len(got) > crypto.MaxNameLength || !utf8.ValidString(got) ||
			strings.ContainsAny(got, "/\\<>:\"|?*") || strings.IndexFunc(got, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0 ||
			strings.HasPrefix(got, ".") || strings.HasPrefix(got, "-") || strings.HasSuffix(got, ".") || strings.HasSuffix(got, " ") {
			t.Fatalf("SafeFileName(%q) = %q", name, got)
		}
		if again := SafeFileName(got); again != got {
			t.Fatalf("SafeFileName(%q) = %q, then %q", name, got, again)
		}
	})
}
