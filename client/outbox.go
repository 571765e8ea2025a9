package client

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"
	"fieldtip/protocol"

	"golang.org/x/crypto/chacha20poly1305"
)

// The outbox keeps the uploads a source has sealed but not yet delivered
// (FIELD.md, "Phone seizure"): one file of a fixed size, encrypted under a
// key derived from the codename, rewritten whole on every change. Its
// format is docs/outbox.md; TestOutboxDoc pins the worked example there.
//
// The file is salt ‖ nonce ‖ XChaCha20-Poly1305(key, nonce, body, ad = salt)
// and nothing else: no magic, no version, no KDF cost, no length. The cost
// is fixed by the format version (crypto.DefaultCodenameKDF for v1) and the
// version is inside the encryption, so every outbox of a given size looks
// like the same number of random bytes.
const (
	// DefaultOutboxSize is the size of an outbox file unless its creator
	// asks for more: about a dozen photos or a hundred short tips.
	DefaultOutboxSize = 2 << 20
	// outboxSizeStep and maxOutboxSize bound the sizes a creator may ask
	// for: a multiple of 64 KiB from DefaultOutboxSize to 64 MiB (the
	// largest upload, protocol.MaxProofs·PoWChunkSize).
	outboxSizeStep = 64 << 10
	maxOutboxSize  = 64 << 20

	outboxSaltSize  = 32
	outboxNonceSize = chacha20poly1305.NonceSizeX
	outboxTagSize   = chacha20poly1305.Overhead
	// outboxOverhead is what the file holds besides the body.
	outboxOverhead = outboxSaltSize + outboxNonceSize + outboxTagSize

	// outboxBodyVersion is the body version this program writes; it reads
	// it and outboxBodyV1 (docs/outbox.md, "Versioning").
	outboxBodyVersion = 2
	outboxBodyV1      = 1
	// outboxBodyPrefix is the body's version byte and item count.
	outboxBodyPrefix = 1 + 2
	// outboxItemFixed is the size of an item's fixed-size fields: upload
	// id, resume secret, bundle version, frame size, PoW epoch, flags,
	// composed day, refusal length, ciphertext length, proof count.
	outboxItemFixed = 16 + 32 + 8 + 4 + 8 + 1 + 4 + 1 + 4 + 2
	// outboxItemFixedV1 is the same in body version 1, which had no
	// composed day and no refusal.
	outboxItemFixedV1 = 16 + 32 + 8 + 4 + 8 + 1 + 4 + 2
	// maxRefusalLength caps a stored refusal code.
	maxRefusalLength = 32
	// outboxMinItem is the smallest item of either version: one proof and
	// one small frame.
	outboxMinItem = outboxItemFixedV1 + protocol.ProofSize + protocol.LowBandwidthFrameSz
	// outboxMaxCiphertext caps one item's ciphertext: the largest upload.
	outboxMaxCiphertext = protocol.MaxProofs * protocol.PoWChunkSize

	// outboxFlagStarted marks an item whose upload message may have
	// reached the server. No other flag bit is defined.
	outboxFlagStarted = 0x01
)

// OutboxFile is the name of the outbox container in the config dir.
const OutboxFile = "outbox"

// OutboxPath returns the outbox container's path in dir.
func OutboxPath(dir string) string { return filepath.Join(dir, OutboxFile) }

// OutboxExists reports whether dir has an outbox container.
func OutboxExists(dir string) (bool, error) {
	_, err := os.Stat(OutboxPath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Errors callers branch on.
var (
	// ErrOutboxKey: the outbox did not decrypt. A wrong codename and a
	// damaged or tampered file are indistinguishable, by design.
	ErrOutboxKey = errors.New("outbox does not open with this codename (wrong codename or damaged file)")
	// ErrOutboxFull: an item does not fit in the outbox's fixed size.
	ErrOutboxFull = errors.New("outbox full")
)

// OutboxItem is one sealed upload waiting to be delivered, with everything
// needed to start or resume it without recomputing anything on the air.
type OutboxItem struct {
	// UploadID is the upload's random id; it identifies the item in the
	// outbox (no two items share one).
	UploadID [16]byte
	// ResumeSecret is the secret whose SHA-256 the upload message carries.
	ResumeSecret [32]byte
	// BundleVersion is the version of the bundle the ciphertext is sealed
	// to, at least 1.
	BundleVersion int64
	// FrameSize is protocol.FrameSize (16,384) or
	// protocol.LowBandwidthFrameSz (8,192).
	FrameSize int
	// PoWEpoch is the epoch of the seed the proofs of work use, at least 0.
	PoWEpoch int64
	// PoW holds one proof of work per started 64 KiB of Ciphertext
	// (protocol.Proofs).
	PoW []uint64
	// Started reports that an upload message may have reached the server:
	// the client resumes before starting anew.
	Started bool
	// Day is the day the item was composed, in days since 1970-01-01 UTC
	// (day precision, DESIGN.md), from 1; 0 if unknown (an item of a
	// version 1 outbox).
	Day int
	// Refused, if set, is the code of the server's refusal that no resend
	// fixes (too_large, bad_ciphertext): SendOutbox does not send the item
	// again, and the source decides what to do with it.
	Refused protocol.Code
	// prePoW is the pre-proof of work over PoW, if hasPrePoW: computed
	// with the proofs, or before connecting (solvePrePoWs), and not
	// stored.
	prePoW    uint64
	hasPrePoW bool
	// Ciphertext is the age file, a positive multiple of FrameSize bytes
	// and at most 64 MiB.
	Ciphertext []byte
}

// Outbox is an open outbox file. Items is in the order items were added;
// change it only through Add, Update and Remove, or call Save after
// changing it. An Outbox is not safe for concurrent use, and two Outboxes
// must not be open on one file.
type Outbox struct {
	Items []*OutboxItem

	path string
	key  [32]byte
	salt [outboxSaltSize]byte
	size int
	// rand supplies nonces (crypto/rand; a fixed stream in the worked
	// example's test).
	rand io.Reader
}

// CreateOutbox creates an empty outbox file at path, size bytes long (0
// means DefaultOutboxSize; otherwise a multiple of 64 KiB from
// DefaultOutboxSize to 64 MiB), mode 0600, under a key derived from the
// codename (normalised by crypto.ParseCodename) and a fresh random salt. It
// refuses if path exists. kdf must be crypto.DefaultCodenameKDF for an
// outbox other fieldtip programs can open: the cost is not recorded in the
// file. The file is durable when CreateOutbox returns.
func CreateOutbox(path, codename string, size int, kdf crypto.CodenameKDF) (*Outbox, error) {
	return createOutbox(path, codename, size, kdf, rand.Reader)
}

func createOutbox(path, codename string, size int, kdf crypto.CodenameKDF, random io.Reader) (*Outbox, error) {
	if size == 0 {
		size = DefaultOutboxSize
	}
	if err := checkOutboxSize(int64(size)); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	codename, err := checkCodenameKDF(codename, kdf)
	if err != nil {
		return nil, err
	}
	// Fail before the KDF's work; WriteNew checks again, atomically.
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("outbox %s exists already; not replacing it: %w", path, fs.ErrExist)
	}
	o := &Outbox{path: path, size: size, rand: random}
	if _, err := io.ReadFull(random, o.salt[:]); err != nil {
		return nil, fmt.Errorf("outbox: salt: %w", err)
	}
	o.key = crypto.DeriveOutboxKey(codename, o.salt, kdf)
	data, err := o.seal()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteNew(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return o, nil
}

// OpenOutbox opens the outbox file at path with the codename (normalised
// by crypto.ParseCodename) and the cost it was created with. Its size is
// the file's. It fails with ErrOutboxKey if the file does not decrypt,
// whether the codename is wrong or the file was damaged, and with an error
// matching crypto.ErrMalformed if the file's size is not an outbox size
// (truncated or extended) or its decrypted body breaks the format.
func OpenOutbox(path, codename string, kdf crypto.CodenameKDF) (*Outbox, error) {
	return openOutbox(path, codename, kdf, rand.Reader)
}

func openOutbox(path, codename string, kdf crypto.CodenameKDF, random io.Reader) (*Outbox, error) {
	codename, err := checkCodenameKDF(codename, kdf)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("outbox %s: %w: not a regular file", path, crypto.ErrMalformed)
	}
	if err := checkOutboxSize(st.Size()); err != nil {
		return nil, fmt.Errorf("outbox %s: %w (truncated or extended?)", path, err)
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("outbox %s: %w", path, err)
	}
	if n, _ := f.Read(make([]byte, 1)); n != 0 {
		return nil, fmt.Errorf("outbox %s: %w: the file grew while it was read", path, crypto.ErrMalformed)
	}
	o := &Outbox{path: path, size: len(data), rand: random}
	copy(o.salt[:], data)
	o.key = crypto.DeriveOutboxKey(codename, o.salt, kdf)
	aead, err := chacha20poly1305.NewX(o.key[:])
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	nonce := data[outboxSaltSize : outboxSaltSize+outboxNonceSize]
	sealed := data[outboxSaltSize+outboxNonceSize:]
	body, err := aead.Open(sealed[:0], nonce, sealed, o.salt[:])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, ErrOutboxKey)
	}
	if o.Items, err = parseOutboxBody(body); err != nil {
		return nil, fmt.Errorf("outbox %s: %w", path, err)
	}
	return o, nil
}

// checkCodenameKDF normalises the codename and checks the cost, before any
// work.
func checkCodenameKDF(codename string, kdf crypto.CodenameKDF) (string, error) {
	if kdf.Time < 1 || kdf.MemoryKiB < 8 {
		return "", fmt.Errorf("outbox: KDF cost time=%d memory=%d KiB is below Argon2's minimum (time 1, memory 8 KiB)", kdf.Time, kdf.MemoryKiB)
	}
	codename, err := crypto.ParseCodename(codename)
	if err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	return codename, nil
}

// checkOutboxSize checks a file size before anything is read or allocated.
func checkOutboxSize(n int64) error {
	if n < DefaultOutboxSize || n > maxOutboxSize || n%outboxSizeStep != 0 {
		return fmt.Errorf("%w: size %d bytes is not a multiple of %d from %d to %d", crypto.ErrMalformed, n, outboxSizeStep, DefaultOutboxSize, maxOutboxSize)
	}
	return nil
}

// Size returns the size of the outbox file in bytes.
func (o *Outbox) Size() int { return o.size }

// Free returns how many bytes of the body are left for more items. An item
// takes 80 + 8·len(PoW) + len(Refused) + len(Ciphertext) bytes. If Items
// was changed without Save and no longer fits, Free is negative.
func (o *Outbox) Free() int { return o.bodySize() - outboxBodyLen(o.Items) }

// OutboxFullError is an item that does not fit in the outbox. It matches
// ErrOutboxFull.
type OutboxFullError struct {
	// Need is the bytes the item takes; Used the bytes the body's items
	// take now; Body the body's size; Size the file's.
	Need, Used, Body, Size int
}

func (e *OutboxFullError) Error() string {
	return fmt.Sprintf("%v: the upload needs %d bytes; %d of the %d bytes a %d-byte outbox holds are used", ErrOutboxFull, e.Need, e.Used, e.Body, e.Size)
}

func (e *OutboxFullError) Is(target error) bool { return target == ErrOutboxFull }

// SizeFor returns the smallest outbox size (a multiple of 64 KiB) that
// holds what is used and the item, or 0 if even the largest outbox
// (64 MiB) does not.
func (e *OutboxFullError) SizeFor() int {
	n := (e.Used + e.Need + outboxOverhead + outboxSizeStep - 1) / outboxSizeStep * outboxSizeStep
	n = max(n, DefaultOutboxSize)
	if n > maxOutboxSize {
		return 0
	}
	return n
}

// Room reports, as an *OutboxFullError, whether an item of ciphertextLen
// bytes of ciphertext (with its proofs of work) would not fit: a caller
// can ask before computing the proofs.
func (o *Outbox) Room(ciphertextLen int) error {
	need := outboxItemFixed + protocol.ProofSize*protocol.Proofs(int64(ciphertextLen)) + ciphertextLen
	if used := outboxBodyLen(o.Items); used+need > o.bodySize() {
		return &OutboxFullError{Need: need, Used: used, Body: o.bodySize(), Size: o.size}
	}
	return nil
}

// Resize rewrites the outbox at size bytes (a multiple of 64 KiB from
// DefaultOutboxSize to 64 MiB), keeping its items, salt and key. It
// refuses a size its items do not fit in. When it returns nil the outbox
// file has the new size, durably.
func (o *Outbox) Resize(size int) error {
	if err := checkOutboxSize(int64(size)); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if size == o.size {
		return nil
	}
	old := o.size
	o.size = size
	if err := o.Save(); err != nil {
		o.size = old
		return err
	}
	return nil
}

func (o *Outbox) bodySize() int { return o.size - outboxOverhead }

// Add appends an item and saves the outbox. It fails, leaving the outbox
// and its file unchanged, with ErrOutboxFull if the item does not fit, or
// if the item is malformed or its UploadID already in the outbox. When it
// returns nil the item is durable.
func (o *Outbox) Add(it *OutboxItem) error {
	if err := checkOutboxItem(it); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if o.index(it.UploadID) >= 0 {
		return fmt.Errorf("outbox: the upload to add is in the outbox already")
	}
	used, need := outboxBodyLen(o.Items), outboxItemLen(it)
	if used+need > o.bodySize() {
		return &OutboxFullError{Need: need, Used: used, Body: o.bodySize(), Size: o.size}
	}
	o.Items = append(o.Items, it)
	if err := o.Save(); err != nil {
		o.Items = o.Items[:len(o.Items)-1]
		return err
	}
	return nil
}

// Update replaces the item with it.UploadID by it, in place, and saves the
// outbox. On failure the outbox and its file are unchanged (unless the
// caller changed the item it holds in place). When it returns nil the
// change is durable.
func (o *Outbox) Update(it *OutboxItem) error {
	if err := checkOutboxItem(it); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	i := o.index(it.UploadID)
	if i < 0 {
		return fmt.Errorf("outbox: the upload to update is not in the outbox")
	}
	old := o.Items[i]
	o.Items[i] = it
	if err := o.Save(); err != nil {
		o.Items[i] = old
		return err
	}
	return nil
}

// Remove removes the item with the id and saves the outbox. On failure the
// outbox and its file are unchanged. When it returns nil the item is gone
// from the file (though flash may keep an old copy of the file, as opaque
// as the current one: FIELD.md, "Phone seizure").
func (o *Outbox) Remove(id [16]byte) error {
	i := o.index(id)
	if i < 0 {
		return fmt.Errorf("outbox: the upload to remove is not in the outbox")
	}
	old := o.Items
	o.Items = append(append(make([]*OutboxItem, 0, len(old)-1), old[:i]...), old[i+1:]...)
	if err := o.Save(); err != nil {
		o.Items = old
		return err
	}
	return nil
}

func (o *Outbox) index(id [16]byte) int {
	for i, it := range o.Items {
		if it.UploadID == id {
			return i
		}
	}
	return -1
}

// Save rewrites the outbox file whole, with a fresh nonce, through a
// temporary file, fsync and rename (internal/atomicfile), mode 0600. It
// checks every item first: a malformed item, two items with one UploadID,
// or items that do not fit (ErrOutboxFull) leave the file unchanged. When it
// returns nil the outbox is durable.
func (o *Outbox) Save() error {
	data, err := o.seal()
	if err != nil {
		return err
	}
	if err := atomicfile.Replace(o.path, data, 0o600); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// seal checks the items and returns the whole file.
func (o *Outbox) seal() ([]byte, error) {
	seen := make(map[[16]byte]bool, len(o.Items))
	for i, it := range o.Items {
		if err := checkOutboxItem(it); err != nil {
			return nil, fmt.Errorf("outbox: item %d: %w", i+1, err)
		}
		if seen[it.UploadID] {
			return nil, fmt.Errorf("outbox: item %d has the upload id of an earlier item", i+1)
		}
		seen[it.UploadID] = true
	}
	if used := outboxBodyLen(o.Items); used > o.bodySize() {
		return nil, fmt.Errorf("%w: %d items need %d bytes; a %d-byte outbox holds %d", ErrOutboxFull, len(o.Items), used, o.size, o.bodySize())
	}
	body := appendOutboxBody(make([]byte, 0, o.bodySize()), o.Items)
	body = body[:o.bodySize()] // the rest of the capacity is zero: padding
	defer clear(body)
	return o.sealBody(body)
}

// sealBody encrypts a whole body, o.bodySize() bytes, into the file.
func (o *Outbox) sealBody(body []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(o.key[:])
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	data := make([]byte, outboxSaltSize+outboxNonceSize, o.size)
	copy(data, o.salt[:])
	nonce := data[outboxSaltSize:]
	// A random 24-byte nonce per save: XChaCha20's nonce is large enough
	// that random nonces never repeat in practice (draft-irtf-cfrg-xchacha
	// §3.1), and nothing else in the file may change between saves.
	if _, err := io.ReadFull(o.rand, nonce); err != nil {
		return nil, fmt.Errorf("outbox: nonce: %w", err)
	}
	data = aead.Seal(data, nonce, body, o.salt[:])
	if len(data) != o.size {
		panic("client: outbox sealed to the wrong size") // unreachable: sizes are fixed above
	}
	return data, nil
}

// checkOutboxItem checks the rules of docs/outbox.md that the encoding
// does not enforce by itself.
func checkOutboxItem(it *OutboxItem) error {
	switch {
	case it == nil:
		return fmt.Errorf("%w: nil item", crypto.ErrMalformed)
	case it.BundleVersion < 1:
		return fmt.Errorf("%w: bundle version %d is not positive", crypto.ErrMalformed, it.BundleVersion)
	case it.FrameSize != protocol.FrameSize && it.FrameSize != protocol.LowBandwidthFrameSz:
		return fmt.Errorf("%w: frame size %d is neither %d nor %d", crypto.ErrMalformed, it.FrameSize, protocol.FrameSize, protocol.LowBandwidthFrameSz)
	case it.PoWEpoch < 0:
		return fmt.Errorf("%w: PoW epoch %d is negative", crypto.ErrMalformed, it.PoWEpoch)
	case len(it.Ciphertext) == 0 || len(it.Ciphertext)%it.FrameSize != 0:
		return fmt.Errorf("%w: ciphertext length %d is not a positive multiple of the frame size %d", crypto.ErrMalformed, len(it.Ciphertext), it.FrameSize)
	case len(it.Ciphertext) > outboxMaxCiphertext:
		return fmt.Errorf("%w: ciphertext length %d is over %d", crypto.ErrMalformed, len(it.Ciphertext), outboxMaxCiphertext)
	case len(it.PoW) != protocol.Proofs(int64(len(it.Ciphertext))):
		return fmt.Errorf("%w: %d proofs of work for %d bytes of ciphertext, want %d", crypto.ErrMalformed, len(it.PoW), len(it.Ciphertext), protocol.Proofs(int64(len(it.Ciphertext))))
	case it.Day < 0 || it.Day > 1<<32-1:
		return fmt.Errorf("%w: composed day %d is not a 32-bit day number", crypto.ErrMalformed, it.Day)
	case it.Refused != "" && !validRefusal(string(it.Refused)):
		return fmt.Errorf("%w: refusal %q is not a code of 1 to %d letters a-z and _", crypto.ErrMalformed, it.Refused, maxRefusalLength)
	}
	return nil
}

// validRefusal reports whether s is a refusal code as the outbox stores
// it: 1 to maxRefusalLength bytes of a-z and _.
func validRefusal(s string) bool {
	if len(s) == 0 || len(s) > maxRefusalLength {
		return false
	}
	for i := range len(s) {
		if (s[i] < 'a' || s[i] > 'z') && s[i] != '_' {
			return false
		}
	}
	return true
}

// DayOf returns the day number (days since 1970-01-01 UTC) of t, as
// OutboxItem.Day holds it.
func DayOf(t time.Time) int { return int(t.Unix() / 86400) }

// AgeDays returns how many whole days before now the item was composed,
// or -1 if its day is unknown.
func (it *OutboxItem) AgeDays(now time.Time) int {
	if it.Day == 0 {
		return -1
	}
	return max(0, DayOf(now)-it.Day)
}

func outboxItemLen(it *OutboxItem) int {
	return outboxItemFixed + protocol.ProofSize*len(it.PoW) + len(it.Refused) + len(it.Ciphertext)
}

func outboxBodyLen(items []*OutboxItem) int {
	n := outboxBodyPrefix
	for _, it := range items {
		n += outboxItemLen(it)
	}
	return n
}

// appendOutboxBody appends the encoding of items, without padding, to dst.
// The items must pass checkOutboxItem, have distinct ids and number at
// most 65,535.
func appendOutboxBody(dst []byte, items []*OutboxItem) []byte {
	dst = append(dst, outboxBodyVersion)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(items)))
	for _, it := range items {
		dst = append(dst, it.UploadID[:]...)
		dst = append(dst, it.ResumeSecret[:]...)
		dst = binary.BigEndian.AppendUint64(dst, uint64(it.BundleVersion))
		dst = binary.BigEndian.AppendUint32(dst, uint32(it.FrameSize))
		dst = binary.BigEndian.AppendUint64(dst, uint64(it.PoWEpoch))
		var flags byte
		if it.Started {
			flags |= outboxFlagStarted
		}
		dst = append(dst, flags)
		dst = binary.BigEndian.AppendUint32(dst, uint32(it.Day))
		dst = append(dst, byte(len(it.Refused)))
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(it.Ciphertext)))
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(it.PoW)))
		for _, p := range it.PoW {
			dst = binary.BigEndian.AppendUint64(dst, p)
		}
		dst = append(dst, it.Refused...)
		dst = append(dst, it.Ciphertext...)
	}
	return dst
}

// parseOutboxBody parses a decrypted body strictly (docs/outbox.md): every
// count and length is bounded by the bytes left before anything is
// allocated, every field has one encoding, and everything after the last
// item is zero. Errors match crypto.ErrMalformed. The items' Ciphertext
// aliases body.
func parseOutboxBody(body []byte) ([]*OutboxItem, error) {
	if len(body) < outboxBodyPrefix {
		return nil, fmt.Errorf("%w outbox body: %d bytes, shorter than its version and count", crypto.ErrMalformed, len(body))
	}
	version := body[0]
	if version != outboxBodyVersion && version != outboxBodyV1 {
		return nil, fmt.Errorf("%w outbox body: version %d, this program reads %d and %d", crypto.ErrMalformed, version, outboxBodyV1, outboxBodyVersion)
	}
	count := int(binary.BigEndian.Uint16(body[1:]))
	rest := body[outboxBodyPrefix:]
	if count > len(rest)/outboxMinItem {
		return nil, fmt.Errorf("%w outbox body: %d items cannot fit in %d bytes", crypto.ErrMalformed, count, len(rest))
	}
	items := make([]*OutboxItem, 0, count)
	seen := make(map[[16]byte]bool, count)
	for i := range count {
		it, n, err := parseOutboxItem(rest, version)
		if err != nil {
			return nil, fmt.Errorf("%w outbox body: item %d at byte %d: %w", crypto.ErrMalformed, i+1, len(body)-len(rest), err)
		}
		if seen[it.UploadID] {
			return nil, fmt.Errorf("%w outbox body: item %d has the upload id of an earlier item", crypto.ErrMalformed, i+1)
		}
		seen[it.UploadID] = true
		items = append(items, it)
		rest = rest[n:]
	}
	for j, b := range rest {
		if b != 0 {
			return nil, fmt.Errorf("%w outbox body: byte %d after the last item is %#02x, not padding", crypto.ErrMalformed, len(body)-len(rest)+j, b)
		}
	}
	return items, nil
}

// errOutboxItemShort: an item's fields or lengths run past the body (the
// caller adds crypto.ErrMalformed and the position).
var errOutboxItemShort = errors.New("item runs past the end of the body")

// parseOutboxItem parses one item of body version version at the start
// of b and returns it with its length.
func parseOutboxItem(b []byte, version byte) (*OutboxItem, int, error) {
	fixed := outboxItemFixed
	if version == outboxBodyV1 {
		fixed = outboxItemFixedV1
	}
	if len(b) < fixed {
		return nil, 0, errOutboxItemShort
	}
	it := &OutboxItem{}
	p := b
	p = p[copy(it.UploadID[:], p):]
	p = p[copy(it.ResumeSecret[:], p):]
	bundle := binary.BigEndian.Uint64(p)
	frame := binary.BigEndian.Uint32(p[8:])
	epoch := binary.BigEndian.Uint64(p[12:])
	flags := p[20]
	p = p[21:]
	var day uint32
	var refusal int
	if version != outboxBodyV1 {
		day = binary.BigEndian.Uint32(p)
		refusal = int(p[4])
		p = p[5:]
	}
	ctLen := binary.BigEndian.Uint32(p)
	proofs := binary.BigEndian.Uint16(p[4:])
	p = p[6:]
	switch {
	case bundle < 1 || bundle > 1<<63-1:
		return nil, 0, fmt.Errorf("bundle version %d is not a positive int64", bundle)
	case frame != protocol.FrameSize && frame != protocol.LowBandwidthFrameSz:
		return nil, 0, fmt.Errorf("frame size %d is neither %d nor %d", frame, protocol.FrameSize, protocol.LowBandwidthFrameSz)
	case epoch > 1<<63-1:
		return nil, 0, fmt.Errorf("PoW epoch %d is negative as an int64", epoch)
	case flags&^outboxFlagStarted != 0:
		return nil, 0, fmt.Errorf("flags %#02x has undefined bits", flags)
	case refusal > maxRefusalLength:
		return nil, 0, fmt.Errorf("refusal of %d bytes, more than %d", refusal, maxRefusalLength)
	case ctLen == 0 || ctLen%frame != 0:
		return nil, 0, fmt.Errorf("ciphertext length %d is not a positive multiple of the frame size %d", ctLen, frame)
	case ctLen > outboxMaxCiphertext:
		return nil, 0, fmt.Errorf("ciphertext length %d is over %d", ctLen, outboxMaxCiphertext)
	case int(proofs) != protocol.Proofs(int64(ctLen)):
		return nil, 0, fmt.Errorf("%d proofs of work for %d bytes of ciphertext, want %d", proofs, ctLen, protocol.Proofs(int64(ctLen)))
	}
	// ctLen ≤ 64 MiB, proofs ≤ 1,024 and refusal ≤ 32 here, so the sum
	// fits an int even on 32-bit phones.
	n := fixed + protocol.ProofSize*int(proofs) + refusal + int(ctLen)
	if n > len(b) {
		return nil, 0, errOutboxItemShort
	}
	it.BundleVersion = int64(bundle)
	it.FrameSize = int(frame)
	it.PoWEpoch = int64(epoch)
	it.Started = flags&outboxFlagStarted != 0
	it.Day = int(day)
	it.PoW = make([]uint64, proofs)
	for i := range it.PoW {
		it.PoW[i] = binary.BigEndian.Uint64(p)
		p = p[protocol.ProofSize:]
	}
	if refusal > 0 {
		code := string(p[:refusal])
		if !validRefusal(code) {
			return nil, 0, fmt.Errorf("refusal %q is not a code of a-z and _", code)
		}
		it.Refused = protocol.Code(code)
		p = p[refusal:]
	}
	it.Ciphertext = p[:ctLen:ctLen]
	return it, n, nil
}
