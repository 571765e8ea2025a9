package crypto

import (
	"context"
	stdsha256 "crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// PoWDomain opens the Argon2id password of every proof of work, so that no
// other use of Argon2id with the same salt can yield a proof.
const PoWDomain = "fieldtip/pow/v1"

// PoWChunkSize is how much ciphertext one proof pays for: an upload of
// length bytes carries PoWChunks(length) proofs, one per started 64 KiB
// (FIELD.md, "Spam and flooding"), so sending more costs more.
const PoWChunkSize = 64 << 10

// Limits of PoWParams, checked by Check before any work.
const (
	minPoWMemoryKiB = 8         // Argon2's own floor for one lane
	maxPoWMemoryKiB = 256 << 10 // 256 MiB
	minPoWTime      = 1
	maxPoWTime      = 16
	maxPoWBits      = 24 // about 16 million expected tries: past any phone
)

// maxPoWLength is the largest ciphertext a proof can be for: 2^40 bytes,
// as in a receipt, or 2^24 proofs.
const maxPoWLength = 1 << 40

// PoWParams is the cost of a proof of work. The server chooses it and
// signs it with each epoch's seed (PoWSeed).
type PoWParams struct {
	// MemoryKiB is Argon2id's memory in KiB, 8 to 262,144 (256 MiB);
	// default 1,024.
	MemoryKiB uint32
	// Time is Argon2id's number of passes, 1 to 16; default 1.
	Time uint32
	// Bits is how many leading bits of the Argon2id output must be zero,
	// 0 to 24; default 8, about 256 expected tries. 0 makes every nonce
	// a proof.
	Bits int
}

// DefaultPoWParams is the GlobaLeaks setting (FIELD.md): Argon2id with
// 1 MiB and one pass, about 256 expected tries, so about 0.2 s on a
// server core and 1–2 s on a cheap phone per 64 KiB.
var DefaultPoWParams = PoWParams{MemoryKiB: 1024, Time: 1, Bits: 8}

// Check reports whether p is within the limits documented on its fields.
// Nothing is hashed with parameters that fail it.
func (p PoWParams) Check() error {
	switch {
	case p.MemoryKiB < minPoWMemoryKiB || p.MemoryKiB > maxPoWMemoryKiB:
		return fmt.Errorf("proof-of-work memory %d KiB is outside [%d, %d]", p.MemoryKiB, minPoWMemoryKiB, maxPoWMemoryKiB)
	case p.Time < minPoWTime || p.Time > maxPoWTime:
		return fmt.Errorf("proof-of-work time %d is outside [%d, %d]", p.Time, minPoWTime, maxPoWTime)
	case p.Bits < 0 || p.Bits > maxPoWBits:
		return fmt.Errorf("proof-of-work bits %d is outside [0, %d]", p.Bits, maxPoWBits)
	}
	return nil
}

// PoWChunks returns how many proofs an upload of length bytes of
// ciphertext carries: one per started PoWChunkSize bytes. It returns 0 for
// a length that is not positive, for which no proof exists.
func PoWChunks(length int64) int {
	if length <= 0 {
		return 0
	}
	return int((length-1)/PoWChunkSize + 1)
}

// ErrBadPoW: an upload's proofs of work do not verify.
var ErrBadPoW = errors.New("proof of work does not verify")

// PoWInput is what one proof is bound to.
type PoWInput struct {
	// Seed is the epoch's seed (PoWSeed.Seed), the Argon2id salt.
	Seed [32]byte
	// UploadID is the upload's random id.
	UploadID [16]byte
	// Length is the whole upload's ciphertext length in bytes, 1 to 2^40.
	Length int64
	// Chunk is the index of the 64 KiB chunk this proof pays for, 0 to
	// PoWChunks(Length)-1.
	Chunk int
}

// check reports whether in is in range, before any hashing.
func (in *PoWInput) check() error {
	if in.Length < 1 || in.Length > maxPoWLength {
		return fmt.Errorf("length %d is outside [1, %d]", in.Length, int64(maxPoWLength))
	}
	if n := PoWChunks(in.Length); in.Chunk < 0 || in.Chunk >= n {
		return fmt.Errorf("chunk %d is outside [0, %d) for length %d", in.Chunk, n, in.Length)
	}
	return nil
}

// powPasswordSize is the length of the Argon2id password:
// PoWDomain ‖ 0x00 ‖ upload id ‖ length ‖ chunk ‖ nonce.
const powPasswordSize = len(PoWDomain) + 1 + 16 + 8 + 4 + 8

// powPassword returns the Argon2id password of in with a zero nonce; the
// nonce is its last 8 bytes (setNonce).
func powPassword(in *PoWInput) []byte {
	b := make([]byte, 0, powPasswordSize)
	b = append(b, PoWDomain...)
	b = append(b, 0)
	b = append(b, in.UploadID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(in.Length))
	b = binary.BigEndian.AppendUint32(b, uint32(in.Chunk))
	return binary.BigEndian.AppendUint64(b, 0)
}

func setNonce(password []byte, nonce uint64) {
	binary.BigEndian.PutUint64(password[len(password)-8:], nonce)
}

// powHash is the one Argon2id evaluation of a proof: threads 1, 32 bytes.
func powHash(p PoWParams, seed *[32]byte, password []byte) []byte {
	return argon2.IDKey(password, seed[:], p.Time, p.MemoryKiB, 1, 32)
}

// leadingZeros reports whether the first bits bits of h are zero
// (bits ≤ 24 < 32, the first four bytes).
func leadingZeros(h []byte, bits int) bool {
	if bits == 0 {
		return true
	}
	return binary.BigEndian.Uint32(h)>>(32-bits) == 0
}

// CheckPoW reports whether nonce is a proof of work for in under p. It
// does at most one Argon2id evaluation, and none if p or in is out of
// range, so it is safe on untrusted input: the cost is bounded by p.
func CheckPoW(p PoWParams, in PoWInput, nonce uint64) bool {
	if p.Check() != nil || in.check() != nil {
		return false
	}
	password := powPassword(&in)
	setNonce(password, nonce)
	return leadingZeros(powHash(p, &in.Seed, password), p.Bits)
}

// SolvePoW returns the smallest nonce that is a proof of work for in under
// p, trying 0, 1, 2, … (about 2^p.Bits tries). It stops with the
// context's error when ctx is done, checked before every try.
func SolvePoW(ctx context.Context, p PoWParams, in PoWInput) (nonce uint64, err error) {
	if err := p.Check(); err != nil {
		return 0, fmt.Errorf("proof of work: %w", err)
	}
	if err := in.check(); err != nil {
		return 0, fmt.Errorf("proof of work: %w", err)
	}
	password := powPassword(&in)
	for nonce = 0; ; nonce++ {
		if err := ctxErr(ctx); err != nil {
			return 0, fmt.Errorf("proof of work: chunk %d: %w", in.Chunk, err)
		}
		setNonce(password, nonce)
		if leadingZeros(powHash(p, &in.Seed, password), p.Bits) {
			return nonce, nil
		}
		if nonce == ^uint64(0) {
			// Unreachable with at most 24 bits: 2^64 tries fail with
			// probability (1-2^-24)^(2^64).
			return 0, fmt.Errorf("proof of work: chunk %d: no nonce found", in.Chunk)
		}
	}
}

// ctxErr returns ctx's error, with its cause when the cause says more.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

// SolvePoWs returns the proofs of work of an upload, one per chunk in
// chunk order, each the smallest nonce SolvePoW finds (so the result does
// not depend on scheduling). Chunks are solved in parallel, on up to
// GOMAXPROCS goroutines; the first error, or ctx being done, stops them all.
func SolvePoWs(ctx context.Context, p PoWParams, seed [32]byte, uploadID [16]byte, length int64) ([]uint64, error) {
	return SolvePoWsProgress(ctx, p, seed, uploadID, length, nil)
}

// SolvePoWsProgress is SolvePoWs that calls progress, if set, with the
// number of chunks solved and their total after each chunk, from the
// solving goroutines (so that a long proof of work can show how far it
// is; the calls may arrive out of order).
func SolvePoWsProgress(ctx context.Context, p PoWParams, seed [32]byte, uploadID [16]byte, length int64, progress func(done, total int)) ([]uint64, error) {
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("proof of work: %w", err)
	}
	in := PoWInput{Seed: seed, UploadID: uploadID, Length: length}
	if err := in.check(); err != nil {
		return nil, fmt.Errorf("proof of work: %w", err)
	}
	n := PoWChunks(length)
	nonces := make([]uint64, n)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, solved atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for {
				c := int(next.Add(1) - 1)
				if c >= n {
					return
				}
				in := in
				in.Chunk = c
				nonce, err := SolvePoW(ctx, p, in)
				if err != nil {
					once.Do(func() { firstErr = err })
					cancel(err)
					return
				}
				nonces[c] = nonce
				if progress != nil {
					progress(int(solved.Add(1)), n)
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return nonces, nil
}

// PrePoWDomain opens the SHA-256 input of every pre-proof, so that no
// other SHA-256 input of fieldtip's can be one.
const PrePoWDomain = "fieldtip/pre-pow/v1"

// PrePoWBits is how many leading bits of a pre-proof's SHA-256 must be
// zero: about 65,536 tries, tens of milliseconds on a phone, while a check
// is two SHA-256 blocks (and one more per 8 proofs), about a microsecond.
// Changing it changes which messages pass: it goes with a new PrePoWDomain
// and protocol version.
const PrePoWBits = 16

// prePoWInputSize is the length of a pre-proof's SHA-256 input:
// PrePoWDomain ‖ 0x00 ‖ seed ‖ upload id ‖ length ‖ SHA-256(proofs) ‖ nonce,
// 116 bytes: two SHA-256 blocks.
const prePoWInputSize = len(PrePoWDomain) + 1 + 32 + 16 + 8 + 32 + 8

// prePoWInput returns a pre-proof's SHA-256 input with a zero nonce; the
// nonce is its last 8 bytes (setNonce). The proofs enter as the SHA-256 of
// their big-endian concatenation, so the input has a fixed size whatever
// their number.
func prePoWInput(seed *[32]byte, uploadID *[16]byte, length int64, nonces []uint64) []byte {
	h := stdsha256.New()
	var nb [8]byte
	for _, n := range nonces {
		binary.BigEndian.PutUint64(nb[:], n)
		h.Write(nb[:])
	}
	b := make([]byte, 0, prePoWInputSize)
	b = append(b, PrePoWDomain...)
	b = append(b, 0)
	b = append(b, seed[:]...)
	b = append(b, uploadID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(length))
	b = h.Sum(b)
	return binary.BigEndian.AppendUint64(b, 0)
}

// prePoWPasses reports whether the SHA-256 of input starts with PrePoWBits
// zero bits.
func prePoWPasses(input []byte) bool {
	sum := stdsha256.Sum256(input)
	return leadingZeros(sum[:], PrePoWBits)
}

// SolvePrePoW returns the smallest nonce that is a pre-proof for an
// upload's proofs of work (docs/pow.md, "Pre-proof"): the cheap proof the
// server checks before it spends an Argon2id evaluation on them. It tries
// 0, 1, 2, … (about 2^PrePoWBits SHA-256 evaluations) and stops with the
// context's error when ctx is done, checked every 4,096 tries. The proofs
// need not be valid: the pre-proof binds them, whatever they are.
func SolvePrePoW(ctx context.Context, seed [32]byte, uploadID [16]byte, length int64, nonces []uint64) (uint64, error) {
	input := prePoWInput(&seed, &uploadID, length, nonces)
	// The input's first SHA-256 block never changes: hash it once and
	// start every try from that state (the two agree: TestSolveCheckPrePoW
	// checks the result with CheckPrePoW).
	first := stdsha256.New()
	first.Write(input[:stdsha256.BlockSize])
	state, err := first.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return 0, fmt.Errorf("pre-proof of work: %w", err)
	}
	h := stdsha256.New()
	rest := input[stdsha256.BlockSize:]
	var sum [stdsha256.Size]byte
	for pre := uint64(0); ; pre++ {
		if pre%4096 == 0 {
			if err := ctxErr(ctx); err != nil {
				return 0, fmt.Errorf("pre-proof of work: %w", err)
			}
		}
		setNonce(rest, pre)
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
			return 0, fmt.Errorf("pre-proof of work: %w", err)
		}
		h.Write(rest)
		if leadingZeros(h.Sum(sum[:0]), PrePoWBits) {
			return pre, nil
		}
		if pre == ^uint64(0) {
			// Unreachable: 2^64 tries at 16 bits all fail with probability
			// (1-2^-16)^(2^64).
			return 0, errors.New("pre-proof of work: no nonce found")
		}
	}
}

// CheckPrePoW reports whether pre is a pre-proof for the upload's proofs
// of work. It costs one SHA-256 of 8 bytes per proof and one of 116 bytes,
// and no Argon2id: CheckPoWs calls it before any.
func CheckPrePoW(seed [32]byte, uploadID [16]byte, length int64, nonces []uint64, pre uint64) bool {
	input := prePoWInput(&seed, &uploadID, length, nonces)
	setNonce(input, pre)
	return prePoWPasses(input)
}

// CheckPoWs checks an upload's proofs of work: exactly PoWChunks(length)
// nonces, the one at index i a proof for chunk i, and pre a pre-proof
// over them (CheckPrePoW). The count and the pre-proof are checked first,
// in microseconds, so a message that fails them costs no Argon2id (random
// nonces cost their sender a pre-proof, about 2^16 SHA-256 evaluations,
// for each Argon2id evaluation they cost the server). Then it stops at the
// first proof that fails, so it costs at most len(nonces) Argon2id
// evaluations under p: callers cap length (and so the count) before
// calling. Every refusal of the proofs wraps ErrBadPoW; parameters out of
// range are the caller's fault and do not.
func CheckPoWs(p PoWParams, seed [32]byte, uploadID [16]byte, length int64, nonces []uint64, pre uint64) error {
	if err := p.Check(); err != nil {
		return fmt.Errorf("proof of work: %w", err)
	}
	in := PoWInput{Seed: seed, UploadID: uploadID, Length: length}
	if err := in.check(); err != nil {
		return fmt.Errorf("proof of work: %w: %w", ErrBadPoW, err)
	}
	if want := PoWChunks(length); len(nonces) != want {
		return fmt.Errorf("proof of work: %w: %d proofs, want %d for length %d", ErrBadPoW, len(nonces), want, length)
	}
	if !CheckPrePoW(seed, uploadID, length, nonces, pre) {
		return fmt.Errorf("proof of work: %w: pre-proof", ErrBadPoW)
	}
	for i, nonce := range nonces {
		in.Chunk = i
		password := powPassword(&in)
		setNonce(password, nonce)
		if !leadingZeros(powHash(p, &seed, password), p.Bits) {
			return fmt.Errorf("proof of work: %w: chunk %d", ErrBadPoW, i)
		}
	}
	return nil
}
