package protocol

// Tips handed over to an editor a later bundle added (docs/log.md, "Tips
// handed over"; issue 10):
//
//	PUT /editor/tips/<tip id>/handover/<label>   (an age file)  → {}  (Authorization: Bearer <token>)
//	GET /editor/tips/<tip id>/handover           → the age file handed over to the editor logged in
//
// An editor who can read a tip re-encrypts its padded plaintext with age
// to the new editor alone and stores it with PUT; a handover event in the
// log names the SHA-256 of what it stored, which the new editor checks
// before opening it. The server cannot read it; it stores one per tip and
// editor (a second PUT for the same tip and editor replaces the first),
// serves it to that editor only, and deletes it with the tip. The PUT is
// refused, in this order:
//
//	401 unauthorized   no live session
//	400 malformed      a bad tip id, or a label that is not another
//	                   editor of the bundle in force (revoked editors are
//	                   not listed)
//	413 too_large      a body over MaxTipHandover bytes
//	400 malformed      a body that is not an age file with exactly one
//	                   recipient stanza of the bundle's type
//	404 not_found      no such tip (deleted, waiting for its deletion, or
//	                   never stored)
//
// The GET: 401 unauthorized without a live session, 400 malformed for a
// bad tip id, 404 not_found when nothing was handed over to the editor
// logged in for that tip (or the tip is gone); otherwise 200 and the age
// file, application/octet-stream, Cache-Control: no-store.
const (
	// PathTipHandoverSuffix ends PathTips + "/" + <tip id>: GET the tip as
	// handed over to the editor logged in; PUT, followed by "/" + <label>,
	// stores it for that editor.
	PathTipHandoverSuffix = "/handover"
)

// MaxTipHandover caps a handed-over tip: a tip's own cap (a tip
// re-encrypted to one editor is smaller than the tip).
const MaxTipHandover = 32 << 20

// TipHandoverPath returns the path of a tip handed over: for a PUT, label
// is the editor it is for; for a GET, label is "".
func TipHandoverPath(id, label string) string {
	p := PathTips + "/" + id + PathTipHandoverSuffix
	if label != "" {
		p += "/" + label
	}
	return p
}
