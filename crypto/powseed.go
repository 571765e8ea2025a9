package crypto

import (
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// PoWSeedHeader is the first line of a signed proof-of-work seed.
const PoWSeedHeader = "fieldtip/pow-seed/v1"

// MaxPoWSeedSize caps a signed proof-of-work seed.
const MaxPoWSeedSize = 1024

// MinEpochSeconds is the shortest epoch a seed may have: one day. There is
// one seed per epoch for everyone (FIELD.md, "Spam and flooding"); a
// client refuses shorter epochs, since a seed changing every few minutes
// could be handed to one session only and become a tracking cookie that
// links a source's next upload to this one.
const MinEpochSeconds = 86400

// maxEpochNumber bounds the epoch and epoch-seconds fields: 2^53, the
// largest integer every JSON reader keeps exact.
const maxEpochNumber = 1 << 53

// PoWSeed is the server's signed proof-of-work seed for one epoch. A
// *PoWSeed returned by OpenPoWSeed has verified; CheckCurrent then says
// whether a client should use it now.
//
// Its text, after the PoWSeedHeader line:
//
//	epoch <decimal, 0 to 2^53>
//	epoch-seconds <decimal, 86400 to 2^53>
//	seed <32 bytes, unpadded base64url>
//	argon2id <memoryKiB> <time> <bits>
type PoWSeed struct {
	// Epoch is floor(unix seconds / EpochSeconds) at the epoch's start:
	// EpochAt(t, EpochSeconds) for any t in it.
	Epoch int64
	// EpochSeconds is the epoch's length in seconds, at least
	// MinEpochSeconds (a week by default, chosen by the server).
	EpochSeconds int64
	// Seed is the Argon2id salt of every proof of the epoch.
	Seed [32]byte
	// Params is the cost of the epoch's proofs; it passes Check.
	Params PoWParams
}

// EpochAt returns the number of the epoch of length epochSeconds that t
// falls in: floor(t.Unix() / epochSeconds), rounding down for times
// before 1970 too. It panics if epochSeconds is not positive, like a
// division by zero.
func EpochAt(t time.Time, epochSeconds int64) int64 {
	if epochSeconds <= 0 {
		panic(fmt.Sprintf("crypto.EpochAt: epoch length %d seconds is not positive", epochSeconds))
	}
	u := t.Unix()
	e := u / epochSeconds
	if u%epochSeconds < 0 {
		e--
	}
	return e
}

// check reports whether s's fields are in the ranges of the format.
func (s *PoWSeed) check() error {
	if s.Epoch < 0 || s.Epoch > maxEpochNumber {
		return fmt.Errorf("epoch %d is outside [0, %d]", s.Epoch, int64(maxEpochNumber))
	}
	if s.EpochSeconds < MinEpochSeconds || s.EpochSeconds > maxEpochNumber {
		return fmt.Errorf("epoch length %d seconds is outside [%d, %d]", s.EpochSeconds, MinEpochSeconds, int64(maxEpochNumber))
	}
	return s.Params.Check()
}

// SignPoWSeed signs a proof-of-work seed with the server's log key. It
// refuses a seed whose fields are out of range.
func SignPoWSeed(s *PoWSeed, log note.Signer) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("pow seed: %w", err)
	}
	text := fmt.Sprintf("%s\nepoch %d\nepoch-seconds %d\nseed %s\nargon2id %d %d %d\n",
		PoWSeedHeader, s.Epoch, s.EpochSeconds, base64.RawURLEncoding.EncodeToString(s.Seed[:]),
		s.Params.MemoryKiB, s.Params.Time, s.Params.Bits)
	msg, err := note.Sign(&note.Note{Text: text}, log)
	if err != nil {
		return nil, fmt.Errorf("pow seed: sign: %w", err)
	}
	return msg, nil
}

// OpenPoWSeed verifies a signed proof-of-work seed against the log
// verifier key named in the bundle, then parses it strictly: exactly one
// signature, by that key, and one encoding of every field. It does not
// check the epoch against the clock (CheckCurrent does).
func OpenPoWSeed(msg []byte, logKey string) (*PoWSeed, error) {
	if len(msg) > MaxPoWSeedSize {
		return nil, fmt.Errorf("pow seed: %w: %d bytes, more than %d", ErrMalformed, len(msg), MaxPoWSeedSize)
	}
	v, err := note.NewVerifier(logKey)
	if err != nil {
		return nil, fmt.Errorf("pow seed: log key: %w", err)
	}
	n, err := OpenNote("pow seed", msg, note.VerifierList(v))
	if err != nil {
		return nil, err
	}
	return parsePoWSeed(n.Text)
}

func parsePoWSeed(text string) (*PoWSeed, error) {
	rd, err := newLineReader("pow seed", text, PoWSeedHeader)
	if err != nil {
		return nil, err
	}
	s := &PoWSeed{}
	if s.Epoch, err = rd.int("epoch", 0, maxEpochNumber); err != nil {
		return nil, err
	}
	if s.EpochSeconds, err = rd.int("epoch-seconds", MinEpochSeconds, maxEpochNumber); err != nil {
		return nil, err
	}
	b64, err := rd.value("seed")
	if err != nil {
		return nil, err
	}
	// Strict decoding still skips CR and LF: compare the re-encoding too.
	b, err := base64.RawURLEncoding.Strict().DecodeString(b64)
	if err != nil || len(b) != len(s.Seed) || base64.RawURLEncoding.EncodeToString(b) != b64 {
		return nil, fmt.Errorf("pow seed: %w: seed %q is not %d bytes of unpadded base64url", ErrMalformed, clip(b64), len(s.Seed))
	}
	copy(s.Seed[:], b)
	f, err := rd.next("argon2id", 3)
	if err != nil {
		return nil, err
	}
	memory, err := rd.parseInt("argon2id memory", f[0], minPoWMemoryKiB, maxPoWMemoryKiB)
	if err != nil {
		return nil, err
	}
	passes, err := rd.parseInt("argon2id time", f[1], minPoWTime, maxPoWTime)
	if err != nil {
		return nil, err
	}
	bits, err := rd.parseInt("argon2id bits", f[2], 0, maxPoWBits)
	if err != nil {
		return nil, err
	}
	s.Params = PoWParams{MemoryKiB: uint32(memory), Time: uint32(passes), Bits: int(bits)}
	if err := rd.end(); err != nil {
		return nil, err
	}
	// The ranges above are Check's; check again so the two cannot drift.
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("pow seed: %w: %w", ErrMalformed, err)
	}
	return s, nil
}

// ErrSeedNotCurrent: a proof-of-work seed is from neither the current nor
// the previous epoch.
var ErrSeedNotCurrent = errors.New("proof-of-work seed is not from the current or previous epoch")

// CheckCurrent returns nil if s is the seed of the epoch now falls in, or
// of the epoch before (proofs computed offline late in one epoch stay good
// into the next). Otherwise its error wraps ErrSeedNotCurrent and names
// both epochs; a seed whose epoch length is out of range wraps ErrMalformed.
func (s *PoWSeed) CheckCurrent(now time.Time) error {
	if s.EpochSeconds < MinEpochSeconds || s.EpochSeconds > maxEpochNumber {
		return fmt.Errorf("pow seed: %w: epoch length %d seconds is outside [%d, %d]", ErrMalformed, s.EpochSeconds, MinEpochSeconds, int64(maxEpochNumber))
	}
	current := EpochAt(now, s.EpochSeconds)
	if s.Epoch != current && s.Epoch != current-1 {
		return fmt.Errorf("pow seed: %w: epoch %d, current epoch %d", ErrSeedNotCurrent, s.Epoch, current)
	}
	return nil
}

// Accepts reports whether proofs of work of epoch are accepted while s is
// the server's current seed: s's epoch or the one before (FIELD.md).
func (s *PoWSeed) Accepts(epoch int64) bool { return epoch == s.Epoch || epoch == s.Epoch-1 }
