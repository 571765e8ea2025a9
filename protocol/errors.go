package protocol

import "fmt"

// Code is a stable error code. Codes never change meaning; new ones may be
// added, and a client treats an unknown code as a malformed message.
type Code string

// Error codes. The comment says what the client should do.
const (
	// CodeMalformed: a message could not be parsed. Do not retry as is.
	CodeMalformed Code = "malformed"
	// CodeUnsupportedVersion: the server does not speak this Version.
	CodeUnsupportedVersion Code = "unsupported_version"
	// CodeUnexpected: a message arrived out of order (a frame with no open
	// upload, a commit before the last frame, a second upload while one is
	// open).
	CodeUnexpected Code = "unexpected_message"
	// CodeTooLarge: a message or an upload is over the server's limit.
	CodeTooLarge Code = "too_large"
	// CodeBadFrameSize: a data frame did not carry exactly the frame size.
	CodeBadFrameSize Code = "bad_frame_size"
	// CodeConflict: a frame's offset is not the server's offset, which the
	// error carries; continue from there.
	CodeConflict Code = "conflict"
	// CodeBadChecksum: a frame's checksum did not match; the server's
	// offset, which the error carries, is unchanged.
	CodeBadChecksum Code = "bad_checksum"
	// CodeBadHash: the commit's SHA-256 does not match the bytes received.
	CodeBadHash Code = "bad_hash"
	// CodeBadCiphertext: the bytes are not an age file encrypted to exactly
	// the editors of the bundle in force.
	CodeBadCiphertext Code = "bad_ciphertext"
	// CodeStaleBundle: the upload was encrypted to a bundle that is not in
	// force; fetch the bundle again and re-encrypt.
	CodeStaleBundle Code = "stale_bundle"
	// CodeBusy: a server limit (connections, staging space, write queue) is
	// reached; try again in a later session.
	CodeBusy Code = "busy"
	// CodeTooManyUploads: this connection has used its uploads.
	CodeTooManyUploads Code = "too_many_uploads"
	// CodeShuttingDown: the server is stopping; nothing unacknowledged was
	// kept.
	CodeShuttingDown Code = "shutting_down"
	// CodeInternal: the server failed. An upload refused with it may or
	// may not have been stored: send it again (a duplicate is cheaper than
	// a loss).
	CodeInternal Code = "internal"
	// CodeTimeout: no message arrived within the server's read timeout, or
	// the session reached its maximum length; reconnect.
	CodeTimeout Code = "timeout"
	// CodeUnauthorized: an editor request without a valid session, a
	// login the server refused, or a resume with the wrong resume secret.
	CodeUnauthorized Code = "unauthorized"
	// CodeNotFound: no such tip (editors' endpoint), or no such upload to
	// resume (never opened, or expired and deleted): start it anew.
	CodeNotFound Code = "not_found"
	// CodeBadPoW: the upload's proofs of work are missing, too few or too
	// many, or one does not verify. Compute them again.
	CodeBadPoW Code = "bad_pow"
	// CodeStalePoW: the proofs use a seed whose epoch the server no longer
	// accepts (only the current and previous ones). Compute them again with
	// the seed the server's answers carry.
	CodeStalePoW Code = "stale_pow"
	// CodeReplayed: an upload with this id was already opened: its proofs
	// of work are spent. Pick a new upload id and compute new proofs.
	CodeReplayed Code = "replayed"
	// CodeExpired: the upload was left unfinished past the server's expiry
	// and is being deleted: start it anew with a new upload id.
	CodeExpired Code = "expired"
)

var knownCodes = map[Code]bool{
	CodeMalformed: true, CodeUnsupportedVersion: true, CodeUnexpected: true,
	CodeTooLarge: true, CodeBadFrameSize: true, CodeConflict: true,
	CodeBadChecksum: true, CodeBadHash: true, CodeBadCiphertext: true,
	CodeStaleBundle: true, CodeBusy: true, CodeTooManyUploads: true,
	CodeShuttingDown: true, CodeInternal: true, CodeUnauthorized: true,
	CodeNotFound: true, CodeTimeout: true, CodeBadPoW: true,
	CodeStalePoW: true, CodeReplayed: true, CodeExpired: true,
	CodePolicyNotMet: true, CodeTrailRefused: true, CodePending: true,
}

func (c Code) known() bool         { return knownCodes[c] }
func (c Code) carriesOffset() bool { return c == CodeConflict || c == CodeBadChecksum }
func (c Code) carriesIndex() bool  { return c == CodeReplayed || c == CodeTrailRefused }
func (c Code) carriesRule() bool   { return c == CodePolicyNotMet || c == CodeTrailRefused }

// Error is a typed refusal: a stable Code, a human Message that never
// carries internal detail, for CodeConflict and CodeBadChecksum the
// server's current Offset, for CodeReplayed, when the editorial log
// holds the replayed event, its Index, and for CodePolicyNotMet and
// CodeTrailRefused the Rule refused (and for the latter the Index
// concerned, when not 0).
type Error struct {
	Code    Code
	Message string
	Offset  int64
	// Index is, for CodeReplayed from the editors' POST /event, the log
	// index of the event already logged; 0 when the server does not say
	// (an event sent twice in one batch, a replayed upload, a server older
	// than the field). Index 0 of a log is its first bundle, never an
	// event. For CodeTrailRefused it is the log index of the entry the
	// refused rule concerns, 0 when none.
	Index int64
	// Rule is, for CodePolicyNotMet and CodeTrailRefused, the rule the
	// publication does not meet (RuleClusters, RuleCommitment, …): 1 to
	// 32 bytes of lowercase ASCII letters, or "" when the server does not
	// say.
	Rule string
}

func (e *Error) Error() string {
	switch {
	case e.Code.carriesOffset():
		return fmt.Sprintf("%s (%s, server offset %d)", e.Message, e.Code, e.Offset)
	case e.Code.carriesRule() && e.Rule != "" && e.Index > 0:
		return fmt.Sprintf("%s (%s: %s, index %d)", e.Message, e.Code, e.Rule, e.Index)
	case e.Code.carriesRule() && e.Rule != "":
		return fmt.Sprintf("%s (%s: %s)", e.Message, e.Code, e.Rule)
	case e.Code.carriesIndex() && e.Index > 0:
		return fmt.Sprintf("%s (%s, index %d)", e.Message, e.Code, e.Index)
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// Is makes errors.Is(err, &Error{Code: c}) match any *Error with code c.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf returns a *Error with the given code and text.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func malformed(format string, args ...any) *Error {
	return Errorf(CodeMalformed, format, args...)
}
