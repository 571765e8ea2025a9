package protocol

// The receipts trees and the editors' tip deletion (docs/audit.md,
// "Receipts tree"; AUDIT.md, "Corroboration model"):
//
//	GET  /receipts/<index>                          → ReceiptsPeriod (public, no auth)
//	POST /editor/tips/<tip id>/delete (TipDelete)   → TipDeleted  (Authorization: Bearer <token>)
//	POST /editor/tips/<tip id>/mark   (TipMark)     → {}  (Authorization: Bearer <token>)
//
// <index> is the log index of a fieldtip/receipts/v1 entry, a canonical
// decimal integer (400 malformed otherwise; 404 not_found for an index
// that is not a published receipts root); <tip id> is the tip's id as in
// receipts (16 bytes, unpadded base64url). A refusal is an error message
// (see Error). The tip requests are refused, in this order:
//
//	401 unauthorized   no live session
//	413 too_large      a body over MaxTipActionRequest bytes
//	400 malformed      a bad tip id, or a body that is not exactly the JSON object of its type
//	404 not_found      no such tip (deleted already, or never stored)
//	409 conflict       the event index is beyond the published log (or names a bundle the server lacks)
//	400 malformed      the entry at that index is not a fieldtip/event/v1 entry
//	403 unauthorized   the event is not signed by the session's editor
//
// A delete of a tip whose receipts period has no published root yet is
// answered 202 with TipDeleted{Pending: true}: the server deletes the
// ciphertext at its first purge after the root is logged (so that every
// tip it gave a receipt for is a leaf of its period's tree), and lists
// the tip to editors no more. Otherwise 200 TipDeleted{} once deleted.
const (
	// PathReceipts is the prefix of a receipts period's sealed key and
	// leaves, followed by the log index of its receipts entry.
	PathReceipts = "/receipts/"
	// PathTipDeleteSuffix ends PathTips + "/" + <tip id>: delete the tip's
	// ciphertext after a logged delete event. 404 not_found for an
	// unknown tip; 202 (TipDeleted.Pending) while its receipts period is
	// not rooted.
	PathTipDeleteSuffix = "/delete"
	// PathTipMarkSuffix ends PathTips + "/" + <tip id>: record (or clear)
	// the day editors rejected the tip, after a logged triage event; the
	// server's retention purge deletes tips marked long enough.
	PathTipMarkSuffix = "/mark"
)

// MaxTipActionRequest caps the JSON body of a delete or mark request.
const MaxTipActionRequest = 1 << 10

// ReceiptsPeriod is what GET /receipts/<index> serves: the period key
// sealed to the editors of the bundle in force (SHA-256 of it is the
// root's key), and the tree's leaves, sorted, 32 bytes each, concatenated:
// exactly the root's size of them. Both are standard base64 in JSON.
type ReceiptsPeriod struct {
	SealedKey []byte `json:"sealed_key"`
	Leaves    []byte `json:"leaves"`
}

// TipDelete asks the server to delete a tip's ciphertext. Event is the log
// index of the published fieldtip/event/v1 entry, signed by the session's
// editor, whose (encrypted) body is the delete event; the server checks the
// entry's type and signer, not the body it cannot read.
type TipDelete struct {
	Event int64 `json:"event"`
}

// TipDeleted answers a delete: Pending is true when the ciphertext is
// kept until its receipts period's root is logged (at most a period and a
// purge interval), false when it is deleted already.
type TipDeleted struct {
	Pending bool `json:"pending"`
}

// TipMark tells the server the outcome of a triage: Rejected is true when
// the tip's status became rejected or spam, false otherwise (which clears
// an earlier mark). Event is the log index of that triage event, checked as
// TipDelete's.
type TipMark struct {
	Event    int64 `json:"event"`
	Rejected bool  `json:"rejected"`
}

// TipActionPath returns the path of a tip action: PathTips + "/" + id +
// suffix (PathTipDeleteSuffix or PathTipMarkSuffix).
func TipActionPath(id, suffix string) string { return PathTips + "/" + id + suffix }
