package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"filippo.io/age"
	"golang.org/x/crypto/argon2"
)

// Replies to sources (docs/replies.md). The codename derives, through one
// memory-hard KDF salted with the newsroom's verifier key, the source's
// reply identity (an age key of the bundle's type) and a mailbox secret;
// the mailbox id, which replies are stored under, is a hash of the public
// half of a key whose seed is that secret, so the source proves the
// secret (to delete a reply it read) without sending it.
const (
	// ReplyKDFDomain separates the reply root key from the outbox key
	// (OutboxKDFDomain) and every other use of the codename.
	ReplyKDFDomain = "fieldtip/reply-key/v1"
	// replyIdentityX25519Info, replyIdentityHybridInfo and
	// mailboxSecretInfo are the HKDF labels of the three keys expanded
	// from the root: one seed per key type, never shared.
	replyIdentityX25519Info = "fieldtip/reply-identity/X25519/v1"
	replyIdentityHybridInfo = "fieldtip/reply-identity/mlkem768x25519/v1"
	mailboxSecretInfo       = "fieldtip/mailbox-secret/v1"
	// MailboxIDDomain prefixes the mailbox key in the mailbox id's hash.
	MailboxIDDomain = "fieldtip/mailbox-id/v1"
	// ReplyDeleteDomain prefixes the reply id in a delete's signature, so
	// the mailbox key signs nothing else.
	ReplyDeleteDomain = "fieldtip/reply-delete/v1"
	// ReplyHeader is the first line of a reply's plaintext.
	ReplyHeader = "fieldtip/reply/v1"
)

// Reply limits (docs/replies.md, "Reply").
const (
	// ReplyFrameSize is the padding step of a sealed reply: every reply is
	// a whole number of 4 KiB, the smallest one 4 KiB (a post-quantum age
	// header is 1,627 bytes, which leaves about 2,400 for a short question).
	ReplyFrameSize = 4 << 10
	// MaxReplyText caps a reply's text in bytes.
	MaxReplyText = 4096
	// MaxReplySize caps a sealed reply: the longest text, every byte
	// escaped, to a post-quantum recipient fits.
	MaxReplySize = 32 << 10
	// ReplyIDSize is the size of a reply's random id.
	ReplyIDSize = 16
	// MailboxKeySize and ReplyDeleteSigSize are an Ed25519 public key's
	// and signature's sizes.
	MailboxKeySize     = ed25519.PublicKeySize
	ReplyDeleteSigSize = ed25519.SignatureSize
)

// ReplyKDF is the reply root key's Argon2id cost in version 1 of the
// derivation: 64 MiB, 3 passes, as the outbox key (RFC 9106 §4, second
// recommended option, one thread). Like the outbox's it is fixed by the
// version, never recorded: nothing on the phone names it.
var ReplyKDF = CodenameKDF{MemoryKiB: 64 << 10, Time: 3}

// MailboxID is the 32-byte id replies to one source are stored under:
// SHA-256(MailboxIDDomain ‖ 0x00 ‖ mailbox public key).
type MailboxID [32]byte

// String returns the id in unpadded base64url (43 characters), its one
// encoding.
func (m MailboxID) String() string { return base64.RawURLEncoding.EncodeToString(m[:]) }

// ParseMailboxID parses a mailbox id's one encoding.
func ParseMailboxID(s string) (MailboxID, error) {
	var m MailboxID
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != len(m) || base64.RawURLEncoding.EncodeToString(b) != s {
		return m, fmt.Errorf("%w: mailbox id %q is not 32 bytes of unpadded base64url", ErrMalformed, clip(s))
	}
	copy(m[:], b)
	return m, nil
}

// MailboxOf returns the mailbox id of a mailbox public key.
func MailboxOf(key ed25519.PublicKey) MailboxID {
	h := sha256.New()
	h.Write([]byte(MailboxIDDomain))
	h.Write([]byte{0})
	h.Write(key)
	return MailboxID(h.Sum(nil))
}

// ReplyKeys are what a codename derives for replies: the reply identities
// (one per age key type; the type of a tip's address follows the bundle's
// editors) and the mailbox key. Nothing of it is ever stored.
type ReplyKeys struct {
	x25519     *age.X25519Identity
	hybrid     *age.HybridIdentity
	mailboxKey ed25519.PrivateKey
	// Mailbox is the mailbox id, MailboxOf the mailbox key.
	Mailbox MailboxID
}

// DeriveReplyKeys derives a source's reply keys from its codename (as
// ParseCodename returns it) and the newsroom's verifier key (the text the
// client pinned):
//
//	root    = Argon2id(password = ReplyKDFDomain ‖ 0x00 ‖ codename,
//	                   salt = newsroom verifier key, time = kdf.Time,
//	                   memory = kdf.MemoryKiB, threads = 1, length = 32)
//	seed(l) = HKDF-SHA256(secret = root, salt = none, info = l, length = 32)
//
// The X25519 identity's scalar is seed("fieldtip/reply-identity/X25519/v1"),
// the hybrid identity's seed seed("fieldtip/reply-identity/mlkem768x25519/v1"),
// and the mailbox secret seed("fieldtip/mailbox-secret/v1"), the seed of
// the Ed25519 mailbox key. Salting with the newsroom's key gives one
// codename unrelated keys at two newsrooms. It panics on a cost below
// Argon2's minimum, which only a programming error can cause.
func DeriveReplyKeys(codename, newsroom string, kdf CodenameKDF) (*ReplyKeys, error) {
	if kdf.Time < 1 || kdf.MemoryKiB < 8 {
		panic(fmt.Sprintf("crypto: reply KDF cost time=%d memory=%d KiB is below Argon2's minimum (time 1, memory 8 KiB)", kdf.Time, kdf.MemoryKiB))
	}
	if newsroom == "" {
		return nil, errors.New("reply keys: no newsroom key to salt with")
	}
	password := make([]byte, 0, len(ReplyKDFDomain)+1+len(codename))
	password = append(password, ReplyKDFDomain...)
	password = append(password, 0)
	password = append(password, codename...)
	root := argon2.IDKey(password, []byte(newsroom), kdf.Time, kdf.MemoryKiB, 1, 32)
	clear(password)
	defer clear(root)
	return replyKeysFromRoot(root)
}

func replyKeysFromRoot(root []byte) (*ReplyKeys, error) {
	expand := func(info string) ([]byte, error) {
		return hkdf.Expand(sha256.New, root, info, 32)
	}
	xs, err := expand(replyIdentityX25519Info)
	if err != nil {
		return nil, fmt.Errorf("reply keys: %w", err)
	}
	defer clear(xs)
	hs, err := expand(replyIdentityHybridInfo)
	if err != nil {
		return nil, fmt.Errorf("reply keys: %w", err)
	}
	defer clear(hs)
	ms, err := expand(mailboxSecretInfo)
	if err != nil {
		return nil, fmt.Errorf("reply keys: %w", err)
	}
	defer clear(ms)
	// age builds identities only from their Bech32 text (bech32Encode).
	x, err := age.ParseX25519Identity(strings.ToUpper(bech32Encode("age-secret-key-", xs)))
	if err != nil {
		return nil, fmt.Errorf("reply keys: X25519 identity: %w", err)
	}
	h, err := age.ParseHybridIdentity(strings.ToUpper(bech32Encode("age-secret-key-pq-", hs)))
	if err != nil {
		return nil, fmt.Errorf("reply keys: hybrid identity: %w", err)
	}
	k := &ReplyKeys{x25519: x, hybrid: h, mailboxKey: ed25519.NewKeyFromSeed(ms)}
	k.Mailbox = MailboxOf(k.MailboxKey())
	return k, nil
}

// Address returns the reply address a tip carries: the reply recipient of
// stanzaType (StanzaHybrid or StanzaX25519: the bundle's, Bundle.StanzaType)
// and the mailbox id.
func (k *ReplyKeys) Address(stanzaType string) (*ReplyAddress, error) {
	switch stanzaType {
	case StanzaHybrid:
		return &ReplyAddress{Recipient: k.hybrid.Recipient().String(), Mailbox: k.Mailbox}, nil
	case StanzaX25519:
		return &ReplyAddress{Recipient: k.x25519.Recipient().String(), Mailbox: k.Mailbox}, nil
	}
	return nil, fmt.Errorf("reply keys: no reply identity of stanza type %q", clip(stanzaType))
}

// Identities returns the reply identities, to try on every reply of a
// bucket.
func (k *ReplyKeys) Identities() []age.Identity { return []age.Identity{k.hybrid, k.x25519} }

// MailboxKey returns the mailbox's Ed25519 public key.
func (k *ReplyKeys) MailboxKey() ed25519.PublicKey {
	return k.mailboxKey.Public().(ed25519.PublicKey)
}

// SignDelete signs the deletion of one reply (docs/replies.md, "Deleting
// a reply"): Ed25519 over ReplyDeleteDomain ‖ 0x00 ‖ reply id. The
// signature deletes that reply and nothing else, so whoever sees it (a
// CDN in the middle) can delete only a reply its source has read.
func (k *ReplyKeys) SignDelete(reply [ReplyIDSize]byte) []byte {
	return ed25519.Sign(k.mailboxKey, deleteMessage(reply))
}

func deleteMessage(reply [ReplyIDSize]byte) []byte {
	m := make([]byte, 0, len(ReplyDeleteDomain)+1+ReplyIDSize)
	m = append(m, ReplyDeleteDomain...)
	m = append(m, 0)
	return append(m, reply[:]...)
}

// ErrNotMailboxKey: a delete's key is not the key of the reply's mailbox.
var ErrNotMailboxKey = errors.New("not the key of the reply's mailbox")

// CheckDelete reports whether key is the mailbox key of mailbox (compared
// in constant time) and sig its signature of reply's deletion:
// ErrNotMailboxKey or ErrBadSignature otherwise.
func CheckDelete(mailbox MailboxID, key []byte, reply [ReplyIDSize]byte, sig []byte) error {
	if len(key) != MailboxKeySize || len(sig) != ReplyDeleteSigSize {
		return fmt.Errorf("reply delete: %w", ErrMalformed)
	}
	got := MailboxOf(key)
	if subtle.ConstantTimeCompare(got[:], mailbox[:]) != 1 {
		return fmt.Errorf("reply delete: %w", ErrNotMailboxKey)
	}
	if !ed25519.Verify(key, deleteMessage(reply), sig) {
		return fmt.Errorf("reply delete: %w", ErrBadSignature)
	}
	return nil
}

// ReplyAddress is what a tip carries so that editors can answer its
// source and group tips by source: the source's reply recipient and
// mailbox id.
type ReplyAddress struct {
	// Recipient is an age recipient, age1pq1… (hybrid) or age1… (X25519),
	// in age's own spelling.
	Recipient string
	Mailbox   MailboxID
}

// AgeRecipient parses the reply recipient.
func (a *ReplyAddress) AgeRecipient() (age.Recipient, error) {
	r, err := parseRecipient(a.Recipient)
	if err != nil {
		return nil, fmt.Errorf("reply address: %w: recipient: %w", ErrMalformed, err)
	}
	return r, nil
}

// check refuses a recipient age does not parse or spells otherwise.
func (a *ReplyAddress) check() error {
	r, err := a.AgeRecipient()
	if err != nil {
		return err
	}
	if s, ok := r.(fmt.Stringer); !ok || s.String() != a.Recipient {
		return fmt.Errorf("reply address: %w: recipient is not in age's spelling", ErrMalformed)
	}
	return nil
}

// Reply is what an editor sends a source.
type Reply struct {
	// Text is 1 to MaxReplyText bytes of UTF-8 with no control characters
	// but newline and tab (it reaches the source's terminal).
	Text string
}

type replyManifest struct {
	Text string `json:"text"`
}

// CheckReplyText checks a reply's text: 1 to MaxReplyText bytes of UTF-8
// without control characters (but newline and tab), format characters
// or line and paragraph separators. Errors wrap ErrMalformed.
func CheckReplyText(s string) error { return checkReplyText(s) }

func checkReplyText(s string) error {
	if s == "" || len(s) > MaxReplyText {
		return fmt.Errorf("reply: %w: text of %d bytes, want 1 to %d", ErrMalformed, len(s), MaxReplyText)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("reply: %w: text is not valid UTF-8", ErrMalformed)
	}
	if strings.ContainsFunc(s, func(r rune) bool {
		return r != '\n' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029')
	}) {
		return fmt.Errorf("reply: %w: text holds a control or format character", ErrMalformed)
	}
	return nil
}

// MarshalReply encodes a reply's plaintext, unpadded:
//
//	fieldtip/reply/v1\n
//	{"text":<text>}\n
//
// Padding, zero bytes, follows in the sealed form.
func MarshalReply(r *Reply) ([]byte, error) {
	if err := checkReplyText(r.Text); err != nil {
		return nil, err
	}
	line, err := json.Marshal(&replyManifest{Text: r.Text})
	if err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	out := make([]byte, 0, len(ReplyHeader)+2+len(line))
	out = append(out, ReplyHeader+"\n"...)
	out = append(out, line...)
	return append(out, '\n'), nil
}

// ParseReply decodes a reply's plaintext, padding included: the header
// line, the manifest in its one encoding, then zero bytes only.
func ParseReply(plain []byte) (*Reply, error) {
	rest, ok := bytes.CutPrefix(plain, []byte(ReplyHeader+"\n"))
	if !ok {
		return nil, fmt.Errorf("reply: %w: does not start with %q", ErrMalformed, ReplyHeader)
	}
	nl := bytes.IndexByte(rest[:min(len(rest), MaxReplySize)], '\n')
	if nl < 0 {
		return nil, fmt.Errorf("reply: %w: no manifest line", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(rest[:nl]))
	dec.DisallowUnknownFields()
	var m replyManifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("reply: %w: manifest: %w", ErrMalformed, err)
	}
	// One encoding, as ParseTip: re-encoding must give the same bytes.
	if canon, err := json.Marshal(&m); err != nil || !bytes.Equal(canon, rest[:nl]) {
		return nil, fmt.Errorf("reply: %w: manifest is not in canonical form", ErrMalformed)
	}
	if err := checkReplyText(m.Text); err != nil {
		return nil, err
	}
	for _, c := range rest[nl+1:] {
		if c != 0 {
			return nil, fmt.Errorf("reply: %w: padding is not all zero", ErrMalformed)
		}
	}
	return &Reply{Text: m.Text}, nil
}

// SealReply encodes, pads and encrypts a reply to one reply recipient, so
// that the whole age file is exactly Bucket(size, ReplyFrameSize) bytes:
// 4 KiB for a short reply, PADMÉ above it rounded up to whole 4 KiB.
func SealReply(r *Reply, to age.Recipient) ([]byte, error) {
	plain, err := MarshalReply(r)
	if err != nil {
		return nil, err
	}
	return sealPadded(plain, []age.Recipient{to}, ReplyFrameSize, MaxReplySize, "reply")
}

// ValidReplySize reports whether n bytes can be a sealed reply: a positive
// multiple of ReplyFrameSize, at most MaxReplySize.
func ValidReplySize(n int) bool {
	return n > 0 && n%ReplyFrameSize == 0 && n <= MaxReplySize
}

// CheckReplyCiphertext checks, with no key, that ciphertext can be a
// sealed reply: a valid size and an age file with exactly one recipient
// stanza, of type X25519 or mlkem768x25519. The server runs it before
// storing a reply.
func CheckReplyCiphertext(ciphertext []byte) error {
	if !ValidReplySize(len(ciphertext)) {
		return fmt.Errorf("%w: a reply of %d bytes, want a multiple of %d up to %d", ErrBadCiphertext, len(ciphertext), ReplyFrameSize, MaxReplySize)
	}
	if err := CheckCiphertext(ciphertext, StanzaHybrid, 1); err == nil {
		return nil
	}
	return CheckCiphertext(ciphertext, StanzaX25519, 1)
}

// ErrNotForMe: a reply does not decrypt with the identities tried. In a
// bucket, every reply to another source is one.
var ErrNotForMe = errors.New("reply is not encrypted to these identities")

// OpenReply decrypts a sealed reply with the reply identities and parses
// it. A reply to anyone else is ErrNotForMe; a reply that decrypts but
// does not parse is ErrMalformed. It reads the whole file first, so a
// truncated one yields an error, never part of a reply.
func OpenReply(ciphertext []byte, identities ...age.Identity) (*Reply, error) {
	if len(ciphertext) > MaxReplySize {
		return nil, fmt.Errorf("reply: %w: %d bytes, more than %d", ErrMalformed, len(ciphertext), MaxReplySize)
	}
	rd, err := age.Decrypt(bytes.NewReader(ciphertext), identities...)
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return nil, fmt.Errorf("reply: %w", ErrNotForMe)
	}
	if err != nil {
		return nil, fmt.Errorf("reply: decrypt: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(rd, MaxReplySize))
	if err != nil {
		return nil, fmt.Errorf("reply: decrypt: %w", err)
	}
	return ParseReply(plain)
}
