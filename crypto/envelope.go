package crypto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf8"

	"filippo.io/age"
)

// Tip limits.
const (
	// MaxTipSize caps a tip's ciphertext (and so its plaintext).
	MaxTipSize = 32 << 20
	// MaxManifestSize caps the JSON manifest line of a tip.
	MaxManifestSize = 1 << 20
	// MaxAttachments caps the attachments of one tip.
	MaxAttachments = 32
	// MaxNameLength caps an attachment's file name and type.
	MaxNameLength = 255
)

// age's payload framing (age spec, "Payload"): a 16-byte nonce, then
// chunks of up to 64 KiB of plaintext, each with a 16-byte tag; an empty
// plaintext is one empty chunk.
const (
	ageNonceSize = 16
	ageChunkSize = 64 << 10
	ageTagSize   = 16
)

// Tip is what a source sends: text and attachments, with names and types,
// and the address its source takes replies at.
type Tip struct {
	Text        string
	Attachments []Attachment
	// Reply, if set, is the source's reply address: the tip is written in
	// format v2 (TipHeaderV2), which carries it. A v1 tip has none.
	Reply *ReplyAddress
}

// Attachment is one file sent with a tip.
type Attachment struct {
	Name string
	Type string
	Data []byte
}

// manifest is the JSON line of the tip format, v1.
type manifest struct {
	Text        string              `json:"text"`
	Attachments []manifestAttachent `json:"attachments"`
}

// manifestV2 is the JSON line of the tip format v2: v1's, then the
// source's reply address.
type manifestV2 struct {
	Text        string              `json:"text"`
	Attachments []manifestAttachent `json:"attachments"`
	Reply       *manifestReply      `json:"reply"`
}

type manifestReply struct {
	Recipient string `json:"recipient"`
	Mailbox   string `json:"mailbox"`
}

type manifestAttachent struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Size int64  `json:"size"`
}

// MarshalTip encodes a tip's plaintext, unpadded:
//
//	fieldtip/tip/v1\n            (v2 when the tip has a reply address)
//	<manifest: one line of JSON {"text":…,"attachments":[{"name":…,"type":…,"size":…}]}>\n
//	<the attachments' bytes, in manifest order>
//
// In v2 the manifest ends with "reply":{"recipient":…,"mailbox":…}.
// Padding, zero bytes, follows in the sealed form.
func MarshalTip(t *Tip) ([]byte, error) {
	if !utf8.ValidString(t.Text) {
		return nil, errors.New("tip: text is not valid UTF-8")
	}
	if len(t.Attachments) > MaxAttachments {
		return nil, fmt.Errorf("tip: %d attachments, at most %d", len(t.Attachments), MaxAttachments)
	}
	m := manifestV2{Text: t.Text, Attachments: []manifestAttachent{}}
	for _, a := range t.Attachments {
		if err := checkName(a.Name, a.Type); err != nil {
			return nil, err
		}
		m.Attachments = append(m.Attachments, manifestAttachent{Name: a.Name, Type: a.Type, Size: int64(len(a.Data))})
	}
	header := TipHeader
	var line []byte
	var err error
	if t.Reply != nil {
		if err := t.Reply.check(); err != nil {
			return nil, fmt.Errorf("tip: %w", err)
		}
		header = TipHeaderV2
		m.Reply = &manifestReply{Recipient: t.Reply.Recipient, Mailbox: t.Reply.Mailbox.String()}
		line, err = json.Marshal(&m)
	} else {
		line, err = json.Marshal(&manifest{Text: m.Text, Attachments: m.Attachments})
	}
	if err != nil {
		return nil, fmt.Errorf("tip: %w", err)
	}
	if len(line) > MaxManifestSize {
		return nil, fmt.Errorf("tip: manifest of %d bytes, at most %d", len(line), MaxManifestSize)
	}
	out := append([]byte(header+"\n"), line...)
	out = append(out, '\n')
	for _, a := range t.Attachments {
		out = append(out, a.Data...)
	}
	return out, nil
}

// hasControl reports whether s holds a control character: names and types
// reach editors' terminals and file systems.
func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

func checkName(name, typ string) error {
	if name == "" || name == "." || name == ".." || len(name) > MaxNameLength || !utf8.ValidString(name) ||
		bytes.ContainsAny([]byte(name), "/\\\x00") || hasControl(name) || strings.HasPrefix(name, "-") {
		return fmt.Errorf("tip: %w: attachment name %q is not a plain file name", ErrMalformed, clip(name))
	}
	if typ == "" || len(typ) > MaxNameLength || !utf8.ValidString(typ) || hasControl(typ) {
		return fmt.Errorf("tip: %w: attachment type %q is not valid", ErrMalformed, clip(typ))
	}
	return nil
}

// ParseTip decodes a tip's plaintext, padding included, in format v1 or
// v2 (which adds the reply address). Everything after the last attachment
// must be zero bytes.
func ParseTip(plain []byte) (*Tip, error) {
	v2 := false
	rest, ok := bytes.CutPrefix(plain, []byte(TipHeader+"\n"))
	if !ok {
		if rest, ok = bytes.CutPrefix(plain, []byte(TipHeaderV2+"\n")); !ok {
			return nil, fmt.Errorf("tip: %w: does not start with %q or %q", ErrMalformed, TipHeader, TipHeaderV2)
		}
		v2 = true
	}
	nl := bytes.IndexByte(rest[:min(len(rest), MaxManifestSize+1)], '\n')
	if nl < 0 {
		return nil, fmt.Errorf("tip: %w: no manifest line within %d bytes", ErrMalformed, MaxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(rest[:nl]))
	dec.DisallowUnknownFields()
	var m manifestV2
	var err error
	if v2 {
		err = dec.Decode(&m)
	} else {
		var m1 manifest
		err = dec.Decode(&m1)
		m.Text, m.Attachments = m1.Text, m1.Attachments
	}
	if err != nil {
		return nil, fmt.Errorf("tip: %w: manifest: %w", ErrMalformed, err)
	}
	if dec.More() || m.Attachments == nil || (v2 && m.Reply == nil) {
		return nil, fmt.Errorf("tip: %w: manifest is not one JSON object with text and attachments (and in v2 reply)", ErrMalformed)
	}
	// One encoding: the manifest must be exactly what MarshalTip writes.
	// encoding/json matches keys case-insensitively, keeps the last of
	// repeated keys, allows whitespace and escapes, and dec.More misses a
	// trailing '}' or ']'.
	var canon []byte
	if v2 {
		canon, err = json.Marshal(&m)
	} else {
		canon, err = json.Marshal(&manifest{Text: m.Text, Attachments: m.Attachments})
	}
	if err != nil || !bytes.Equal(canon, rest[:nl]) {
		return nil, fmt.Errorf("tip: %w: manifest is not in canonical form", ErrMalformed)
	}
	if len(m.Attachments) > MaxAttachments {
		return nil, fmt.Errorf("tip: %w: %d attachments, at most %d", ErrMalformed, len(m.Attachments), MaxAttachments)
	}
	body := rest[nl+1:]
	t := &Tip{Text: m.Text}
	if v2 {
		mb, err := ParseMailboxID(m.Reply.Mailbox)
		if err != nil {
			return nil, fmt.Errorf("tip: %w", err)
		}
		t.Reply = &ReplyAddress{Recipient: m.Reply.Recipient, Mailbox: mb}
		if err := t.Reply.check(); err != nil {
			return nil, fmt.Errorf("tip: %w", err)
		}
	}
	for _, a := range m.Attachments {
		if err := checkName(a.Name, a.Type); err != nil {
			return nil, err
		}
		if a.Size < 0 || a.Size > int64(len(body)) {
			return nil, fmt.Errorf("tip: %w: attachment %q claims %d bytes, %d remain", ErrMalformed, clip(a.Name), a.Size, len(body))
		}
		t.Attachments = append(t.Attachments, Attachment{Name: a.Name, Type: a.Type, Data: body[:a.Size:a.Size]})
		body = body[a.Size:]
	}
	for _, c := range body {
		if c != 0 {
			return nil, fmt.Errorf("tip: %w: padding is not all zero", ErrMalformed)
		}
	}
	return t, nil
}

// Bucket returns the ciphertext size a tip of n ciphertext bytes is padded
// to (FIELD.md, "Sizes leak"): one frame for anything that fits in one,
// above that PADMÉ rounded up to a whole number of frames.
func Bucket(n, frameSize int64) int64 {
	if n <= frameSize {
		return frameSize
	}
	return roundUp(padme(n), frameSize)
}

// padme is PADMÉ (Nikitin et al., "Reducing Metadata Leakage from Encrypted
// Files and Communication with PURBs", PETS 2019, Algorithm 1): at most 12%
// overhead, and only O(log log n) bits of the length survive.
func padme(n int64) int64 {
	if n < 2 {
		return n
	}
	e := int64(bits.Len64(uint64(n))) - 1 // floor(log2 n)
	s := int64(bits.Len64(uint64(e)))     // floor(log2 e) + 1
	lastBits := e - s
	mask := int64(1)<<lastBits - 1
	return (n + mask) &^ mask
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

// ageSize returns the size of an age file with a header of h bytes and p
// bytes of plaintext.
func ageSize(h, p int64) int64 {
	chunks := max(1, (p+ageChunkSize-1)/ageChunkSize)
	return h + ageNonceSize + p + chunks*ageTagSize
}

// Seal encodes, pads and encrypts a tip to recipients so that the whole
// ciphertext, age header included, is exactly Bucket(size, frameSize) bytes.
func Seal(t *Tip, recipients []age.Recipient, frameSize int64) ([]byte, error) {
	plain, err := MarshalTip(t)
	if err != nil {
		return nil, err
	}
	return sealPadded(plain, recipients, frameSize, MaxTipSize, "tip")
}

// sealPadded pads plain with zero bytes and encrypts it to recipients so
// that the whole age file is exactly Bucket(size, frameSize) bytes, at
// most maxSize. what names the document in errors.
func sealPadded(plain []byte, recipients []age.Recipient, frameSize, maxSize int64, what string) ([]byte, error) {
	// age stanzas of one recipient type have a fixed size, so the header of
	// an empty file is the header of any file to the same recipients.
	var empty bytes.Buffer
	if err := encrypt(&empty, nil, recipients); err != nil {
		return nil, err
	}
	h := int64(empty.Len()) - ageNonceSize - ageTagSize
	target := Bucket(ageSize(h, int64(len(plain))), frameSize)
	var p int64 = -1
	for p < 0 {
		if target > maxSize {
			return nil, fmt.Errorf("%s: %d bytes sealed, more than %d", what, target, maxSize)
		}
		p = paddedPlaintextSize(h, target, int64(len(plain)))
		if p < 0 {
			// target falls in the 16-byte gap where one more plaintext
			// byte starts a new chunk: take the next frame.
			target += frameSize
		}
	}
	padded := make([]byte, p)
	copy(padded, plain)
	var out bytes.Buffer
	out.Grow(int(target))
	if err := encrypt(&out, padded, recipients); err != nil {
		return nil, err
	}
	if int64(out.Len()) != target {
		return nil, fmt.Errorf("%s: sealed %d bytes, want %d (age header size changed?)", what, out.Len(), target)
	}
	return out.Bytes(), nil
}

// paddedPlaintextSize returns the plaintext size p >= min with
// ageSize(h, p) == target, or -1 if there is none.
func paddedPlaintextSize(h, target, min int64) int64 {
	for chunks := int64(1); ; chunks++ {
		p := target - h - ageNonceSize - chunks*ageTagSize
		if p < min {
			return -1
		}
		if ageSize(h, p) == target {
			return p
		}
	}
}

func encrypt(dst io.Writer, plain []byte, recipients []age.Recipient) error {
	w, err := age.Encrypt(dst, recipients...)
	if err != nil {
		return fmt.Errorf("tip: encrypt: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return fmt.Errorf("tip: encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("tip: encrypt: %w", err)
	}
	return nil
}

// Open decrypts a sealed tip with an editor's identity and parses it. It
// returns nothing of a file that fails to decrypt whole: age authenticates
// every chunk and the end of the stream, and Open reads to the end before
// parsing, so a truncated file yields an error, never partial text.
func Open(ciphertext []byte, identities ...age.Identity) (*Tip, error) {
	if len(ciphertext) > MaxTipSize {
		return nil, fmt.Errorf("tip: %w: %d bytes, more than %d", ErrMalformed, len(ciphertext), MaxTipSize)
	}
	r, err := age.Decrypt(bytes.NewReader(ciphertext), identities...)
	if err != nil {
		return nil, fmt.Errorf("tip: decrypt: %w", err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("tip: decrypt: %w", err)
	}
	return ParseTip(plain)
}

// ErrBadCiphertext: bytes are not an age file as the bundle requires.
var ErrBadCiphertext = errors.New("not an age file encrypted to the bundle's editors")

// CheckCiphertext checks, with no key, that ciphertext is an age file whose
// header holds exactly count stanzas, all of stanzaType, and whose payload
// length is one age can produce. The header MAC can only be checked with a
// file key, so this is structure only: it keeps garbage and files for other
// recipients out of the store.
func CheckCiphertext(ciphertext []byte, stanzaType string, count int) error {
	h, err := ParseCiphertextHeader(ciphertext, int64(len(ciphertext)))
	if err != nil {
		return err
	}
	return h.Check(stanzaType, count)
}

// CiphertextHeader is what CheckCiphertext learns of an age file from its
// header and length, with no key: enough to check it against a bundle
// later.
type CiphertextHeader struct {
	// StanzaTypes are the header's recipient stanza types, in order.
	StanzaTypes []string
	// Size is the header's size in bytes.
	Size int64
}

// ErrHeaderIncomplete: the bytes given end inside the age header; more of
// the file may complete it.
var ErrHeaderIncomplete = errors.New("age header incomplete")

// ParseCiphertextHeader parses the age header at the start of prefix, the
// first bytes of a file of length bytes, so that a server can check an
// upload's structure from its first frames, as they arrive, and never
// hold the whole file. It returns ErrHeaderIncomplete (not wrapping
// ErrBadCiphertext) when prefix is shorter than length and ends inside
// the header; any other fault wraps ErrBadCiphertext, as CheckCiphertext's.
func ParseCiphertextHeader(prefix []byte, length int64) (*CiphertextHeader, error) {
	if int64(len(prefix)) < length && !headerEnds(prefix) {
		// age's errors do not say whether the bytes ran out: look for the
		// header's last line (the MAC line, "--- …\n") instead. A prefix
		// that is not the start of an age file fails at once.
		if n := min(len(prefix), len(ageIntro)); string(prefix[:n]) != ageIntro[:n] {
			return nil, fmt.Errorf("%w: not an age file", ErrBadCiphertext)
		}
		return nil, ErrHeaderIncomplete
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(prefix))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCiphertext, err)
	}
	if !bytes.HasPrefix(prefix, hdr) {
		return nil, fmt.Errorf("%w: header is not in canonical form", ErrBadCiphertext)
	}
	// age offers no public header parser; DecryptHeader with an identity
	// that matches nothing reports the stanza types in NoIdentityMatchError.
	_, err = age.DecryptHeader(hdr, stanzaLister{})
	var noMatch *age.NoIdentityMatchError
	if !errors.As(err, &noMatch) {
		return nil, fmt.Errorf("%w: header: %w", ErrBadCiphertext, err)
	}
	payload := length - int64(len(hdr))
	if !validPayloadSize(payload) {
		return nil, fmt.Errorf("%w: payload of %d bytes is not a length age produces", ErrBadCiphertext, payload)
	}
	return &CiphertextHeader{StanzaTypes: noMatch.StanzaTypes, Size: int64(len(hdr))}, nil
}

// ageIntro is the first line of every age file (age spec, "Header").
const ageIntro = "age-encryption.org/v1\n"

// headerEnds reports whether b holds a whole header's last line: the MAC
// line, the first that starts with "---" (stanza lines start with "->",
// and their bodies are base64, which has no '-').
func headerEnds(b []byte) bool {
	i := bytes.Index(b, []byte("\n---"))
	return i >= 0 && bytes.IndexByte(b[i+1:], '\n') >= 0
}

// Check reports whether the header holds exactly count stanzas, all of
// stanzaType.
func (h *CiphertextHeader) Check(stanzaType string, count int) error {
	if len(h.StanzaTypes) != count {
		return fmt.Errorf("%w: %d recipient stanzas, want %d (one per editor)", ErrBadCiphertext, len(h.StanzaTypes), count)
	}
	for _, t := range h.StanzaTypes {
		if t != stanzaType {
			return fmt.Errorf("%w: recipient stanza of type %q, want %q", ErrBadCiphertext, clip(t), stanzaType)
		}
	}
	return nil
}

// validPayloadSize reports whether an age payload (nonce and chunks) can be
// n bytes: every chunk but the last is full, and the last is empty only if
// it is the only one.
func validPayloadSize(n int64) bool {
	rest := n - ageNonceSize
	if rest < ageTagSize {
		return false
	}
	full := int64(ageChunkSize + ageTagSize)
	last := rest % full
	switch {
	case last == 0:
		return true
	case last < ageTagSize:
		return false
	case last == ageTagSize:
		return rest == ageTagSize
	}
	return true
}

type stanzaLister struct{}

func (stanzaLister) Unwrap([]*age.Stanza) ([]byte, error) { return nil, age.ErrIncorrectIdentity }
