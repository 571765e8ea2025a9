package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"time"

	"fieldtip/crypto"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// maxSealedPeriodKey caps a sealed period key: 64 post-quantum stanzas and
// a short plaintext.
const maxSealedPeriodKey = 192 << 10

// maxPeriodKeyText caps a period key's plaintext.
const maxPeriodKeyText = 256

// Period is the span of days a receipts tree covers: a day by default, or
// a week. Both days are YYYY-MM-DD in UTC, First ≤ Last, at most
// MaxPeriodDays days.
type Period struct {
	First, Last string
}

// OneDay returns the period of one day.
func OneDay(day string) Period { return Period{First: day, Last: day} }

func (p Period) check() error {
	if !validDay(p.First) || !validDay(p.Last) {
		return fmt.Errorf("%w: period %q %q is not two days YYYY-MM-DD", crypto.ErrMalformed, clip(p.First), clip(p.Last))
	}
	first, _ := time.Parse(crypto.DateLayout, p.First)
	last, _ := time.Parse(crypto.DateLayout, p.Last)
	if last.Before(first) || last.Sub(first) >= MaxPeriodDays*24*time.Hour {
		return fmt.Errorf("%w: period %s to %s is not 1 to %d days", crypto.ErrMalformed, p.First, p.Last, MaxPeriodDays)
	}
	return nil
}

// Contains reports whether day falls in the period.
func (p Period) Contains(day string) bool { return p.First <= day && day <= p.Last }

// PeriodKey is k_day: the HMAC key of one period's receipts-tree leaves,
// random, kept by the server sealed to the editors.
type PeriodKey [32]byte

// GeneratePeriodKey draws a random period key.
func GeneratePeriodKey() (PeriodKey, error) {
	var k PeriodKey
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("period key: %w", err)
	}
	return k, nil
}

// SealPeriodKey encrypts a period's key with age to every editor of b
// (docs/audit.md, "Receipts tree"). The receipts root names SHA-256 of the
// result.
func SealPeriodKey(k PeriodKey, p Period, b *crypto.Bundle) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("period key: %w", err)
	}
	rs, err := b.Recipients()
	if err != nil {
		return nil, fmt.Errorf("period key: %w", err)
	}
	text := fmt.Sprintf("%s\nperiod %s %s\nkey %s\n", ReceiptsKeyHeader, p.First, p.Last, base64.RawURLEncoding.EncodeToString(k[:]))
	ct, err := encrypt([]byte(text), rs)
	if err != nil {
		return nil, fmt.Errorf("period key: %w", err)
	}
	return ct, nil
}

// OpenPeriodKey checks that a sealed period key is the one root names,
// decrypts it with an editor's identity, and checks that it is the key of
// root's period.
func OpenPeriodKey(sealed []byte, root *ReceiptsRoot, id age.Identity) (PeriodKey, error) {
	var k PeriodKey
	if len(sealed) > maxSealedPeriodKey {
		return k, fmt.Errorf("period key: %w: %d bytes, more than %d", crypto.ErrMalformed, len(sealed), maxSealedPeriodKey)
	}
	if sha256.Sum256(sealed) != root.Key {
		return k, fmt.Errorf("period key: %w", &CommitmentError{Part: "ciphertext"})
	}
	r, err := age.Decrypt(bytes.NewReader(sealed), id)
	if err != nil {
		return k, fmt.Errorf("period key: decrypt: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxPeriodKeyText+1))
	if err != nil {
		return k, fmt.Errorf("period key: decrypt: %w", err)
	}
	if len(plain) > maxPeriodKeyText {
		return k, fmt.Errorf("period key: %w: more than %d bytes", crypto.ErrMalformed, maxPeriodKeyText)
	}
	lr, err := newLineReader("period key", string(plain), ReceiptsKeyHeader)
	if err != nil {
		return k, err
	}
	f, err := lr.next("period", 2)
	if err != nil {
		return k, err
	}
	if f[0] != root.Period.First || f[1] != root.Period.Last {
		return k, fmt.Errorf("period key: %w: key of period %q to %q, not %s to %s", crypto.ErrMalformed, clip(f[0]), clip(f[1]), root.Period.First, root.Period.Last)
	}
	v, err := lr.value("key")
	if err != nil {
		return k, err
	}
	if k, err = lr.raw32("key", v); err != nil {
		return k, err
	}
	return k, lr.end()
}

// Leaf is a receipts-tree leaf: a keyed hash that nobody without the
// period key can compute from a tip's bytes. A tip's leaf is its blinded
// handle in published trails.
type Leaf [32]byte

// TipLeaf returns HMAC-SHA256(k, "tip" ‖ SHA-256 of the tip's ciphertext).
func TipLeaf(k PeriodKey, ciphertextHash [32]byte) Leaf {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(TipLeafDomain))
	m.Write(ciphertextHash[:])
	return Leaf(m.Sum(nil))
}

// DummyLeaf returns HMAC-SHA256(k, "dummy" ‖ i), i as 8 bytes big-endian.
func DummyLeaf(k PeriodKey, i uint64) Leaf {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(DummyDomain))
	m.Write(binary.BigEndian.AppendUint64(nil, i))
	return Leaf(m.Sum(nil))
}

// ReceiptsTree is one period's receipts tree: its leaves, sorted, and the
// tlog hashes over them (each leaf a tlog record; docs/audit.md).
type ReceiptsTree struct {
	leaves []Leaf
	hashes []tlog.Hash
}

// BuildReceiptsTree builds a period's tree from the ciphertext hashes of
// the tips whose receipts the server issued in it, padded with dummies to
// minSize leaves (a power of two; 0 means DefaultReceiptsTreeSize), or the
// next power of two that holds them all.
func BuildReceiptsTree(k PeriodKey, tips [][32]byte, minSize int64) (*ReceiptsTree, error) {
	if minSize == 0 {
		minSize = DefaultReceiptsTreeSize
	}
	if minSize < 1 || minSize > MaxReceiptsTreeSize || bits.OnesCount64(uint64(minSize)) != 1 {
		return nil, fmt.Errorf("receipts tree: size %d is not a power of two up to %d", minSize, MaxReceiptsTreeSize)
	}
	size := minSize
	for size < int64(len(tips)) {
		size *= 2
	}
	if size > MaxReceiptsTreeSize {
		return nil, fmt.Errorf("receipts tree: %d tips, more than %d", len(tips), MaxReceiptsTreeSize)
	}
	leaves := make([]Leaf, 0, size)
	for _, h := range tips {
		leaves = append(leaves, TipLeaf(k, h))
	}
	for i := uint64(0); int64(len(leaves)) < size; i++ {
		leaves = append(leaves, DummyLeaf(k, i))
	}
	slices.SortFunc(leaves, func(a, b Leaf) int { return bytes.Compare(a[:], b[:]) })
	t, err := NewReceiptsTree(leaves)
	if err != nil {
		return nil, fmt.Errorf("receipts tree: %w (a tip listed twice?)", err)
	}
	return t, nil
}

// NewReceiptsTree builds the tree of a list of leaves, as an editor gets
// them from the server: a power of two of them, up to MaxReceiptsTreeSize,
// sorted, distinct.
func NewReceiptsTree(leaves []Leaf) (*ReceiptsTree, error) {
	if len(leaves) == 0 || len(leaves) > MaxReceiptsTreeSize || bits.OnesCount64(uint64(len(leaves))) != 1 {
		return nil, fmt.Errorf("%w: %d leaves, not a power of two up to %d", crypto.ErrMalformed, len(leaves), MaxReceiptsTreeSize)
	}
	t := &ReceiptsTree{leaves: leaves, hashes: make([]tlog.Hash, 0, tlog.StoredHashCount(int64(len(leaves))))}
	for i, l := range leaves {
		if i > 0 && bytes.Compare(leaves[i-1][:], l[:]) >= 0 {
			return nil, fmt.Errorf("%w: leaves not sorted and distinct at %d", crypto.ErrMalformed, i)
		}
		hs, err := tlog.StoredHashes(int64(i), l[:], t)
		if err != nil {
			return nil, err
		}
		t.hashes = append(t.hashes, hs...)
	}
	return t, nil
}

// ReadHashes makes the tree a tlog.HashReader.
func (t *ReceiptsTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	return readHashes(t.hashes, indexes)
}

func readHashes(hashes []tlog.Hash, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(hashes)) {
			return nil, fmt.Errorf("hash %d not stored (have %d)", x, len(hashes))
		}
		out[i] = hashes[x]
	}
	return out, nil
}

// Size returns the number of leaves.
func (t *ReceiptsTree) Size() int64 { return int64(len(t.leaves)) }

// Leaves returns the leaves, sorted. The caller must not modify them.
func (t *ReceiptsTree) Leaves() []Leaf { return t.leaves }

// Root returns the tree hash.
func (t *ReceiptsTree) Root() tlog.Hash {
	h, err := tlog.TreeHash(t.Size(), t)
	if err != nil {
		panic(err) // every hash is stored
	}
	return h
}

// Prove returns the index of leaf and its inclusion proof (tlog.ProveRecord).
func (t *ReceiptsTree) Prove(leaf Leaf) (int64, tlog.RecordProof, error) {
	i, found := slices.BinarySearchFunc(t.leaves, leaf, func(a, b Leaf) int { return bytes.Compare(a[:], b[:]) })
	if !found {
		return 0, nil, fmt.Errorf("receipts tree: no such leaf")
	}
	p, err := tlog.ProveRecord(t.Size(), int64(i), t)
	if err != nil {
		return 0, nil, fmt.Errorf("receipts tree: %w", err)
	}
	return int64(i), p, nil
}

// CheckLeaf checks that leaf is leaf number index of the receipts tree
// root signs.
func CheckLeaf(root *ReceiptsRoot, index int64, leaf Leaf, proof tlog.RecordProof) error {
	if index < 0 || index >= root.Size {
		return fmt.Errorf("receipts tree: leaf index %d outside a tree of %d", index, root.Size)
	}
	if err := tlog.CheckRecord(proof, root.Size, root.Root, index, tlog.RecordHash(leaf[:])); err != nil {
		return fmt.Errorf("receipts tree: %w", err)
	}
	return nil
}

// ReceiptsMismatchError is what an editor's receipts check found: tips it
// pulled that are not leaves (a receipt issued, the tip dropped), and
// leaves that are neither a pulled tip nor a dummy (a tip it never got).
type ReceiptsMismatchError struct {
	Period Period
	// Missing are the ciphertext hashes of pulled tips with no leaf.
	Missing [][32]byte
	// Foreign are the indexes of leaves that are neither.
	Foreign []int64
}

func (e *ReceiptsMismatchError) Error() string {
	return fmt.Sprintf("receipts of %s to %s: %d pulled tips not in the tree, %d leaves neither a pulled tip nor a dummy",
		e.Period.First, e.Period.Last, len(e.Missing), len(e.Foreign))
}

// CheckReceipts checks a period's tree against the tips an editor pulled
// for that period (their ciphertext hashes): the tree must be the one root
// signs, every pulled tip a leaf, and every leaf a pulled tip or a dummy
// below the tree's size. A mismatch is a *ReceiptsMismatchError listing
// every fault.
func CheckReceipts(k PeriodKey, root *ReceiptsRoot, t *ReceiptsTree, pulled [][32]byte) error {
	if t.Size() != root.Size || t.Root() != root.Root {
		return fmt.Errorf("receipts tree: %w of %s to %s", ErrRootMismatch, root.Period.First, root.Period.Last)
	}
	// Two tips with the same ciphertext (a source that sent one twice)
	// are one leaf: every pulled index of a leaf counts as found.
	want := make(map[Leaf][]int, len(pulled))
	for i, h := range pulled {
		l := TipLeaf(k, h)
		want[l] = append(want[l], i)
	}
	dummies := make(map[Leaf]bool, t.Size())
	for i := range uint64(t.Size()) {
		dummies[DummyLeaf(k, i)] = true
	}
	found := make([]bool, len(pulled))
	e := &ReceiptsMismatchError{Period: root.Period}
	for i, l := range t.leaves {
		if js, ok := want[l]; ok {
			for _, j := range js {
				found[j] = true
			}
		} else if !dummies[l] {
			e.Foreign = append(e.Foreign, int64(i))
		}
	}
	for i, ok := range found {
		if !ok {
			e.Missing = append(e.Missing, pulled[i])
		}
	}
	if len(e.Missing) > 0 || len(e.Foreign) > 0 {
		return e
	}
	return nil
}

// ReceiptsRoot is the server's signed statement of one period's receipts
// tree, logged once per period. A *ReceiptsRoot returned by
// OpenReceiptsRoot has verified.
//
// Its text, after the ReceiptsHeader line (docs/audit.md):
//
//	period <first day> <last day>
//	size <leaves, a power of two, 1 to 2^20>
//	root <tree hash, standard base64>
//	key <SHA-256 of the sealed period key, 64 lowercase hex digits>
type ReceiptsRoot struct {
	Period Period
	Size   int64
	Root   tlog.Hash
	Key    [32]byte
}

func (r *ReceiptsRoot) text() (string, error) {
	if err := r.Period.check(); err != nil {
		return "", fmt.Errorf("receipts: %w", err)
	}
	if r.Size < 1 || r.Size > MaxReceiptsTreeSize || bits.OnesCount64(uint64(r.Size)) != 1 {
		return "", fmt.Errorf("receipts: %w: size %d is not a power of two up to %d", crypto.ErrMalformed, r.Size, MaxReceiptsTreeSize)
	}
	return fmt.Sprintf("%s\nperiod %s %s\nsize %d\nroot %s\nkey %s\n", ReceiptsHeader,
		r.Period.First, r.Period.Last, r.Size, r.Root, hex.EncodeToString(r.Key[:])), nil
}

// SignReceiptsRoot signs a receipts root with the server's log key.
func SignReceiptsRoot(r *ReceiptsRoot, log note.Signer) ([]byte, error) {
	text, err := r.text()
	if err != nil {
		return nil, err
	}
	return signNote("receipts", text, log, MaxReceiptsSize)
}

// OpenReceiptsRoot verifies a receipts root against the log verifier key
// named in the bundle in force, and parses it.
func OpenReceiptsRoot(msg []byte, logKey string) (*ReceiptsRoot, error) {
	v, err := note.NewVerifier(logKey)
	if err != nil {
		return nil, fmt.Errorf("receipts: log key: %w", err)
	}
	return openReceiptsRoot(msg, note.VerifierList(v))
}

func openReceiptsRoot(msg []byte, log note.Verifiers) (*ReceiptsRoot, error) {
	if len(msg) > MaxReceiptsSize {
		return nil, fmt.Errorf("receipts: %w: %d bytes, more than %d", crypto.ErrMalformed, len(msg), MaxReceiptsSize)
	}
	n, err := crypto.OpenNote("receipts", msg, log)
	if err != nil {
		return nil, err
	}
	lr, err := newLineReader("receipts", n.Text, ReceiptsHeader)
	if err != nil {
		return nil, err
	}
	r := &ReceiptsRoot{}
	f, err := lr.next("period", 2)
	if err != nil {
		return nil, err
	}
	r.Period = Period{First: f[0], Last: f[1]}
	if err := r.Period.check(); err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	v, err := lr.value("size")
	if err != nil {
		return nil, err
	}
	if r.Size, err = lr.int("size", v, 1, MaxReceiptsTreeSize); err != nil {
		return nil, err
	}
	if v, err = lr.value("root"); err != nil {
		return nil, err
	}
	if r.Root, err = lr.treeHash("root", v); err != nil {
		return nil, err
	}
	if v, err = lr.value("key"); err != nil {
		return nil, err
	}
	if r.Key, err = lr.hex32("key", v); err != nil {
		return nil, err
	}
	if err := lr.end(); err != nil {
		return nil, err
	}
	if canon, err := r.text(); err != nil || canon != n.Text {
		return nil, fmt.Errorf("receipts: %w: not in canonical form", crypto.ErrMalformed)
	}
	return r, nil
}

// String returns the leaf in 64 lowercase hex digits, as a link's handle
// is written.
func (l Leaf) String() string { return hex.EncodeToString(l[:]) }

// MarshalText makes a Leaf a JSON string of 64 lowercase hex digits.
func (l Leaf) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses 64 lowercase hex digits, and nothing else.
func (l *Leaf) UnmarshalText(b []byte) error {
	h, err := hex.DecodeString(string(b))
	if err != nil || len(h) != 32 || hex.EncodeToString(h) != string(b) {
		return fmt.Errorf("%w: a leaf is 64 lowercase hex digits", crypto.ErrMalformed)
	}
	*l = Leaf(h)
	return nil
}

// ParseLeaf parses a handle written as Leaf.String writes it.
func ParseLeaf(s string) (Leaf, error) {
	var l Leaf
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// ProveLeaf returns the index of leaf in the receipts tree of leaves (as
// the server stores them: sorted, distinct, a power of two) and its
// inclusion proof: a link's handle and what a trail carries for it.
func ProveLeaf(leaves []Leaf, leaf Leaf) (int64, tlog.RecordProof, error) {
	t, err := NewReceiptsTree(leaves)
	if err != nil {
		return 0, nil, fmt.Errorf("receipts tree: %w", err)
	}
	return t.Prove(leaf)
}
