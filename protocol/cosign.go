package protocol

// Editors' cosignatures of the log's checkpoints (docs/log.md,
// "Cosignatures"; C2SP tlog-cosignature). Each editor's newsdesk verifies a
// new checkpoint against the last one it saw and hands the server its
// cosignature, which the server keeps and serves to anyone:
//
//	POST /cosignature  (Bearer session)  → 200 {}
//	GET  /cosigned                       → one line per cosigned size, newest first
//	GET  /cosigned/<size>                → the checkpoint of size with every cosignature
const (
	// PathCosignature takes, with an editor's session, a text/plain body:
	// the log's signed checkpoint exactly as served, with the session
	// editor's C2SP tlog-cosignature/v1 signature line added (a signed
	// note with two signature lines, the cosignature's key name
	// crypto.CosignName of the editor's label). The server checks its own
	// signature, that the size is at most the published size and the root
	// is its tree's of that size, and the cosignature with the editor's
	// cosigning key of the bundle in force, keeps the editor's latest
	// cosignature of that size, and answers 200 "{}".
	PathCosignature = "/cosignature"

	// PathCosigned is public. GET /cosigned answers text/plain, one line
	// "<size> <number of distinct cosigners>\n" per cosigned size, newest
	// (largest) first, at most 64 lines. GET /cosigned/<size> (size a
	// canonical decimal) answers the checkpoint of that size with the
	// log's signature line and then every stored cosignature line (one per
	// editor, the latest), sorted by key name; 404 not_found for a size
	// nobody cosigned.
	PathCosigned = "/cosigned"
)

// MaxCosignatures is the most lines GET /cosigned answers.
const MaxCosignatures = 64
