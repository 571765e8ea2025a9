package newsdesk

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"
	"fieldtip/internal/cli"
	"fieldtip/protocol"

	"filippo.io/age"
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

// Pull opens a session on the cache and pulls (Session.Pull); it returns
// how many tips it pulled.
func (c *Cache) Pull(ctx context.Context, server string, key *crypto.EditorKey, opts PullOptions) (int, error) {
	s, err := OpenSession(ctx, SessionConfig{Cache: c.Dir, Server: server, Key: key, Newsroom: opts.Newsroom, Pulled: opts.Pulled})
	if err != nil {
		return 0, err
	}
	ids, err := s.Pull(ctx)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return len(ids), err
}

// Pull logs in, verifies the server's bundle against the pinned newsroom
// key, and copies every tip after the cache's cursor: each receipt must
// verify against the bundle's log key and match the listing, and each
// ciphertext must match its receipt, before it is kept. It then decrypts
// the new tips in memory for the inbox. It returns the ids pulled.
func (s *Session) Pull(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.fetchBundle(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := s.pull(ctx, b)
	if err != nil {
		return ids, err
	}
	return ids, s.index()
}

// pinnedBundle fetches the server's bundle and verifies it against the
// newsroom key pinned in the file pinPath, or else newsroom, or else (trust
// on first use) the key the bundle names. pinned reports whether pinPath
// held a key; the caller pins b.Newsroom when it did not.
func pinnedBundle(ctx context.Context, hc *http.Client, u protocol.ServerURL, pinPath, newsroom string) (b *crypto.Bundle, pinned bool, err error) {
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
	msg, err := get(ctx, hc, u.Origin+protocol.PathBundle, crypto.MaxBundleSize)
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
func (c *Cache) refreshBundle(ctx context.Context, hc *http.Client, u protocol.ServerURL, newsroom string) (*crypto.Bundle, error) {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, err
	}
	b, pinned, err := pinnedBundle(ctx, hc, u, filepath.Join(c.Dir, "newsroom"), newsroom)
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

// hasBundle reports whether the cache holds a bundle (pulled before).
func (c *Cache) hasBundle() bool {
	_, err := os.Stat(filepath.Join(c.Dir, "bundle.txt"))
	return err == nil
}

// Bundle returns the cached bundle, verified against the pinned key.
func (c *Cache) Bundle() (*crypto.Bundle, error) {
	pinned, err := os.ReadFile(filepath.Join(c.Dir, "newsroom"))
	if err != nil {
		return nil, fmt.Errorf("no bundle in %s: sync first", c.Dir)
	}
	msg, err := readLimited(filepath.Join(c.Dir, "bundle.txt"), crypto.MaxBundleSize)
	if err != nil {
		return nil, fmt.Errorf("no bundle in %s: sync first", c.Dir)
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
	// base is the path of a tip's own files, without extension (caches
	// before packs); pack and off, the pack holding it and where its
	// ciphertext starts.
	base   string
	pack   string
	off, n int64
}

// removeEntries deletes cached tips: their files, or their records from
// their packs (each pack rewritten once).
func removeEntries(es []Entry) error {
	packs := map[string]map[int64]bool{}
	for _, e := range es {
		if e.pack != "" {
			if packs[e.pack] == nil {
				packs[e.pack] = map[int64]bool{}
			}
			packs[e.pack][e.Seq] = true
			continue
		}
		for _, ext := range []string{".age", ".receipt"} {
			if err := os.Remove(e.base + ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	for p, drop := range packs {
		if err := removeFromPack(p, drop); err != nil {
			return err
		}
	}
	return nil
}

// List returns the cached tips in arrival order, each with its receipt
// verified (on every core) against the cached bundle's log key: the tips
// in packs, and those a cache from before packs holds one a file.
func (c *Cache) List() ([]Entry, error) {
	b, err := c.Bundle()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.Dir, "tips")
	names, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []Entry
	var receipts [][]byte
	for _, d := range names {
		n := d.Name()
		switch {
		case strings.HasSuffix(n, packExt):
			if _, ok := packSeq(n); !ok {
				continue // not a file of ours
			}
			p := filepath.Join(dir, n)
			es, err := openPack(p)
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				out, receipts = append(out, Entry{Seq: e.Seq, ID: e.ID, pack: p, off: e.Off, n: e.N}), append(receipts, e.Receipt)
			}
		case strings.HasSuffix(n, ".receipt"):
			base := filepath.Join(dir, strings.TrimSuffix(n, ".receipt"))
			seqStr, id, ok := strings.Cut(filepath.Base(base), "-")
			seq, err := strconv.ParseInt(seqStr, 10, 64)
			if !ok || err != nil {
				continue // not a file of ours
			}
			msg, err := readLimited(filepath.Join(dir, n), crypto.MaxReceiptSize)
			if err != nil {
				return nil, err
			}
			out, receipts = append(out, Entry{Seq: seq, ID: id, base: base}), append(receipts, msg)
		}
	}
	errs := make([]error, len(out))
	parallel(len(out), func(k int) {
		rc, err := crypto.OpenReceipt(receipts[k], b.Log)
		switch {
		case err != nil:
			errs[k] = fmt.Errorf("cached receipt of tip %s: %w", out[k].ID, err)
		case rc.TipIDString() != out[k].ID:
			errs[k] = fmt.Errorf("cached receipt of tip %s names tip %s", out[k].ID, rc.TipIDString())
		}
		out[k].Receipt = rc
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Arrival order; a tip pulled twice (a crash between a pack and the
	// cursor) counts once.
	slices.SortStableFunc(out, func(a, b Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	out = slices.CompactFunc(out, func(a, b Entry) bool { return a.Seq == b.Seq })
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
	return nil, fmt.Errorf("tip %s is not in %s: sync first", id, c.Dir)
}

// Open checks a cached tip's ciphertext against its receipt and decrypts
// it in memory. A mismatch is ErrChecksum, and no plaintext is returned.
func (e *Entry) Open(key *crypto.EditorKey) (*crypto.Tip, error) {
	return e.open(key.Identity)
}

func (e *Entry) open(id age.Identity) (*crypto.Tip, error) {
	ct, err := e.ciphertext()
	if err != nil {
		return nil, err
	}
	return e.openBytes(ct, id)
}

// ciphertext reads the cached tip's ciphertext (what its file or its
// pack record holds; openBytes checks it against the receipt).
func (e *Entry) ciphertext() ([]byte, error) {
	if e.pack == "" {
		return readLimited(e.base+".age", crypto.MaxTipSize)
	}
	return readAt(e.pack, e.off, e.n)
}

// openBytes checks ct against the entry's receipt and decrypts it.
func (e *Entry) openBytes(ct []byte, id age.Identity) (*crypto.Tip, error) {
	if sha256.Sum256(ct) != e.Receipt.SHA256 || int64(len(ct)) != e.Receipt.Length {
		return nil, fmt.Errorf("tip %s: %w (the cached file is %d bytes, the receipt says %d)", e.ID, ErrChecksum, len(ct), e.Receipt.Length)
	}
	t, err := crypto.Open(ct, id)
	if err != nil {
		return nil, fmt.Errorf("tip %s: %w", e.ID, err)
	}
	return t, nil
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

// WriteAttachments writes a tip's attachments into dir (created 0700),
// never replacing a file, and returns the paths written, one for each
// attachment in order. A name is made safe first (SafeFileName); a name
// taken, in dir or by an earlier attachment, gets a number: "a.txt",
// then "a (2).txt", "a (3).txt". On an error it returns the paths written
// so far.
func WriteAttachments(dir string, t *crypto.Tip) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var paths []string
	for _, a := range t.Attachments {
		p, err := writeNumbered(dir, SafeFileName(a.Name), a.Data)
		if err != nil {
			return paths, fmt.Errorf("write attachment %q: %w", cli.TerminalSafe(a.Name), err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// maxNumbered is how many numbered names writeNumbered tries.
const maxNumbered = 1000

// writeNumbered writes data to dir/name, or, if that exists, to the first
// free "stem (n)ext" for n from 2, and returns the path written.
func writeNumbered(dir, name string, data []byte) (string, error) {
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for n := 1; n <= maxNumbered; n++ {
		candidate := name
		if n > 1 {
			suffix := fmt.Sprintf(" (%d)", n)
			s := stem
			// Keep the name within 255 bytes, cutting at a rune.
			for len(s)+len(suffix)+len(ext) > crypto.MaxNameLength && len(s) > 0 {
				_, size := utf8.DecodeLastRuneInString(s)
				s = s[:len(s)-size]
			}
			candidate = s + suffix + ext
		}
		p := filepath.Join(dir, candidate)
		err := writeNew(p, data, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return p, nil
	}
	return "", fmt.Errorf("%s and %d numbered names exist already", filepath.Join(dir, name), maxNumbered-1)
}

// SafeFileName returns a tip's attachment name as a file name that cannot
// surprise the editor who opens the folder: the tip format already
// refuses paths, control characters and a leading "-"; this also replaces
// invisible and direction-changing characters (Unicode format characters,
// which can make "exe.txt" read as "txt.exe"), characters Windows refuses
// (<>:"|?*), a leading "." (a hidden file, or one a shell reads, such as
// .bashrc) and trailing dots and spaces, with "_", and prefixes Windows'
// reserved device names (CON, NUL, COM1…) with "_".
func SafeFileName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case unicode.Is(unicode.Cf, r), unicode.IsControl(r), strings.ContainsRune(`<>:"|?*/\`, r), r == utf8.RuneError:
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	out := b.String()
	if strings.HasPrefix(out, ".") || strings.HasPrefix(out, "-") {
		out = "_" + out[1:]
	}
	if trimmed := strings.TrimRight(out, ". "); trimmed != out {
		out = trimmed + strings.Repeat("_", len(out)-len(trimmed))
	}
	stem, _, _ := strings.Cut(out, ".")
	switch strings.ToUpper(strings.TrimRight(stem, " ")) {
	case "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
		"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9":
		out = "_" + out
	}
	if out == "" {
		out = "attachment"
	}
	// Within 255 bytes, cutting the stem at a rune, not the extension.
	ext := filepath.Ext(out)
	if len(ext) > 16 {
		ext = ""
	}
	stem = strings.TrimSuffix(out, ext)
	for len(stem)+len(ext) > crypto.MaxNameLength {
		_, size := utf8.DecodeLastRuneInString(stem)
		stem = stem[:len(stem)-size]
	}
	return stem + ext
}
