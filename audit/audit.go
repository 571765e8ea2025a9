// Package audit is fieldtip's editorial log, without storage: the formats
// of its entries (editorial events signed by editors, receipts-tree roots
// signed by the server), the encrypted and committed event bodies, the
// receipts tree, the replay of events into editorial state, and an offline
// verifier that needs no decryption key.
//
// It promises:
//
//   - An *Event, *ReceiptsRoot or opened body comes back only after its
//     signature (or hash and commitments) verified; nothing usable is
//     returned with an error.
//   - Every format has one encoding and a first line naming its type and
//     version (the constants below, beside crypto's), written down in
//     docs/audit.md and pinned by TestAuditDoc; a format changes only by
//     getting a new first line.
//   - A Verifier given only the pinned newsroom key accepts a log only if
//     every entry is signed by the key AUDIT.md assigns it, bundles only
//     grow in version, every event is signed by an editor of the bundle in
//     force and names it, no event id appears twice and every event's base
//     checkpoint is a prefix of the log; it names the first entry that
//     breaks a rule (TestVerifyChangedByte, TestVerifyRefuses).
//   - Two editors who apply the same opened events get byte-identical
//     State (TestReplayTwoEditors).
//   - Hashing, trees and proofs are golang.org/x/mod/sumdb/tlog; signatures
//     are golang.org/x/mod/sumdb/note; encryption is age. Proofs agree with
//     github.com/transparency-dev/merkle (TestProofsCrossCheck).
//
// It reads nothing itself: the verifier reads entries through EntryReader,
// and callers store what it returns.
package audit

import "errors"

// First lines of the log entries and documents this package defines
// (docs/audit.md). crypto.BundleHeader is the bundle entry's.
const (
	EventHeader       = "fieldtip/event/v1"
	ReceiptsHeader    = "fieldtip/receipts/v1"
	PoWSeedHeader     = "fieldtip/pow-seed/v1"
	EventBodyHeader   = "fieldtip/event-body/v1"
	ReceiptsKeyHeader = "fieldtip/receipts-key/v1"
	stateHeader       = "fieldtip/state/v1"
)

// Domain-separation strings of the commitments and of the receipts-tree
// leaves (docs/audit.md). Neither commitment domain is a prefix of the
// other, and the two leaf domains differ in their first byte.
const (
	PublicDomain  = "fieldtip/event-public/v1"
	PrivateDomain = "fieldtip/event-private/v1"
	TipLeafDomain = "tip"
	DummyDomain   = "dummy"
)

// Limits (docs/audit.md).
const (
	// MaxEntrySize caps a log entry: the tlog-tiles entry limit.
	MaxEntrySize = 65535
	// MaxEventSize caps a signed event entry.
	MaxEventSize = 1024
	// MaxReceiptsSize caps a signed receipts-root entry.
	MaxReceiptsSize = 1024
	// MaxBodySize caps an event body's padded plaintext.
	MaxBodySize = 16 << 20
	// MaxSealedBodySize caps an event body's age file: the plaintext plus
	// room for the age header (64 post-quantum stanzas are about 100 KB)
	// and the per-chunk tags.
	MaxSealedBodySize = MaxBodySize + 256<<10
	// MaxTextSize caps a note's text.
	MaxTextSize = 64 << 10
	// MaxTags caps the tags of one triage; MaxTagSize caps one tag.
	MaxTags    = 32
	MaxTagSize = 64
	// MaxPeriodDays caps a receipts period.
	MaxPeriodDays = 31
	// MaxCheckpointSize caps a signed checkpoint (C2SP tlog-checkpoint,
	// signed by the log key; ours are about 200 bytes), wherever one is
	// read: the server's pinned copy, an editor's sync, a cosignature
	// request. The schema caps a stored one to the same (storage's
	// MaxCosignedCheckpoint, migration 0005; TestCheckpointCaps).
	MaxCheckpointSize = 4096
	// MaxReceiptsTreeSize caps the leaves of a receipts tree.
	MaxReceiptsTreeSize = 1 << 20
	// DefaultReceiptsTreeSize is the receipts tree's size unless the
	// operator sets another (AUDIT.md).
	DefaultReceiptsTreeSize = 1024
	// maxTreeSize bounds tree sizes and versions written in entries.
	maxTreeSize = 1 << 53
)

// Reasons the verifier gives for refusing an entry, besides crypto's
// ErrMalformed, ErrBadSignature and ErrUnknownSigner. Callers branch with
// errors.Is.
var (
	// ErrUnknownEntry: an entry's first line names no entry type.
	ErrUnknownEntry = errors.New("not a log entry type")
	// ErrNoBundle: the log does not start with a bundle.
	ErrNoBundle = errors.New("the log does not start with a bundle")
	// ErrBundleVersion: a bundle's version is not above every earlier one's.
	ErrBundleVersion = errors.New("bundle version does not increase")
	// ErrWrongBundle: an event names a bundle version other than the one in
	// force at its index.
	ErrWrongBundle = errors.New("event names a bundle other than the one in force")
	// ErrRevokedEditor: an event is signed by an editor the bundle in force
	// revokes.
	ErrRevokedEditor = errors.New("signed by a revoked editor")
	// ErrReplayedEvent: an event id appears a second time.
	ErrReplayedEvent = errors.New("event id seen before")
	// ErrNotPrefix: an event's base checkpoint is not a prefix of the log.
	ErrNotPrefix = errors.New("base checkpoint is not a prefix of the log")
	// ErrPeriod: a receipts period does not begin after the previous one.
	ErrPeriod = errors.New("receipts period overlaps an earlier one")
	// ErrRootMismatch: a receipts tree's leaves do not hash to the signed
	// root and size.
	ErrRootMismatch = errors.New("leaves do not hash to the signed root")
)
