// Package crypto seals and signs everything fieldtip keeps secret or
// authentic: the tip envelope (a padded tip encrypted with age to every
// editor of the bundle), the newsroom's signed key bundle, the server's
// signed receipts, editors' login notes and passphrase-protected key files.
//
// It promises that a value comes back only after its signature verified
// (Open functions return nothing usable on failure), that every format has
// one encoding and a type line naming it (the constants below, so that no
// signature can be replayed as another kind), and that every primitive is
// age, golang.org/x/mod/sumdb/note or the standard library. The formats are
// written down in docs/formats.md and pinned by the vectors under
// testdata/.
package crypto

import (
	"errors"
	"regexp"
)

// First lines of signed notes and of key files. Each kind has its own, so a
// signature over one kind can never be accepted as another.
const (
	BundleHeader      = "fieldtip/bundle/v1"
	ReceiptHeader     = "fieldtip/receipt/v1"
	LoginHeader       = "fieldtip/login/v1"
	TipHeader         = "fieldtip/tip/v1"
	TipHeaderV2       = "fieldtip/tip/v2"
	EditorKeyHeader   = "fieldtip/editor-key/v1"
	EditorPubHeader   = "fieldtip/editor/v1"
	NewsroomKeyHeader = "fieldtip/newsroom-key/v1"
	LogKeyHeader      = "fieldtip/log-key/v1"
)

// DateLayout is the day-precision date used wherever fieldtip records when
// something arrived.
const DateLayout = "2006-01-02"

// Sentinel errors, for callers that branch.
var (
	// ErrUnknownSigner: a note is signed by no key the caller trusts.
	ErrUnknownSigner = errors.New("signed by an unknown key")
	// ErrBadSignature: a note's signature by a trusted key does not verify.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrMalformed: a document does not follow its format.
	ErrMalformed = errors.New("malformed")
	// ErrExpired: a bundle or login note is past its expiry.
	ErrExpired = errors.New("expired")
	// ErrIncorrectPassphrase: a key file did not open with the passphrase.
	ErrIncorrectPassphrase = errors.New("incorrect passphrase")
)

// labelPattern is what an editor label may look like: it becomes a
// signed-note key name (no spaces, no '+') and appears in file names.
var labelPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ValidLabel reports whether s can be an editor label: 1 to 32 characters
// of lowercase letters, digits, '_' and '-', starting with a letter or digit.
func ValidLabel(s string) bool { return labelPattern.MatchString(s) }

// CosignName is the signed-note key name of an editor's cosigning key.
func CosignName(label string) string { return label + ".cosign" }
