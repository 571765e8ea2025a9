// Package protocol defines the bytes that cross the network between a
// source's client and the fieldtip server: message types, their encoding,
// the limits both ends enforce and the typed errors a refusal carries.
//
// It promises one encoding per message: parsers are strict (unknown fields,
// trailing data, missing fields, non-canonical ids and hashes are refused
// with a *Error of code CodeMalformed) and every size is capped before
// anything is allocated. The wire format is versioned by Version; a change
// that an old peer could misread bumps it. The grammar and a worked example
// are in docs/protocol.md; example_test.go holds the same example as a test.
//
// # Shape
//
// A source opens one WebSocket (compression off) and sends JSON text
// messages for control and binary messages for data:
//
//	client → server   {"type":"bundle","version":3}
//	server → client   {"type":"bundle","bundle":"<signed bundle note>","seed":"<signed seed note>"}
//	client → server   {"type":"upload","version":3,"bundle_version":3,
//	                   "upload_id":"…","resume_hash":"…","length":16384,
//	                   "frame_size":16384,"pow_epoch":2920,"pow":"…","pre_pow":"…"}
//	client → server   binary frame: offset ‖ CRC-32C ‖ chunk   (no wait)
//	client → server   {"type":"commit","sha256":"<64 hex digits>"}   (no wait)
//	server → client   {"type":"offset","offset":0,"seed":"<signed seed note>"}
//	server → client   {"type":"ack","offset":16384}
//	server → client   {"type":"receipt","receipt":"<signed receipt note>"}
//
// A dropped upload is picked up on a new connection with
// {"type":"resume","version":3,"upload_id":"…","resume_secret":"…"}; the
// server answers with its offset and the client continues from there.
//
// Any refusal is {"type":"error","code":"…","message":"…"} (plus "offset"
// for conflict and bad_checksum), followed by a WebSocket close. (The
// editors' endpoints answer refusals with the same error message, where a
// replayed event also carries its "index".)
package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
)

// Version is the protocol version a client puts in its first message. A
// message of any other version is refused with CodeUnsupportedVersion
// before its other fields are read, so an old client learns why.
//
// Version 3 added the pre-proof of work (pre_pow) to the upload message,
// and lets a client send the commit right behind the last frame; version 2
// added proof of work to the upload, the resume message, and the signed
// proof-of-work seed in the server's first answer. An older client's
// messages are refused (UnsupportedVersion says to update the client).
const Version = 3

// Frame sizes. Every data frame of an upload carries exactly FrameSize bytes
// of ciphertext, so the wire shows only whole frames (FIELD.md: 16 KiB, 8 KiB
// on the worst links); the client pads the ciphertext to a whole number of
// frames.
const (
	FrameSize           = 16 << 10
	LowBandwidthFrameSz = 8 << 10
)

// Limits shared by both ends.
const (
	// FrameHeaderSize is the size of a binary data frame's header: an 8-byte
	// big-endian offset and a 4-byte big-endian CRC-32C of the chunk.
	FrameHeaderSize = 12
	// MaxClientMessage caps any message a client sends: the largest data
	// frame. Control messages are far smaller.
	MaxClientMessage = FrameHeaderSize + FrameSize
	// MaxBundleSize caps a signed bundle (the tlog-tiles entry limit, since
	// bundles become log entries).
	MaxBundleSize = 65535
	// MaxServerMessage caps any message a server sends: a bundle reply with
	// JSON escaping of every byte of the bundle and the seed in the worst
	// case.
	MaxServerMessage = 6*(MaxBundleSize+MaxSeedSize) + 64
	// MaxReceiptSize caps a signed receipt note.
	MaxReceiptSize = 1024
	// MaxMessageLength caps an error's human text.
	MaxMessageLength = 256
	// MaxSeedSize caps a signed proof-of-work seed note.
	MaxSeedSize = 1024
	// ProofSize is the size of one proof of work on the wire: a big-endian
	// uint64 nonce.
	ProofSize = 8
	// PoWChunkSize is how much ciphertext one proof of work covers: an
	// upload carries one proof per started PoWChunkSize bytes.
	PoWChunkSize = 64 << 10
	// MaxProofs caps the proofs an upload message carries, and so the
	// upload's length at MaxProofs·PoWChunkSize (64 MiB): the upload message
	// must fit in MaxClientMessage.
	MaxProofs = 1024
)

// Proofs returns how many proofs of work an upload of length bytes carries:
// one per started PoWChunkSize bytes.
func Proofs(length int64) int {
	if length <= 0 {
		return 0
	}
	return int((length-1)/PoWChunkSize + 1)
}

// IDSize is the size in bytes of an upload id (and of a tip id).
const IDSize = 16

// UploadID is the random id a client picks for one upload.
type UploadID [IDSize]byte

// String returns the id in unpadded base64url, its only wire encoding.
func (id UploadID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// Message types, the value of the "type" field.
const (
	TypeBundle  = "bundle"
	TypeUpload  = "upload"
	TypeResume  = "resume"
	TypeCommit  = "commit"
	TypeOffset  = "offset"
	TypeAck     = "ack"
	TypeReceipt = "receipt"
	TypeError   = "error"
)

// BundleRequest asks for the signed key bundle in force. A client sends it
// first when it needs the bundle to encrypt to.
type BundleRequest struct {
	Version int
}

// Upload opens an upload. Its data frames follow without waiting.
type Upload struct {
	Version       int
	BundleVersion int64
	UploadID      UploadID
	// ResumeHash is SHA-256 of the client's resume secret; the server keeps
	// only this hash.
	ResumeHash [32]byte
	// Length is the ciphertext length in bytes, a positive multiple of
	// FrameSize.
	Length int64
	// FrameSize is FrameSize or LowBandwidthFrameSz.
	FrameSize int
	// PoWEpoch is the epoch of the proof-of-work seed the proofs use.
	PoWEpoch int64
	// PoW holds one proof of work per started PoWChunkSize bytes of the
	// upload (Proofs(Length)); the server checks the count. On the wire it
	// is the concatenated big-endian nonces in unpadded base64url, "" for
	// none.
	PoW []uint64
	// PrePoW is the pre-proof of work over PoW (docs/pow.md), which the
	// server checks before any proof of PoW. On the wire it is the
	// big-endian nonce in unpadded base64url: 11 characters.
	PrePoW uint64
}

// Resume reopens an upload that a dropped link interrupted. The server
// answers with an Offset; the client sends frames from there.
type Resume struct {
	Version  int
	UploadID UploadID
	// ResumeSecret is the secret whose SHA-256 the upload message carried.
	ResumeSecret [32]byte
}

// Commit closes an upload with the SHA-256 of the whole ciphertext.
type Commit struct {
	SHA256 [32]byte
}

// BundleReply carries the signed bundle in force and the signed
// proof-of-work seed of the current epoch.
type BundleReply struct {
	Bundle []byte
	Seed   []byte
}

// Offset tells a client the server's offset for its upload (0 for a new
// one) and carries the signed proof-of-work seed of the current epoch, so
// every session's first answer brings the seed the next upload needs.
type Offset struct {
	Offset int64
	Seed   []byte
}

// Ack acknowledges that the server holds an upload's bytes up to Offset.
type Ack struct {
	Offset int64
}

// ReceiptReply carries the server's signed receipt for a committed tip.
type ReceiptReply struct {
	Receipt []byte
}

// DataFrame is one binary message: Chunk belongs at Offset of the upload.
type DataFrame struct {
	Offset int64
	Chunk  []byte
}

// wire is the JSON form of every control message; which fields a type
// carries is checked by the parser, not by the decoder.
type wire struct {
	Type          string  `json:"type"`
	Version       *int    `json:"version,omitempty"`
	Bundle        *string `json:"bundle,omitempty"`
	BundleVersion *int64  `json:"bundle_version,omitempty"`
	UploadID      *string `json:"upload_id,omitempty"`
	ResumeHash    *string `json:"resume_hash,omitempty"`
	Length        *int64  `json:"length,omitempty"`
	FrameSize     *int    `json:"frame_size,omitempty"`
	SHA256        *string `json:"sha256,omitempty"`
	Offset        *int64  `json:"offset,omitempty"`
	Index         *int64  `json:"index,omitempty"`
	Rule          *string `json:"rule,omitempty"`
	Receipt       *string `json:"receipt,omitempty"`
	Code          *string `json:"code,omitempty"`
	Message       *string `json:"message,omitempty"`
	PoWEpoch      *int64  `json:"pow_epoch,omitempty"`
	PoW           *string `json:"pow,omitempty"`
	PrePoW        *string `json:"pre_pow,omitempty"`
	ResumeSecret  *string `json:"resume_secret,omitempty"`
	Seed          *string `json:"seed,omitempty"`
	// Replies (replies.go).
	Bits       *int    `json:"bits,omitempty"`
	Prefix     *int    `json:"prefix,omitempty"`
	Count      *int    `json:"count,omitempty"`
	ReplyID    *string `json:"reply_id,omitempty"`
	MailboxKey *string `json:"mailbox_key,omitempty"`
	Sig        *string `json:"sig,omitempty"`
}

func ptr[T any](v T) *T { return &v }

// Marshal encodes a control message. It panics on a type that is not a
// message of this package: that is a programming error, not bad input.
func Marshal(msg any) []byte {
	var w wire
	switch m := msg.(type) {
	case *BundleRequest:
		w = wire{Type: TypeBundle, Version: ptr(m.Version)}
	case *Upload:
		w = wire{Type: TypeUpload, Version: ptr(m.Version), BundleVersion: ptr(m.BundleVersion),
			UploadID: ptr(m.UploadID.String()), ResumeHash: ptr(encodeHash(m.ResumeHash)),
			Length: ptr(m.Length), FrameSize: ptr(m.FrameSize), PoWEpoch: ptr(m.PoWEpoch), PoW: ptr(encodeProofs(m.PoW)),
			PrePoW: ptr(encodeProofs([]uint64{m.PrePoW}))}
	case *Resume:
		w = wire{Type: TypeResume, Version: ptr(m.Version), UploadID: ptr(m.UploadID.String()),
			ResumeSecret: ptr(encodeHash(m.ResumeSecret))}
	case *Commit:
		w = wire{Type: TypeCommit, SHA256: ptr(hex.EncodeToString(m.SHA256[:]))}
	case *BundleReply:
		w = wire{Type: TypeBundle, Bundle: ptr(string(m.Bundle)), Seed: ptr(string(m.Seed))}
	case *Offset:
		w = wire{Type: TypeOffset, Offset: ptr(m.Offset), Seed: ptr(string(m.Seed))}
	case *Ack:
		w = wire{Type: TypeAck, Offset: ptr(m.Offset)}
	case *ReceiptReply:
		w = wire{Type: TypeReceipt, Receipt: ptr(string(m.Receipt))}
	case *Error:
		w = wire{Type: TypeError, Code: ptr(string(m.Code)), Message: ptr(m.Message)}
		if m.Code.carriesOffset() {
			w.Offset = ptr(m.Offset)
		}
		if m.Code.carriesIndex() && m.Index > 0 {
			w.Index = ptr(m.Index)
		}
		if m.Code.carriesRule() && m.Rule != "" {
			w.Rule = ptr(m.Rule)
		}
	default:
		var ok bool
		if w, ok = marshalReplies(msg); !ok {
			panic(fmt.Sprintf("protocol: Marshal of %T", msg))
		}
	}
	b, err := json.Marshal(&w)
	if err != nil {
		panic(fmt.Sprintf("protocol: Marshal: %v", err))
	}
	return b
}

func encodeHash(h [32]byte) string { return base64.RawURLEncoding.EncodeToString(h[:]) }

func encodeProofs(p []uint64) string {
	b := make([]byte, 0, len(p)*ProofSize)
	for _, n := range p {
		b = binary.BigEndian.AppendUint64(b, n)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// prePoWLength is the length of pre_pow on the wire: one 8-byte nonce in
// unpadded base64url.
const prePoWLength = 11

func decodePrePoW(s string) (uint64, error) {
	if len(s) != prePoWLength {
		return 0, malformed("pre_pow is not one %d-byte nonce in unpadded base64url", ProofSize)
	}
	p, err := decodeProofs(s)
	if err != nil || len(p) != 1 {
		return 0, malformed("pre_pow is not one %d-byte nonce in unpadded base64url", ProofSize)
	}
	return p[0], nil
}

func decodeProofs(s string) ([]uint64, error) {
	if len(s) > base64.RawURLEncoding.EncodedLen(MaxProofs*ProofSize) {
		return nil, malformed("pow is longer than %d proofs", MaxProofs)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b)%ProofSize != 0 || base64.RawURLEncoding.EncodeToString(b) != s {
		return nil, malformed("pow is not whole %d-byte proofs in unpadded base64url", ProofSize)
	}
	p := make([]uint64, len(b)/ProofSize)
	for i := range p {
		p[i] = binary.BigEndian.Uint64(b[i*ProofSize:])
	}
	return p, nil
}

// checkVersion refuses a message of another protocol version before its
// other fields are read: an old client is told why, not that its message
// is malformed.
func (w *wire) checkVersion() error {
	if w.Version != nil && *w.Version != Version {
		return UnsupportedVersion(*w.Version)
	}
	return nil
}

// UnsupportedVersion is the refusal of a client message of protocol
// version v, which is not Version. Its text says what the person holding
// the client can do: update it when it is older (the tips waiting in its
// outbox stay there, and go with the new version), wait when the server
// is older.
func UnsupportedVersion(v int) *Error {
	if v < Version {
		return &Error{Code: CodeUnsupportedVersion, Message: fmt.Sprintf("protocol version %d is not supported; this server speaks %d: update fieldtip (the tips waiting in its outbox are kept)", v, Version)}
	}
	return &Error{Code: CodeUnsupportedVersion, Message: fmt.Sprintf("protocol version %d is not supported; this server speaks %d: it is older than this fieldtip; try again later", v, Version)}
}

// peekVersion returns the unsupported_version refusal of a client message
// that the strict decoder refused but that is a JSON object with exactly
// one "type" (bundle, upload or resume) and one "version", an integer ≥ 1
// other than Version: a later version may add members this one does not
// know, and its client must still learn why it is refused.
func peekVersion(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var typ, version json.RawMessage
	for dec.More() {
		t, err := dec.Token()
		k, ok := t.(string)
		if err != nil || !ok {
			return nil
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil
		}
		switch k {
		case "type":
			if typ != nil {
				return nil
			}
			typ = v
		case "version":
			if version != nil {
				return nil
			}
			version = v
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil
	}
	switch string(typ) {
	case `"` + TypeBundle + `"`, `"` + TypeUpload + `"`, `"` + TypeResume + `"`, `"` + TypeReplies + `"`:
	default:
		return nil
	}
	n, err := strconv.ParseInt(string(version), 10, 0)
	if err != nil || n < 1 || n == Version || strconv.FormatInt(n, 10) != string(version) {
		return nil
	}
	w := &wire{Version: ptr(int(n))}
	return w.checkVersion()
}

// ParseClientMessage parses a control message sent by a client:
// *BundleRequest, *Upload, *Resume, *Commit, *RepliesRequest or *Delete.
// A bundle, upload, resume or replies message of another version than Version is a *Error with code
// CodeUnsupportedVersion; any other fault is a *Error with code
// CodeMalformed.
func ParseClientMessage(b []byte) (any, error) {
	if len(b) > MaxClientMessage {
		return nil, malformed("control message of %d bytes, more than %d", len(b), MaxClientMessage)
	}
	w, err := decodeWire(b)
	if err != nil {
		if verr := peekVersion(b); verr != nil {
			return nil, verr
		}
		return nil, err
	}
	switch w.Type {
	case TypeBundle, TypeUpload, TypeResume, TypeReplies:
		if w.Version != nil && *w.Version < 1 {
			return nil, malformed("version %d is not positive", *w.Version)
		}
		if err := w.checkVersion(); err != nil {
			return nil, err
		}
	}
	switch w.Type {
	case TypeBundle:
		if err := w.only("version"); err != nil {
			return nil, err
		}
		return &BundleRequest{Version: *w.Version}, nil
	case TypeResume:
		if err := w.only("version", "upload_id", "resume_secret"); err != nil {
			return nil, err
		}
		m := &Resume{Version: *w.Version}
		if err := decodeFixed(m.UploadID[:], "upload_id", *w.UploadID); err != nil {
			return nil, err
		}
		if err := decodeFixed(m.ResumeSecret[:], "resume_secret", *w.ResumeSecret); err != nil {
			return nil, err
		}
		return m, nil
	case TypeUpload:
		if err := w.only("version", "bundle_version", "upload_id", "resume_hash", "length", "frame_size", "pow_epoch", "pow", "pre_pow"); err != nil {
			return nil, err
		}
		m := &Upload{Version: *w.Version, BundleVersion: *w.BundleVersion, Length: *w.Length, FrameSize: *w.FrameSize, PoWEpoch: *w.PoWEpoch}
		if m.BundleVersion < 1 {
			return nil, malformed("bundle_version %d is not positive", m.BundleVersion)
		}
		if err := decodeFixed(m.UploadID[:], "upload_id", *w.UploadID); err != nil {
			return nil, err
		}
		if err := decodeFixed(m.ResumeHash[:], "resume_hash", *w.ResumeHash); err != nil {
			return nil, err
		}
		if m.FrameSize != FrameSize && m.FrameSize != LowBandwidthFrameSz {
			return nil, malformed("frame_size %d is neither %d nor %d", m.FrameSize, FrameSize, LowBandwidthFrameSz)
		}
		if m.Length <= 0 || m.Length%int64(m.FrameSize) != 0 {
			return nil, malformed("length %d is not a positive multiple of frame_size %d", m.Length, m.FrameSize)
		}
		if m.PoWEpoch < 0 {
			return nil, malformed("pow_epoch %d is negative", m.PoWEpoch)
		}
		if m.PoW, err = decodeProofs(*w.PoW); err != nil {
			return nil, err
		}
		if m.PrePoW, err = decodePrePoW(*w.PrePoW); err != nil {
			return nil, err
		}
		return m, nil
	case TypeCommit:
		if err := w.only("sha256"); err != nil {
			return nil, err
		}
		m := &Commit{}
		if err := decodeHex(m.SHA256[:], *w.SHA256); err != nil {
			return nil, err
		}
		return m, nil
	case TypeReplies, TypeDelete:
		return parseRepliesClient(w)
	default:
		return nil, malformed("unknown client message type %q", truncate(w.Type))
	}
}

// ParseServerMessage parses a control message sent by a server:
// *BundleReply, *Offset, *Ack, *ReceiptReply, *Bucket, *Deleted or *Error.
// A well-formed error
// message is returned as a value, not as the error result; any fault is a
// *Error with code CodeMalformed.
func ParseServerMessage(b []byte) (any, error) {
	if len(b) > MaxServerMessage {
		return nil, malformed("server message of %d bytes, more than %d", len(b), MaxServerMessage)
	}
	w, err := decodeWire(b)
	if err != nil {
		return nil, err
	}
	switch w.Type {
	case TypeBundle:
		if err := w.only("bundle", "seed"); err != nil {
			return nil, err
		}
		if len(*w.Bundle) > MaxBundleSize {
			return nil, malformed("bundle of %d bytes, more than %d", len(*w.Bundle), MaxBundleSize)
		}
		if len(*w.Seed) > MaxSeedSize {
			return nil, malformed("seed of %d bytes, more than %d", len(*w.Seed), MaxSeedSize)
		}
		return &BundleReply{Bundle: []byte(*w.Bundle), Seed: []byte(*w.Seed)}, nil
	case TypeOffset:
		if err := w.only("offset", "seed"); err != nil {
			return nil, err
		}
		if *w.Offset < 0 {
			return nil, malformed("negative offset %d", *w.Offset)
		}
		if len(*w.Seed) > MaxSeedSize {
			return nil, malformed("seed of %d bytes, more than %d", len(*w.Seed), MaxSeedSize)
		}
		return &Offset{Offset: *w.Offset, Seed: []byte(*w.Seed)}, nil
	case TypeAck:
		if err := w.only("offset"); err != nil {
			return nil, err
		}
		if *w.Offset < 0 {
			return nil, malformed("negative offset %d", *w.Offset)
		}
		return &Ack{Offset: *w.Offset}, nil
	case TypeReceipt:
		if err := w.only("receipt"); err != nil {
			return nil, err
		}
		if len(*w.Receipt) > MaxReceiptSize {
			return nil, malformed("receipt of %d bytes, more than %d", len(*w.Receipt), MaxReceiptSize)
		}
		return &ReceiptReply{Receipt: []byte(*w.Receipt)}, nil
	case TypeError:
		if w.Code == nil {
			return nil, malformed("error message without code")
		}
		code := Code(*w.Code)
		fields := []string{"code", "message"}
		if code.carriesOffset() {
			fields = append(fields, "offset")
		}
		if code.carriesIndex() && w.Index != nil {
			fields = append(fields, "index")
		}
		if code.carriesRule() && w.Rule != nil {
			fields = append(fields, "rule")
		}
		if err := w.only(fields...); err != nil {
			return nil, err
		}
		if !code.known() {
			return nil, malformed("unknown error code %q", truncate(*w.Code))
		}
		if len(*w.Message) > MaxMessageLength {
			return nil, malformed("error text of %d bytes, more than %d", len(*w.Message), MaxMessageLength)
		}
		e := &Error{Code: code, Message: *w.Message}
		if w.Offset != nil {
			if *w.Offset < 0 {
				return nil, malformed("negative offset %d", *w.Offset)
			}
			e.Offset = *w.Offset
		}
		if w.Index != nil {
			if *w.Index < 1 {
				return nil, malformed("%s index %d is not an event's (≥ 1)", code, *w.Index)
			}
			e.Index = *w.Index
		}
		if w.Rule != nil {
			if !validRule(*w.Rule) {
				return nil, malformed("rule %q is not 1 to %d lowercase letters", truncate(*w.Rule), maxRuleLength)
			}
			e.Rule = *w.Rule
		}
		return e, nil
	case TypeBucket, TypeDeleted:
		return parseRepliesServer(w)
	default:
		return nil, malformed("unknown server message type %q", truncate(w.Type))
	}
}

func decodeWire(b []byte) (*wire, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wire
	if err := dec.Decode(&w); err != nil {
		return nil, malformed("not a control message: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("trailing data after the control message")
	}
	if err := checkKeys(b); err != nil {
		return nil, err
	}
	return &w, nil
}

// wireKeys are the JSON keys of wire, spelled exactly.
var wireKeys = map[string]bool{
	"type": true, "version": true, "bundle": true, "bundle_version": true,
	"upload_id": true, "resume_hash": true, "length": true, "frame_size": true,
	"sha256": true, "offset": true, "index": true, "rule": true, "receipt": true, "code": true, "message": true,
	"pow_epoch": true, "pow": true, "pre_pow": true, "resume_secret": true, "seed": true,
	"bits": true, "prefix": true, "count": true, "reply_id": true, "mailbox_key": true, "sig": true,
}

// checkKeys refuses keys that encoding/json would accept but that are not
// one of wireKeys spelled exactly, or that repeat: the decoder matches keys
// case-insensitively and keeps the last of repeated ones, which would give
// a message several spellings. b already decoded as a wire value.
func checkKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return malformed("control message is not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		k, ok := t.(string)
		if err != nil || !ok {
			return malformed("control message is not a JSON object")
		}
		if !wireKeys[k] || seen[k] {
			return malformed("field %q is unknown or repeated", truncate(k))
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return malformed("not a control message: %v", err)
		}
		if string(v) == "null" {
			// The decoder leaves a null member unset, as if absent.
			return malformed("field %q is null", k)
		}
	}
	return nil
}

// only checks that exactly the named fields (besides "type") are present.
func (w *wire) only(names ...string) error {
	present := map[string]bool{
		"version": w.Version != nil, "bundle": w.Bundle != nil,
		"bundle_version": w.BundleVersion != nil, "upload_id": w.UploadID != nil,
		"resume_hash": w.ResumeHash != nil, "length": w.Length != nil,
		"frame_size": w.FrameSize != nil, "sha256": w.SHA256 != nil,
		"offset": w.Offset != nil, "index": w.Index != nil, "rule": w.Rule != nil, "receipt": w.Receipt != nil,
		"code": w.Code != nil, "message": w.Message != nil,
		"pow_epoch": w.PoWEpoch != nil, "pow": w.PoW != nil, "pre_pow": w.PrePoW != nil,
		"resume_secret": w.ResumeSecret != nil, "seed": w.Seed != nil,
		"bits": w.Bits != nil, "prefix": w.Prefix != nil, "count": w.Count != nil,
		"reply_id": w.ReplyID != nil, "mailbox_key": w.MailboxKey != nil, "sig": w.Sig != nil,
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
		if !present[n] {
			return malformed("%s message without %q", w.Type, n)
		}
	}
	for n, ok := range present {
		if ok && !want[n] {
			return malformed("%s message with unexpected field %q", w.Type, n)
		}
	}
	return nil
}

func decodeFixed(dst []byte, field, s string) error {
	// Strict decoding still skips CR and LF: compare the re-encoding too.
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != len(dst) || base64.RawURLEncoding.EncodeToString(b) != s {
		return malformed("%s is not %d bytes of unpadded base64url", field, len(dst))
	}
	copy(dst, b)
	return nil
}

func decodeHex(dst []byte, s string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) || hex.EncodeToString(b) != s {
		return malformed("sha256 is not %d lowercase hex digits", 2*len(dst))
	}
	copy(dst, b)
	return nil
}

// crcTable is CRC-32C (Castagnoli): the frame checksum catches corruption
// between the client's buffer and the server's; the SHA-256 in the commit
// covers the whole ciphertext.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// AppendDataFrame appends the binary encoding of a data frame to dst.
func AppendDataFrame(dst []byte, offset int64, chunk []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(chunk, crcTable))
	return append(dst, chunk...)
}

// ParseDataFrame parses a binary data frame. It refuses a frame whose
// chunk is not exactly frameSize bytes (CodeBadFrameSize) or whose checksum
// does not match (CodeBadChecksum, with the frame's offset). Chunk aliases b.
func ParseDataFrame(b []byte, frameSize int) (*DataFrame, error) {
	if len(b) < FrameHeaderSize {
		return nil, malformed("data frame of %d bytes, shorter than its %d-byte header", len(b), FrameHeaderSize)
	}
	off := binary.BigEndian.Uint64(b)
	if off > 1<<62 {
		return nil, malformed("data frame offset %d out of range", off)
	}
	f := &DataFrame{Offset: int64(off), Chunk: b[FrameHeaderSize:]}
	if len(f.Chunk) != frameSize {
		return nil, &Error{Code: CodeBadFrameSize, Message: fmt.Sprintf("data frame carries %d bytes, want exactly %d", len(f.Chunk), frameSize)}
	}
	if crc32.Checksum(f.Chunk, crcTable) != binary.BigEndian.Uint32(b[8:]) {
		return nil, &Error{Code: CodeBadChecksum, Message: "data frame checksum does not match", Offset: f.Offset}
	}
	return f, nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// IsError reports whether err is a *Error with the given code.
func IsError(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
