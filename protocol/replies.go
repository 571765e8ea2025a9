package protocol

import (
	"encoding/base64"
	"fmt"
	"math/bits"
)

// Replies to sources (docs/protocol.md, "Replies"; docs/replies.md). A
// source fetches a bucket of replies on a connection that carries no
// upload:
//
//	client → server   {"type":"replies","version":V,"bits":0,"prefix":0}
//	server → client   {"type":"bucket","bits":2,"count":0}        (more than 8 stored: ask with 2 bits)
//	client → server   {"type":"replies","version":V,"bits":2,"prefix":1}
//	server → client   {"type":"bucket","bits":2,"count":3}
//	server → client   binary: reply id (16 bytes) ‖ sealed reply      (×3)
//	client → server   {"type":"delete","reply_id":"…","mailbox_key":"…","sig":"…"}
//	server → client   {"type":"deleted","reply_id":"…"}
//
// Editors write replies with POST /editor/replies/<mailbox id>/<reply id>,
// the sealed reply as the body.

// Message types of replies.
const (
	TypeReplies = "replies"
	TypeBucket  = "bucket"
	TypeDelete  = "delete"
	TypeDeleted = "deleted"
)

// Reply limits, shared by both ends (crypto holds the same sizes; a test
// checks they agree).
const (
	// MaxReplyBits is the most bits of its mailbox id a client reveals by
	// the bucket it asks for, whatever the server suggests: a bucket is
	// never narrower than 1/32 of all mailboxes (docs/replies.md).
	MaxReplyBits = 5
	// TargetBucketReplies is how many replies the server aims to put in
	// a bucket when it suggests a length.
	TargetBucketReplies = 8
	// MaxBucketReplies caps the replies one bucket answer carries.
	MaxBucketReplies = 64
	// ReplyFrameSize is a sealed reply's size step, MinReplySize and
	// MaxReplySize its bounds.
	ReplyFrameSize = 4096
	MaxReplySize   = 32768
	// ReplyFrameHeader is the reply id before a reply in a binary frame.
	ReplyFrameHeader = IDSize
	// MailboxIDSize, MailboxKeySize and DeleteSigSize are the sizes of a
	// mailbox id, an Ed25519 mailbox key and its signature.
	MailboxIDSize  = 32
	MailboxKeySize = 32
	DeleteSigSize  = 64
	// MaxDeletesPerConn caps the deletes of one connection: the replies
	// it was sent.
	MaxDeletesPerConn = MaxBucketReplies
)

// ReplyID is a reply's random id.
type ReplyID [IDSize]byte

// String returns the id in unpadded base64url, its only encoding.
func (id ReplyID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// ParseReplyID parses a reply id's one encoding.
func ParseReplyID(s string) (ReplyID, error) {
	var id ReplyID
	err := decodeFixed(id[:], "reply_id", s)
	return id, err
}

// MailboxID is the id replies to one source are stored under.
type MailboxID [MailboxIDSize]byte

// String returns the id in unpadded base64url, its only encoding.
func (m MailboxID) String() string { return base64.RawURLEncoding.EncodeToString(m[:]) }

// ParseMailboxID parses a mailbox id's one encoding.
func ParseMailboxID(s string) (MailboxID, error) {
	var m MailboxID
	err := decodeFixed(m[:], "mailbox", s)
	return m, err
}

// ValidReplySize reports whether n bytes can be a sealed reply.
func ValidReplySize(n int) bool { return n > 0 && n%ReplyFrameSize == 0 && n <= MaxReplySize }

// RepliesRequest asks for the bucket of mailboxes whose ids start with the
// Bits bits of Prefix (Prefix < 2^Bits; Bits ≤ MaxReplyBits).
type RepliesRequest struct {
	Version int
	Bits    int
	Prefix  int
}

// BucketPrefix returns the first bits bits of a mailbox id, the prefix of
// its bucket.
func BucketPrefix(m MailboxID, bits int) int { return int(m[0]) >> (8 - bits) }

// SuggestBits is the bucket length a server suggests when it holds
// stored replies: the smallest length at which an even spread puts at
// most TargetBucketReplies in a bucket, at most MaxReplyBits.
func SuggestBits(stored int64) int {
	if stored <= TargetBucketReplies {
		return 0
	}
	// ⌈log2(stored / TargetBucketReplies)⌉
	q := (stored + TargetBucketReplies - 1) / TargetBucketReplies
	return min(MaxReplyBits, bits.Len64(uint64(q-1)))
}

// Bucket answers a RepliesRequest: Count reply frames follow. Bits is the
// length the server suggests; when it is more than the request's, Count
// is 0 and the client asks once more with Bits.
type Bucket struct {
	Bits  int
	Count int
}

// Delete asks the server to delete a reply it sent on this connection,
// proving the mailbox: the mailbox's Ed25519 key and its signature over
// the reply id (docs/replies.md, "Deleting a reply").
type Delete struct {
	ReplyID    ReplyID
	MailboxKey [MailboxKeySize]byte
	Sig        [DeleteSigSize]byte
}

// Deleted confirms a Delete: the reply is gone from the server.
type Deleted struct {
	ReplyID ReplyID
}

// ReplyFrame is one binary message of a bucket: a reply id and the
// sealed reply.
type ReplyFrame struct {
	ID         ReplyID
	Ciphertext []byte
}

// AppendReplyFrame appends a reply frame's encoding to dst.
func AppendReplyFrame(dst []byte, f *ReplyFrame) []byte {
	dst = append(dst, f.ID[:]...)
	return append(dst, f.Ciphertext...)
}

// ParseReplyFrame parses a binary reply frame: a reply id, then a sealed
// reply of a valid size (a multiple of ReplyFrameSize, at most
// MaxReplySize). Ciphertext aliases b.
func ParseReplyFrame(b []byte) (*ReplyFrame, error) {
	if len(b) < ReplyFrameHeader || !ValidReplySize(len(b)-ReplyFrameHeader) {
		return nil, malformed("reply frame of %d bytes is not a %d-byte id and a whole number of %d-byte frames up to %d", len(b), ReplyFrameHeader, ReplyFrameSize, MaxReplySize)
	}
	f := &ReplyFrame{Ciphertext: b[ReplyFrameHeader:]}
	copy(f.ID[:], b)
	return f, nil
}

func checkBits(n, prefix int) error {
	if n < 0 || n > MaxReplyBits {
		return malformed("bits %d is not 0 to %d", n, MaxReplyBits)
	}
	if prefix < 0 || prefix >= 1<<n {
		return malformed("prefix %d is not below 2^%d", prefix, n)
	}
	return nil
}

func parseRepliesClient(w *wire) (any, error) {
	switch w.Type {
	case TypeReplies:
		if err := w.only("version", "bits", "prefix"); err != nil {
			return nil, err
		}
		if err := checkBits(*w.Bits, *w.Prefix); err != nil {
			return nil, err
		}
		return &RepliesRequest{Version: *w.Version, Bits: *w.Bits, Prefix: *w.Prefix}, nil
	case TypeDelete:
		if err := w.only("reply_id", "mailbox_key", "sig"); err != nil {
			return nil, err
		}
		m := &Delete{}
		if err := decodeFixed(m.ReplyID[:], "reply_id", *w.ReplyID); err != nil {
			return nil, err
		}
		if err := decodeFixed(m.MailboxKey[:], "mailbox_key", *w.MailboxKey); err != nil {
			return nil, err
		}
		if err := decodeFixed(m.Sig[:], "sig", *w.Sig); err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, nil
}

func parseRepliesServer(w *wire) (any, error) {
	switch w.Type {
	case TypeBucket:
		if err := w.only("bits", "count"); err != nil {
			return nil, err
		}
		if err := checkBits(*w.Bits, 0); err != nil {
			return nil, err
		}
		if *w.Count < 0 || *w.Count > MaxBucketReplies {
			return nil, malformed("count %d is not 0 to %d", *w.Count, MaxBucketReplies)
		}
		return &Bucket{Bits: *w.Bits, Count: *w.Count}, nil
	case TypeDeleted:
		if err := w.only("reply_id"); err != nil {
			return nil, err
		}
		m := &Deleted{}
		if err := decodeFixed(m.ReplyID[:], "reply_id", *w.ReplyID); err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, nil
}

func marshalReplies(msg any) (wire, bool) {
	switch m := msg.(type) {
	case *RepliesRequest:
		return wire{Type: TypeReplies, Version: ptr(m.Version), Bits: ptr(m.Bits), Prefix: ptr(m.Prefix)}, true
	case *Bucket:
		return wire{Type: TypeBucket, Bits: ptr(m.Bits), Count: ptr(m.Count)}, true
	case *Delete:
		return wire{Type: TypeDelete, ReplyID: ptr(m.ReplyID.String()),
			MailboxKey: ptr(base64.RawURLEncoding.EncodeToString(m.MailboxKey[:])),
			Sig:        ptr(base64.RawURLEncoding.EncodeToString(m.Sig[:]))}, true
	case *Deleted:
		return wire{Type: TypeDeleted, ReplyID: ptr(m.ReplyID.String())}, true
	}
	return wire{}, false
}

// ReplyPath returns the editors' path that writes a reply.
func ReplyPath(mailbox MailboxID, reply ReplyID) string {
	return fmt.Sprintf("%s/%s/%s", PathReplies, mailbox, reply)
}

// PathReplies is the editors' reply endpoint:
//
//	POST /editor/replies/<mailbox id>/<reply id>   (body: the sealed reply)
//	     → 204, or an error (Authorization: Bearer <token>)
const PathReplies = "/editor/replies"
