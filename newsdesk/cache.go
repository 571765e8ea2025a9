package newsdesk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"
	"fieldtip/protocol"
)

// Cache is an editor's local copy of the server's tips, as ciphertext:
//
//	DIR/newsroom                   the newsroom verifier key, pinned at first pull
//	DIR/bundle.txt                 the newest verified bundle
//	DIR/cursor                     the last tip sequence number pulled
//	DIR/tips/<seq>-<id>.age        a tip's ciphertext (seq zero-padded to 12 digits)
//	DIR/tips/<seq>-<id>.receipt    its signed receipt
//
// Nothing in it is plaintext.
type Cache struct {
	Dir string
}

// DefaultCacheDir returns fieldtip-newsdesk under the user's cache dir.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w (use --cache)", err)
	}
	return filepath.Join(d, "fieldtip-newsdesk"), nil
}

// ErrChecksum: a cached tip's ciphertext does not match its receipt.
var ErrChecksum = errors.New("ciphertext does not match the SHA-256 in its signed receipt")

// PullOptions tune Pull.
type PullOptions struct {
	// Newsroom, if set, is the newsroom verifier key to pin; otherwise the
	// key the first bundle names is pinned (trust on first use).
	Newsroom string
	// Pulled, if set, is called with each tip id pulled.
	Pulled func(id string)
}

// Pull logs in, verifies the server's bundle against the pinned newsroom
// key, and copies every tip after the cache's cursor: each receipt must
// verify against the bundle's log key and match the listing, and each
// ciphertext must match its receipt, before it is kept. It returns how many
// tips it pulled.
func (c *Cache) Pull(ctx context.Context, server string, key *crypto.EditorKey, opts PullOptions) (int, error) {
	if err := os.MkdirAll(filepath.Join(c.Dir, "tips"), 0o700); err != nil {
		return 0, err
	}
	b, err := c.refreshBundle(ctx, server, opts.Newsroom)
	if err != nil {
		return 0, err
	}
	r, err := Login(ctx, server, key)
	if err != nil {
		return 0, err
	}
	cursor, err := c.cursor()
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		tips, err := r.ListTips(ctx, cursor, protocol.MaxTipList)
		if err != nil {
			return n, err
		}
		if len(tips) == 0 {
			return n, nil
		}
		for _, t := range tips {
			if t.Seq <= cursor {
				return n, fmt.Errorf("server listed tip %d after cursor %d: out of order", t.Seq, cursor)
			}
			if err := c.pullOne(ctx, r, b, t); err != nil {
				return n, err
			}
			cursor = t.Seq
			if err := atomicfile.Replace(filepath.Join(c.Dir, "cursor"), []byte(strconv.FormatInt(cursor, 10)+"\n"), 0o600); err != nil {
				return n, err
			}
			n++
			if opts.Pulled != nil {
				opts.Pulled(t.ID)
			}
		}
	}
}

func (c *Cache) pullOne(ctx context.Context, r *Remote, b *crypto.Bundle, t protocol.TipInfo) error {
	rc, err := crypto.OpenReceipt([]byte(t.Receipt), b.Log)
	if err != nil {
		return fmt.Errorf("tip %s: %w", t.ID, err)
	}
	if rc.TipIDString() != t.ID || hex.EncodeToString(rc.SHA256[:]) != t.SHA256 || rc.Length != t.Length || rc.Day != t.Day {
		return fmt.Errorf("tip %s: the server's listing does not match the signed receipt", t.ID)
	}
	ct, err := r.FetchTip(ctx, t.ID)
	if err != nil {
		return err
	}
	if sha256.Sum256(ct) != rc.SHA256 || int64(len(ct)) != rc.Length {
		return fmt.Errorf("tip %s: %w", t.ID, ErrChecksum)
	}
	base := filepath.Join(c.Dir, "tips", fmt.Sprintf("%012d-%s", t.Seq, t.ID))
	if err := atomicfile.Replace(base+".age", ct, 0o600); err != nil {
		return err
	}
	return atomicfile.Replace(base+".receipt", []byte(t.Receipt), 0o600)
}

// pinnedBundle fetches the server's bundle and verifies it against the
// newsroom key pinned in the file pinPath, or else newsroom, or else (trust
// on first use) the key the bundle names. pinned reports whether pinPath
// held a key; the caller pins b.Newsroom when it did not.
func pinnedBundle(ctx context.Context, server, pinPath, newsroom string) (b *crypto.Bundle, pinned bool, err error) {
	pin, err := os.ReadFile(pinPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, false, err
	default:
		p := strings.TrimSpace(string(pin))
		if newsroom != "" && newsroom != p {
			return nil, false, fmt.Errorf("%s pins newsroom key %s, not %s", filepath.Dir(pinPath), p, newsroom)
		}
		newsroom, pinned = p, true
	}
	msg, err := FetchBundle(ctx, server)
	if err != nil {
		return nil, false, fmt.Errorf("fetch bundle: %w", err)
	}
	if newsroom == "" {
		b, err = crypto.OpenBundleSelfSigned(msg)
	} else {
		b, err = crypto.OpenBundle(msg, newsroom)
	}
	if err != nil {
		return nil, false, fmt.Errorf("server's bundle refused: %w", err)
	}
	return b, pinned, nil
}

// refreshBundle fetches the server's bundle, verifies it against the
// pinned newsroom key (pinning it on first use) and keeps it if it is not
// older than the cached one.
func (c *Cache) refreshBundle(ctx context.Context, server, newsroom string) (*crypto.Bundle, error) {
	b, pinned, err := pinnedBundle(ctx, server, filepath.Join(c.Dir, "newsroom"), newsroom)
	if err != nil {
		return nil, err
	}
	if !pinned {
		if err := atomicfile.Replace(filepath.Join(c.Dir, "newsroom"), []byte(b.Newsroom+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	if old, err := c.Bundle(); err == nil && old.Version > b.Version {
		return nil, fmt.Errorf("server's bundle refused: version %d is older than the cached version %d", b.Version, old.Version)
	}
	if err := atomicfile.Replace(filepath.Join(c.Dir, "bundle.txt"), b.Signed(), 0o600); err != nil {
		return nil, err
	}
	return b, nil
}

// Bundle returns the cached bundle, verified against the pinned key.
func (c *Cache) Bundle() (*crypto.Bundle, error) {
	pinned, err := os.ReadFile(filepath.Join(c.Dir, "newsroom"))
	if err != nil {
		return nil, fmt.Errorf("no bundle in %s: pull first", c.Dir)
	}
	msg, err := readLimited(filepath.Join(c.Dir, "bundle.txt"), crypto.MaxBundleSize)
	if err != nil {
		return nil, fmt.Errorf("no bundle in %s: pull first", c.Dir)
	}
	return crypto.OpenBundle(msg, strings.TrimSpace(string(pinned)))
}

func (c *Cache) cursor() (int64, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, "cursor"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s: not a cursor", filepath.Join(c.Dir, "cursor"))
	}
	return v, nil
}

// Entry is one cached tip.
type Entry struct {
	Seq     int64
	ID      string
	Receipt *crypto.Receipt
	base    string
}

// remove deletes a cached tip's ciphertext and receipt.
func (e *Entry) remove() error {
	for _, ext := range []string{".age", ".receipt"} {
		if err := os.Remove(e.base + ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// List returns the cached tips in arrival order, each with its receipt
// verified against the cached bundle's log key.
func (c *Cache) List() ([]Entry, error) {
	b, err := c.Bundle()
	if err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(c.Dir, "tips", "*.receipt"))
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []Entry
	for _, n := range names {
		base := strings.TrimSuffix(n, ".receipt")
		seqStr, id, ok := strings.Cut(filepath.Base(base), "-")
		seq, err := strconv.ParseInt(seqStr, 10, 64)
		if !ok || err != nil {
			continue // not a file of ours
		}
		msg, err := readLimited(n, crypto.MaxReceiptSize)
		if err != nil {
			return nil, err
		}
		rc, err := crypto.OpenReceipt(msg, b.Log)
		if err != nil {
			return nil, fmt.Errorf("cached receipt of tip %s: %w", id, err)
		}
		if rc.TipIDString() != id {
			return nil, fmt.Errorf("cached receipt of tip %s names tip %s", id, rc.TipIDString())
		}
		out = append(out, Entry{Seq: seq, ID: id, Receipt: rc, base: base})
	}
	return out, nil
}

// Find returns the cached tip with the given id.
func (c *Cache) Find(id string) (*Entry, error) {
	if _, err := crypto.ParseTipID(id); err != nil {
		return nil, err
	}
	es, err := c.List()
	if err != nil {
		return nil, err
	}
	for i := range es {
		if es[i].ID == id {
			return &es[i], nil
		}
	}
	return nil, fmt.Errorf("tip %s is not in %s: pull first", id, c.Dir)
}

// Open checks a cached tip's ciphertext against its receipt and decrypts
// it in memory. A mismatch is ErrChecksum, and no plaintext is returned.
func (e *Entry) Open(key *crypto.EditorKey) (*crypto.Tip, error) {
	ct, err := readLimited(e.base+".age", crypto.MaxTipSize)
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(ct) != e.Receipt.SHA256 || int64(len(ct)) != e.Receipt.Length {
		return nil, fmt.Errorf("tip %s: %w (the cached file is %d bytes, the receipt says %d)", e.ID, ErrChecksum, len(ct), e.Receipt.Length)
	}
	t, err := crypto.Open(ct, key.Identity)
	if err != nil {
		return nil, fmt.Errorf("tip %s: %w", e.ID, err)
	}
	return t, nil
}

// Inbox writes one line per cached tip: id, day, size, triage status
// ("-" before any), tags (comma-separated, "-" for none), first line of
// text. st is the replayed editorial state, or nil before any sync of
// the log.
func (c *Cache) Inbox(w io.Writer, key *crypto.EditorKey, st *audit.State) error {
	es, err := c.List()
	if err != nil {
		return err
	}
	for _, e := range es {
		summary := ""
		t, err := e.Open(key)
		if err != nil {
			summary = "(cannot open: " + err.Error() + ")"
		} else {
			summary = FirstLine(t.Text, 72)
			if n := len(t.Attachments); n > 0 {
				summary += fmt.Sprintf(" [+%d attachment(s)]", n)
			}
		}
		status, tags := "-", "-"
		var ts *audit.TipState
		if st != nil {
			ts = st.Tip(e.Receipt.TipID)
		}
		if ts != nil {
			if ts.Status != "" {
				status = string(ts.Status)
			}
			if len(ts.Tags) > 0 {
				tags = strings.Join(ts.Tags, ",")
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", e.ID, e.Receipt.Day, e.Receipt.Length, status, tags, summary)
	}
	return nil
}

// FirstLine returns the first line of s, without control characters, cut
// to max runes.
func FirstLine(s string, max int) string {
	line, _, _ := strings.Cut(s, "\n")
	line = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, line)
	if r := []rune(line); len(r) > max {
		line = string(r[:max]) + "…"
	}
	return line
}

// TerminalSafe returns s with every control character but newline and tab
// shown as an escape (\x1b for ESC): a tip is written by a stranger, and
// escape sequences must not reach an editor's terminal.
func TerminalSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// WriteAttachments writes a tip's attachments into dir (created 0700),
// never replacing a file, and returns the paths written.
func WriteAttachments(dir string, t *crypto.Tip) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var paths []string
	for _, a := range t.Attachments {
		// Names were checked to be plain file names when the tip was
		// parsed; Base is a second guard against a path.
		p := filepath.Join(dir, filepath.Base(a.Name))
		if err := writeNew(p, a.Data, 0o600); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
