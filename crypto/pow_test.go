package crypto

import (
	"bytes"
	"context"
	stdsha256 "crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/argon2"
)

// testPoWParams keeps Argon2id cheap in tests (about 30 µs a try).
var testPoWParams = PoWParams{MemoryKiB: 8, Time: 1, Bits: 4}

// The outcome of a proof-of-work vector that does not verify. (To move
// into expectErrors in vectors_test.go when the pow formats join the
// formats list there.)
func init() { expectErrors["bad_pow"] = ErrBadPoW }

// specPoWHash computes the Argon2id output of a proof from the words of
// docs/pow.md, apart from pow.go's helpers.
func specPoWHash(p PoWParams, in PoWInput, nonce uint64) []byte {
	var pw bytes.Buffer
	pw.WriteString("fieldtip/pow/v1")
	pw.WriteByte(0)
	pw.Write(in.UploadID[:])
	binary.Write(&pw, binary.BigEndian, uint64(in.Length))
	binary.Write(&pw, binary.BigEndian, uint32(in.Chunk))
	binary.Write(&pw, binary.BigEndian, nonce)
	return argon2.IDKey(pw.Bytes(), in.Seed[:], p.Time, p.MemoryKiB, 1, 32)
}

// specPrePoWHash computes the SHA-256 of a pre-proof from the words of
// docs/pow.md, apart from pow.go's helpers.
func specPrePoWHash(seed [32]byte, id [16]byte, length int64, nonces []uint64, pre uint64) []byte {
	var proofs bytes.Buffer
	for _, n := range nonces {
		binary.Write(&proofs, binary.BigEndian, n)
	}
	var in bytes.Buffer
	in.WriteString("fieldtip/pre-pow/v1")
	in.WriteByte(0)
	in.Write(seed[:])
	in.Write(id[:])
	binary.Write(&in, binary.BigEndian, uint64(length))
	ph := stdsha256.Sum256(proofs.Bytes())
	in.Write(ph[:])
	binary.Write(&in, binary.BigEndian, pre)
	if in.Len() != 116 {
		panic("pre-proof input is not 116 bytes")
	}
	h := stdsha256.Sum256(in.Bytes())
	return h[:]
}

// leadingZeroBits counts the leading zero bits of h, bit by bit.
func leadingZeroBits(h []byte) int {
	for i := range len(h) * 8 {
		if h[i/8]>>(7-i%8)&1 != 0 {
			return i
		}
	}
	return len(h) * 8
}

// testPoWInput returns a distinct valid input for each i.
func testPoWInput(i int) PoWInput {
	in := PoWInput{Length: int64(2*PoWChunkSize + 100*i + 1), Chunk: i % 3}
	copy(in.Seed[:], fmt.Sprintf("test seed %d", i))
	copy(in.UploadID[:], fmt.Sprintf("upload %d", i))
	return in
}

func TestPoWParamsCheck(t *testing.T) {
	for _, tt := range []struct {
		p  PoWParams
		ok bool
	}{
		{DefaultPoWParams, true},
		{PoWParams{MemoryKiB: 8, Time: 1, Bits: 0}, true},
		{PoWParams{MemoryKiB: 262144, Time: 16, Bits: 24}, true},
		{PoWParams{MemoryKiB: 7, Time: 1, Bits: 8}, false},
		{PoWParams{MemoryKiB: 0, Time: 1, Bits: 8}, false},
		{PoWParams{MemoryKiB: 262145, Time: 1, Bits: 8}, false},
		{PoWParams{MemoryKiB: 1024, Time: 0, Bits: 8}, false},
		{PoWParams{MemoryKiB: 1024, Time: 17, Bits: 8}, false},
		{PoWParams{MemoryKiB: 1024, Time: 1, Bits: -1}, false},
		{PoWParams{MemoryKiB: 1024, Time: 1, Bits: 25}, false},
		{PoWParams{}, false},
	} {
		if err := tt.p.Check(); (err == nil) != tt.ok {
			t.Errorf("%+v.Check() = %v, want ok %v", tt.p, err, tt.ok)
		}
	}
}

func TestPoWChunks(t *testing.T) {
	for _, tt := range []struct {
		length int64
		want   int
	}{
		{-1, 0},
		{0, 0},
		{1, 1},
		{16384, 1},
		{65535, 1},
		{65536, 1},
		{65537, 2},
		{131072, 2},
		{131073, 3},
		{153600, 3},
		{1 << 40, 1 << 24},
	} {
		if got := PoWChunks(tt.length); got != tt.want {
			t.Errorf("PoWChunks(%d) = %d, want %d", tt.length, got, tt.want)
		}
	}
}

// CheckPoW follows the written construction: for many nonces it passes
// exactly when the spec's Argon2id output has Bits leading zero bits.
func TestCheckPoWMatchesSpec(t *testing.T) {
	passes := 0
	for _, bits := range []int{0, 1, 4, 8} {
		p := testPoWParams
		p.Bits = bits
		for i := range 4 {
			in := testPoWInput(i)
			for nonce := range uint64(64) {
				want := leadingZeroBits(specPoWHash(p, in, nonce)) >= bits
				if got := CheckPoW(p, in, nonce); got != want {
					t.Fatalf("CheckPoW(%+v, %+v, %d) = %v, want %v", p, in, nonce, got, want)
				}
				if want {
					passes++
				}
			}
		}
	}
	// 256 + about 128 + 16 + 1: the comparison saw both answers.
	if passes <= 256 || passes == 4*4*64 {
		t.Errorf("%d of %d nonces passed: the test checked only one answer", passes, 4*4*64)
	}
}

// A solved nonce verifies and is the smallest that does; changing any
// input it is bound to makes it fail, about 255 times in 256 with 8 bits.
func TestSolveCheckPoW(t *testing.T) {
	p := testPoWParams
	p.Bits = 8
	const bases = 16
	stillPass := map[string]int{}
	for i := range bases {
		in := testPoWInput(i)
		nonce, err := SolvePoW(t.Context(), p, in)
		if err != nil {
			t.Fatalf("SolvePoW(%+v) error = %v", in, err)
		}
		if !CheckPoW(p, in, nonce) {
			t.Fatalf("CheckPoW(SolvePoW(%+v) = %d) = false", in, nonce)
		}
		if got := leadingZeroBits(specPoWHash(p, in, nonce)); got < 8 {
			t.Fatalf("SolvePoW(%+v) = %d, whose hash has %d leading zero bits", in, nonce, got)
		}
		for n := range nonce {
			if CheckPoW(p, in, n) {
				t.Fatalf("SolvePoW(%+v) = %d, but %d passes too", in, nonce, n)
			}
		}
		mutations := map[string]func(*PoWInput, *uint64){
			"seed":      func(in *PoWInput, _ *uint64) { in.Seed[31] ^= 1 },
			"upload id": func(in *PoWInput, _ *uint64) { in.UploadID[0] ^= 0x80 },
			"length":    func(in *PoWInput, _ *uint64) { in.Length++ },
			"chunk":     func(in *PoWInput, _ *uint64) { in.Chunk = (in.Chunk + 1) % 3 },
			"nonce":     func(_ *PoWInput, n *uint64) { *n ^= 1 << 32 },
			"params":    func(_ *PoWInput, _ *uint64) {},
		}
		for name, mutate := range mutations {
			m, n := in, nonce
			mutate(&m, &n)
			q := p
			if name == "params" {
				// Argon2 rounds memory down to a multiple of 4 KiB
				// per lane: 9 KiB is 8 KiB, 12 KiB is not.
				q.MemoryKiB += 4
			}
			if CheckPoW(q, m, n) {
				stillPass[name]++
			}
		}
	}
	for _, name := range []string{"seed", "upload id", "length", "chunk", "nonce", "params"} {
		// Expected 16/256; all 16 if the input were not bound.
		if stillPass[name] > 2 {
			t.Errorf("changing the %s left %d of %d proofs passing", name, stillPass[name], bases)
		}
	}
}

// CheckPoW refuses input out of range without hashing: Bits 0 would make
// any nonce pass.
func TestCheckPoWOutOfRange(t *testing.T) {
	p := PoWParams{MemoryKiB: 8, Time: 1, Bits: 0}
	in := PoWInput{Length: 3 * PoWChunkSize, Chunk: 2}
	if !CheckPoW(p, in, 0) {
		t.Fatalf("CheckPoW(%+v, %+v, 0) = false, want true with 0 bits", p, in)
	}
	for _, tt := range []struct {
		p  PoWParams
		in PoWInput
	}{
		{PoWParams{MemoryKiB: 7, Time: 1}, in},
		{PoWParams{MemoryKiB: 8, Time: 0}, in},
		{PoWParams{MemoryKiB: 8, Time: 1, Bits: -1}, in},
		{PoWParams{MemoryKiB: 8, Time: 1, Bits: 25}, in},
		{p, PoWInput{Length: 0}},
		{p, PoWInput{Length: -1}},
		{p, PoWInput{Length: 1<<40 + 1}},
		{p, PoWInput{Length: 3 * PoWChunkSize, Chunk: 3}},
		{p, PoWInput{Length: 3*PoWChunkSize + 1, Chunk: 4}},
		{p, PoWInput{Length: 3 * PoWChunkSize, Chunk: -1}},
		{p, PoWInput{Length: 1, Chunk: math.MaxInt}},
	} {
		if CheckPoW(tt.p, tt.in, 0) {
			t.Errorf("CheckPoW(%+v, %+v, 0) = true, want false", tt.p, tt.in)
		}
		if n, err := SolvePoW(t.Context(), tt.p, tt.in); err == nil {
			t.Errorf("SolvePoW(%+v, %+v) = %d, want an error", tt.p, tt.in, n)
		}
	}
	if !CheckPoW(p, PoWInput{Length: 1 << 40, Chunk: 1<<24 - 1}, 0) {
		t.Errorf("CheckPoW at the largest length and chunk = false, want true")
	}
}

// allocated returns how many bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// CheckPoW costs one Argon2id evaluation, which allocates its memory
// (MemoryKiB), and none for input out of range.
func TestCheckPoWCost(t *testing.T) {
	p := PoWParams{MemoryKiB: 4096, Time: 1, Bits: 8}
	const mem = 4096 << 10
	in := testPoWInput(0)
	if got := allocated(func() { CheckPoW(p, in, 1) }); got < mem || got >= 2*mem {
		t.Errorf("CheckPoW with %d KiB allocated %d bytes, want one evaluation's %d", p.MemoryKiB, got, mem)
	}
	in.Chunk = 3
	if got := allocated(func() { CheckPoW(p, in, 1) }); got >= mem/4 {
		t.Errorf("CheckPoW of chunk 3 of 3 allocated %d bytes, want no evaluation", got)
	}
	nonces := make([]uint64, 2)
	if got := allocated(func() { CheckPoWs(p, in.Seed, in.UploadID, in.Length, nonces, 0) }); got >= mem/4 {
		t.Errorf("CheckPoWs with 2 of 3 proofs allocated %d bytes, want no evaluation", got)
	}
	// Three proofs with a pre-proof that fails: no Argon2id either.
	nonces = make([]uint64, 3)
	pre := uint64(0)
	for CheckPrePoW(in.Seed, in.UploadID, in.Length, nonces, pre) {
		pre++
	}
	if got := allocated(func() { CheckPoWs(p, in.Seed, in.UploadID, in.Length, nonces, pre) }); got >= mem/4 {
		t.Errorf("CheckPoWs with a failing pre-proof allocated %d bytes, want no evaluation", got)
	}
}

// CheckPrePoW follows the written construction, for many nonces.
func TestCheckPrePoWMatchesSpec(t *testing.T) {
	in := testPoWInput(3)
	for n := range 3 {
		nonces := make([]uint64, n)
		for i := range nonces {
			nonces[i] = uint64(i*7919 + n)
		}
		passed := 0
		for pre := range uint64(1 << 17) {
			want := leadingZeroBits(specPrePoWHash(in.Seed, in.UploadID, in.Length, nonces, pre)) >= PrePoWBits
			if got := CheckPrePoW(in.Seed, in.UploadID, in.Length, nonces, pre); got != want {
				t.Fatalf("CheckPrePoW(%d nonces, %d) = %v, want %v", n, pre, got, want)
			}
			if want {
				passed++
			}
		}
		// About two in 2^17 tries pass (the comparison with the spec above
		// is the test; the count is for whoever reads the log).
		t.Logf("%d nonces: %d pre-proofs in 2^17 tries", n, passed)
	}
}

func TestSolveCheckPrePoW(t *testing.T) {
	in := testPoWInput(5)
	nonces := []uint64{17, 4, 99}
	pre, err := SolvePrePoW(t.Context(), in.Seed, in.UploadID, in.Length, nonces)
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPrePoW(in.Seed, in.UploadID, in.Length, nonces, pre) {
		t.Fatalf("CheckPrePoW(SolvePrePoW() = %d) = false", pre)
	}
	if got := leadingZeroBits(specPrePoWHash(in.Seed, in.UploadID, in.Length, nonces, pre)); got < PrePoWBits {
		t.Fatalf("SolvePrePoW() = %d, whose hash has %d leading zero bits", pre, got)
	}
	for n := range pre {
		if CheckPrePoW(in.Seed, in.UploadID, in.Length, nonces, n) {
			t.Fatalf("SolvePrePoW() = %d, but %d passes too", pre, n)
		}
	}
	// The pre-proof binds every input: change any and it fails (each
	// passes by chance with probability 2^-16).
	mutations := map[string]func(seed *[32]byte, id *[16]byte, length *int64, nonces *[]uint64){
		"seed":        func(s *[32]byte, _ *[16]byte, _ *int64, _ *[]uint64) { s[31] ^= 1 },
		"upload id":   func(_ *[32]byte, id *[16]byte, _ *int64, _ *[]uint64) { id[15] ^= 1 },
		"length":      func(_ *[32]byte, _ *[16]byte, l *int64, _ *[]uint64) { *l++ },
		"a proof":     func(_ *[32]byte, _ *[16]byte, _ *int64, n *[]uint64) { (*n)[1] ^= 1 },
		"proof order": func(_ *[32]byte, _ *[16]byte, _ *int64, n *[]uint64) { (*n)[0], (*n)[1] = (*n)[1], (*n)[0] },
		"one more":    func(_ *[32]byte, _ *[16]byte, _ *int64, n *[]uint64) { *n = append(*n, 0) },
		"one fewer":   func(_ *[32]byte, _ *[16]byte, _ *int64, n *[]uint64) { *n = (*n)[:2] },
	}
	for name, mutate := range mutations {
		seed, id, length, ns := in.Seed, in.UploadID, in.Length, slices.Clone(nonces)
		mutate(&seed, &id, &length, &ns)
		if CheckPrePoW(seed, id, length, ns, pre) {
			t.Errorf("pre-proof still passes with another %s", name)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if n, err := SolvePrePoW(ctx, in.Seed, in.UploadID, in.Length, nonces); !errors.Is(err, context.Canceled) {
		t.Errorf("SolvePrePoW(cancelled) = %d, %v, want an error wrapping %q", n, err, context.Canceled)
	}
}

func TestSolveCheckPoWs(t *testing.T) {
	p := testPoWParams
	in := testPoWInput(1)
	length := int64(4*PoWChunkSize + 1)
	nonces, err := SolvePoWs(t.Context(), p, in.Seed, in.UploadID, length)
	if err != nil {
		t.Fatalf("SolvePoWs error = %v", err)
	}
	if len(nonces) != 5 {
		t.Fatalf("SolvePoWs for length %d gave %d nonces, want 5", length, len(nonces))
	}
	for c, nonce := range nonces {
		one := PoWInput{Seed: in.Seed, UploadID: in.UploadID, Length: length, Chunk: c}
		if want, err := SolvePoW(t.Context(), p, one); err != nil || nonce != want {
			t.Errorf("SolvePoWs chunk %d = %d, SolvePoW = %d, %v", c, nonce, want, err)
		}
	}
	pre := solvePre(t, in.Seed, in.UploadID, length, nonces)
	if err := CheckPoWs(p, in.Seed, in.UploadID, length, nonces, pre); err != nil {
		t.Fatalf("CheckPoWs(SolvePoWs()) = %v", err)
	}
	// A pre-proof of other proofs, or one nonce below the smallest, fails
	// first, and says so.
	preBelow := pre - 1
	if pre == 0 {
		preBelow = 1 << 40
	}
	for _, badPre := range []uint64{preBelow, solvePre(t, in.Seed, in.UploadID, length, append(slices.Clone(nonces[:4]), nonces[4]+1))} {
		err := CheckPoWs(p, in.Seed, in.UploadID, length, nonces, badPre)
		if !errors.Is(err, ErrBadPoW) || !strings.HasSuffix(err.Error(), "pre-proof") {
			t.Errorf("CheckPoWs with pre-proof %d = %v, want an error wrapping %q naming the pre-proof", badPre, err, ErrBadPoW)
		}
	}

	for _, bad := range [][]uint64{nil, nonces[:4], append(slices.Clone(nonces), nonces[4])} {
		err := CheckPoWs(p, in.Seed, in.UploadID, length, bad, solvePre(t, in.Seed, in.UploadID, length, bad))
		if !errors.Is(err, ErrBadPoW) {
			t.Errorf("CheckPoWs with %d of 5 proofs = %v, want an error wrapping %q", len(bad), err, ErrBadPoW)
		}
		// Both counts are in the message, for whoever reads it.
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%d proofs, want 5", len(bad))) {
			t.Errorf("CheckPoWs with %d of 5 proofs: error %q does not name both counts", len(bad), err)
		}
	}

	// The first failing chunk is named: chunk 2 gets a nonce below its
	// smallest proof (nonce 0 if it is 0: then flip a high bit).
	bad := slices.Clone(nonces)
	if bad[2] > 0 {
		bad[2]--
	} else {
		bad[2] = 1 << 40
	}
	bad[4] ^= 1 << 50
	err = CheckPoWs(p, in.Seed, in.UploadID, length, bad, solvePre(t, in.Seed, in.UploadID, length, bad))
	if !errors.Is(err, ErrBadPoW) || !strings.HasSuffix(err.Error(), "chunk 2") {
		t.Errorf("CheckPoWs with chunk 2 broken = %v, want an error wrapping %q naming chunk 2", err, ErrBadPoW)
	}
	// Proofs are bound to their chunk: the same five nonces in reverse
	// fail somewhere (the chance all pass is 2^-16).
	rev := slices.Clone(nonces)
	slices.Reverse(rev)
	if !slices.Equal(rev, nonces) {
		if err := CheckPoWs(p, in.Seed, in.UploadID, length, rev, solvePre(t, in.Seed, in.UploadID, length, rev)); !errors.Is(err, ErrBadPoW) {
			t.Errorf("CheckPoWs with the proofs reversed = %v, want an error wrapping %q", err, ErrBadPoW)
		}
	}
	if err := CheckPoWs(p, in.Seed, in.UploadID, 0, nil, 0); !errors.Is(err, ErrBadPoW) {
		t.Errorf("CheckPoWs for length 0 = %v, want an error wrapping %q", err, ErrBadPoW)
	}
	if err := CheckPoWs(PoWParams{}, in.Seed, in.UploadID, length, nonces, pre); err == nil || errors.Is(err, ErrBadPoW) {
		t.Errorf("CheckPoWs with zero params = %v, want an error not wrapping %q", err, ErrBadPoW)
	}
	if got, err := SolvePoWs(t.Context(), p, in.Seed, in.UploadID, 0); err == nil {
		t.Errorf("SolvePoWs for length 0 = %v, want an error", got)
	}
	if got, err := SolvePoWs(t.Context(), PoWParams{}, in.Seed, in.UploadID, 1); err == nil {
		t.Errorf("SolvePoWs with zero params = %v, want an error", got)
	}
}

// solvePre returns the pre-proof of nonces.
func solvePre(tb testing.TB, seed [32]byte, id [16]byte, length int64, nonces []uint64) uint64 {
	tb.Helper()
	pre, err := SolvePrePoW(context.Background(), seed, id, length, nonces)
	if err != nil {
		tb.Fatal(err)
	}
	return pre
}

// countingCtx is a context that is done from its limit-th Err call on, so
// a test can stop SolvePoW mid-search: with 24 bits it returns only if it
// keeps checking the context.
type countingCtx struct {
	context.Context
	mu    sync.Mutex
	calls int
	limit int
}

func (c *countingCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls < c.limit {
		c.calls++
	}
	if c.calls == c.limit {
		return context.Canceled
	}
	return nil
}

func TestSolvePoWCancel(t *testing.T) {
	// 24 bits: about 16 million tries, so only the context stops it.
	p := PoWParams{MemoryKiB: 8, Time: 1, Bits: 24}
	in := testPoWInput(0)
	ctx := &countingCtx{Context: context.Background(), limit: 50}
	n, err := SolvePoW(ctx, p, in)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("SolvePoW(cancelled after 49 tries) = %d, %v, want an error wrapping %q", n, err, context.Canceled)
	}

	cause := errors.New("radio window closing")
	cctx, cancel := context.WithCancelCause(t.Context())
	cancel(cause)
	if n, err := SolvePoW(cctx, p, in); !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Errorf("SolvePoW(cancelled with a cause) = %d, %v, want an error wrapping %q and the cause", n, err, context.Canceled)
	}

	// SolvePoWs, cancelled while its goroutines work (or before they
	// start), returns the context's error and no nonces.
	ctx2, cancel2 := context.WithCancel(t.Context())
	done := make(chan struct{})
	var got []uint64
	go func() {
		defer close(done)
		got, err = SolvePoWs(ctx2, p, in.Seed, in.UploadID, 5*PoWChunkSize)
	}()
	cancel2()
	<-done
	if got != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("SolvePoWs(cancelled) = %v, %v, want an error wrapping %q", got, err, context.Canceled)
	}
}

// The real defaults: about 256 tries of 1 MiB Argon2id.
func TestSolvePoWDefaultParams(t *testing.T) {
	in := testPoWInput(7)
	nonce, err := SolvePoW(t.Context(), DefaultPoWParams, in)
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPoW(DefaultPoWParams, in, nonce) {
		t.Fatalf("CheckPoW(default, SolvePoW = %d) = false", nonce)
	}
	if got := leadingZeroBits(specPoWHash(DefaultPoWParams, in, nonce)); got < 8 {
		t.Errorf("SolvePoW(default) = %d, whose hash has %d leading zero bits", nonce, got)
	}
}

// Proof-of-work vectors.

// testPoWVectorSeed is printable, so the reference argon2 command line
// (which takes the salt as an argument) can check the vectors: see
// docs/pow.md.
var testPoWVectorSeed = [32]byte([]byte("fieldtip test proof-of-work seed"))

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// powVectorHeaders writes the inputs of a proof-of-work vector; hashes
// are the Argon2id outputs of the nonces and the SHA-256 of the
// pre-proof, for cross-checking.
func powVectorHeaders(p PoWParams, seed [32]byte, id [16]byte, length int64, nonces []uint64, pre uint64, hashes bool) []vheader {
	var ns []string
	for _, n := range nonces {
		ns = append(ns, strconv.FormatUint(n, 10))
	}
	hs := []vheader{
		{"argon2id", fmt.Sprintf("%d %d %d", p.MemoryKiB, p.Time, p.Bits)},
		{"seed", b64url(seed[:])},
		{"upload-id", b64url(id[:])},
		{"length", strconv.FormatInt(length, 10)},
	}
	if len(ns) > 0 {
		hs = append(hs, vheader{"nonces", strings.Join(ns, " ")})
	}
	hs = append(hs, vheader{"pre", strconv.FormatUint(pre, 10)})
	if hashes {
		hs = append(hs, vheader{"pre-hash", hex.EncodeToString(specPrePoWHash(seed, id, length, nonces, pre))})
		for c, n := range nonces {
			in := PoWInput{Seed: seed, UploadID: id, Length: length, Chunk: c}
			hs = append(hs, vheader{"hash", hex.EncodeToString(specPoWHash(p, in, n))})
		}
	}
	return hs
}

// parsePoWVector reads the inputs written by powVectorHeaders.
func parsePoWVector(h map[string][]string) (p PoWParams, seed [32]byte, id [16]byte, length int64, nonces []uint64, pre uint64, err error) {
	if _, err = fmt.Sscanf(first(h, "argon2id"), "%d %d %d", &p.MemoryKiB, &p.Time, &p.Bits); err != nil {
		return p, seed, id, 0, nil, 0, fmt.Errorf("vector: argon2id: %v", err)
	}
	if pre, err = strconv.ParseUint(first(h, "pre"), 10, 64); err != nil {
		return p, seed, id, 0, nil, 0, fmt.Errorf("vector: pre: %v", err)
	}
	s, err1 := base64.RawURLEncoding.DecodeString(first(h, "seed"))
	u, err2 := base64.RawURLEncoding.DecodeString(first(h, "upload-id"))
	length, err3 := strconv.ParseInt(first(h, "length"), 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || len(s) != 32 || len(u) != 16 {
		return p, seed, id, 0, nil, 0, fmt.Errorf("vector: seed, upload-id or length: %v", err)
	}
	copy(seed[:], s)
	copy(id[:], u)
	for _, f := range strings.Fields(first(h, "nonces")) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return p, seed, id, 0, nil, 0, fmt.Errorf("vector: nonces: %v", err)
		}
		nonces = append(nonces, n)
	}
	return p, seed, id, length, nonces, pre, nil
}

func runPoWVector(h map[string][]string, body []byte) error {
	p, seed, id, length, nonces, pre, err := parsePoWVector(h)
	if err != nil {
		return err
	}
	if len(body) != 0 {
		return errors.New("vector: a proof-of-work vector has no body")
	}
	// The recorded Argon2id outputs, cross-checked with the reference
	// implementation, are what this package computes.
	for c, want := range h["hash"] {
		if c >= len(nonces) {
			return errors.New("vector: more hashes than nonces")
		}
		in := PoWInput{Seed: seed, UploadID: id, Length: length, Chunk: c}
		if got := hex.EncodeToString(powHash(p, &seed, setNonceOf(powPassword(&in), nonces[c]))); got != want {
			return fmt.Errorf("chunk %d: Argon2id output %s, vector says %s", c, got, want)
		}
	}
	if want := first(h, "pre-hash"); want != "" {
		if got := hex.EncodeToString(specPrePoWHash(seed, id, length, nonces, pre)); got != want {
			return fmt.Errorf("pre-proof SHA-256 %s, vector says %s", got, want)
		}
	}
	err = CheckPoWs(p, seed, id, length, nonces, pre)
	// With the right count, CheckPoWs passes exactly when the pre-proof
	// and every CheckPoW do.
	if length > 0 && len(nonces) == PoWChunks(length) && length <= maxPoWLength {
		all := CheckPrePoW(seed, id, length, nonces, pre)
		for c, n := range nonces {
			all = all && CheckPoW(p, PoWInput{Seed: seed, UploadID: id, Length: length, Chunk: c}, n)
		}
		if all != (err == nil) {
			return fmt.Errorf("CheckPoW of every chunk = %v, but CheckPoWs = %v", all, err)
		}
	}
	return err
}

func setNonceOf(password []byte, nonce uint64) []byte {
	setNonce(password, nonce)
	return password
}

// powVectors solves with the default parameters, so its result is kept
// for the tests that call it more than once.
var powVectors = sync.OnceValue(func() []vector {
	ctx := context.Background()
	id := [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	const length = 150 << 10 // a re-encoded photo: three chunks
	solve := func(p PoWParams, seed [32]byte, id [16]byte, length int64) []uint64 {
		n, err := SolvePoWs(ctx, p, seed, id, length)
		if err != nil {
			panic(err)
		}
		return n
	}
	pre := func(seed [32]byte, id [16]byte, length int64, nonces []uint64) uint64 {
		n, err := SolvePrePoW(ctx, seed, id, length, nonces)
		if err != nil {
			panic(err)
		}
		return n
	}
	def := DefaultPoWParams
	nonces := solve(def, testPoWVectorSeed, id, length)
	small := PoWParams{MemoryKiB: 8, Time: 2, Bits: 6}
	smallNonces := solve(small, testPoWVectorSeed, id, 16384)
	// A bad vector's pre-proof is the right one for its (bad) inputs, so
	// that the Argon2id proofs are what fails; the bad_pre cases break
	// the pre-proof alone.
	bad := func(name, comment string, p PoWParams, seed [32]byte, id [16]byte, length int64, nonces []uint64) vector {
		return vector{name, "bad_pow", powVectorHeaders(p, seed, id, length, nonces, pre(seed, id, length, nonces), false), comment, nil}
	}
	goodPre := pre(testPoWVectorSeed, id, length, nonces)
	if goodPre == 0 {
		panic("the pre-proof is nonce 0")
	}
	badPre := func(name, comment string, pre uint64) vector {
		return vector{name, "bad_pow", powVectorHeaders(def, testPoWVectorSeed, id, length, nonces, pre, false), comment, nil}
	}
	var otherNonces []uint64
	for i := range nonces {
		otherNonces = append(otherNonces, nonces[len(nonces)-1-i])
	}
	// The smallest proof of chunk 1 is nonzero (else the generator
	// must pick another input): the nonce before it fails.
	if nonces[1] == 0 {
		panic("chunk 1's proof is nonce 0")
	}
	below := slices.Clone(nonces)
	below[1]--
	swapped := slices.Clone(nonces)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	otherID := id
	otherID[15] ^= 1
	otherSeed := testPoWVectorSeed
	otherSeed[0] ^= 1
	return []vector{
		{"ok_default_three_chunks", "ok", powVectorHeaders(def, testPoWVectorSeed, id, length, nonces, goodPre, true), "150 KiB (a photo) under the default parameters: three proofs", nil},
		{"ok_small_one_chunk", "ok", powVectorHeaders(small, testPoWVectorSeed, id, 16384, smallNonces, pre(testPoWVectorSeed, id, 16384, smallNonces), true), "one frame, 8 KiB and two passes, 6 bits", nil},
		{"ok_zero_bits", "ok", powVectorHeaders(PoWParams{MemoryKiB: 8, Time: 1, Bits: 0}, testPoWVectorSeed, id, 1, []uint64{12345}, pre(testPoWVectorSeed, id, 1, []uint64{12345}), true), "0 bits: any Argon2id nonce passes, the pre-proof still counts", nil},
		badPre("bad_pow_pre_below", "the pre-proof one less than the smallest", goodPre-1),
		badPre("bad_pow_pre_of_other_proofs", "the pre-proof of the proofs in reverse order", pre(testPoWVectorSeed, id, length, otherNonces)),
		badPre("bad_pow_pre_of_zero_bits", "a pre-proof for 0 bits: one whose SHA-256 is not checked", 0),
		bad("bad_pow_nonce_below", "chunk 1's nonce one less than its smallest proof", def, testPoWVectorSeed, id, length, below),
		bad("bad_pow_swapped", "the proofs of chunks 0 and 1 swapped", def, testPoWVectorSeed, id, length, swapped),
		bad("bad_pow_too_few", "two proofs for three chunks", def, testPoWVectorSeed, id, length, nonces[:2]),
		bad("bad_pow_too_many", "four proofs for three chunks", def, testPoWVectorSeed, id, length, append(slices.Clone(nonces), 0)),
		bad("bad_pow_two_chunks_length", "three proofs for a length of two chunks", def, testPoWVectorSeed, id, 2*PoWChunkSize, nonces),
		bad("bad_pow_other_length", "one byte longer, still three chunks", def, testPoWVectorSeed, id, length+1, nonces),
		bad("bad_pow_other_upload_id", "another upload id", def, testPoWVectorSeed, otherID, length, nonces),
		bad("bad_pow_other_seed", "another epoch's seed", def, otherSeed, id, length, nonces),
		bad("bad_pow_other_memory", "the same proofs under 2 MiB", PoWParams{MemoryKiB: 2048, Time: 1, Bits: 8}, testPoWVectorSeed, id, length, nonces),
		{"bad_pow_zero_length", "bad_pow", powVectorHeaders(PoWParams{MemoryKiB: 8, Time: 1, Bits: 0}, testPoWVectorSeed, id, 0, nil, 0, false), "no proof exists for an empty upload", nil},
	}
})

// CheckPoW never panics, hashes only in range, and accepts only in range.
func FuzzCheckPoW(f *testing.F) {
	for _, s := range seedVectors(f, "pow") {
		p, seed, id, length, nonces, _, err := parsePoWVector(s.h)
		if err != nil {
			f.Fatal(err)
		}
		for c, n := range nonces {
			f.Add(seed[:], id[:], length, c, n, p.MemoryKiB, p.Time, p.Bits)
		}
	}
	f.Fuzz(func(t *testing.T, seed, id []byte, length int64, chunk int, nonce uint64, memory, passes uint32, bits int) {
		p := PoWParams{MemoryKiB: memory, Time: passes, Bits: bits}
		if p.Check() == nil && p.MemoryKiB*p.Time > 4096 {
			t.Skip("too costly to fuzz")
		}
		in := PoWInput{Length: length, Chunk: chunk}
		copy(in.Seed[:], seed)
		copy(in.UploadID[:], id)
		ok := CheckPoW(p, in, nonce)
		inRange := p.Check() == nil && in.check() == nil
		if ok && !inRange {
			t.Fatalf("CheckPoW(%+v, %+v, %d) = true out of range", p, in, nonce)
		}
		if inRange && ok != (leadingZeroBits(specPoWHash(p, in, nonce)) >= bits) {
			t.Fatalf("CheckPoW(%+v, %+v, %d) = %v, disagreeing with the spec", p, in, nonce, ok)
		}
	})
}

// CheckPrePoW never panics and agrees with the written construction; a
// pre-proof passes for exactly one set of inputs among those the fuzzer
// derives from it by changing a byte.
func FuzzCheckPrePoW(f *testing.F) {
	for _, s := range seedVectors(f, "pow") {
		_, seed, id, length, nonces, pre, err := parsePoWVector(s.h)
		if err != nil {
			f.Fatal(err)
		}
		var nb []byte
		for _, n := range nonces {
			nb = binary.BigEndian.AppendUint64(nb, n)
		}
		f.Add(seed[:], id[:], length, nb, pre)
	}
	f.Fuzz(func(t *testing.T, seedB, idB []byte, length int64, nb []byte, pre uint64) {
		var seed [32]byte
		var id [16]byte
		copy(seed[:], seedB)
		copy(id[:], idB)
		if len(nb) > 8*1024 {
			nb = nb[:8*1024]
		}
		nonces := make([]uint64, len(nb)/8)
		for i := range nonces {
			nonces[i] = binary.BigEndian.Uint64(nb[8*i:])
		}
		got := CheckPrePoW(seed, id, length, nonces, pre)
		if want := leadingZeroBits(specPrePoWHash(seed, id, length, nonces, pre)) >= PrePoWBits; got != want {
			t.Fatalf("CheckPrePoW = %v, the spec says %v", got, want)
		}
	})
}

// A source's phone proves work, before connecting, for the upload of
// docs/protocol.md's worked example (16,384 bytes, upload id 00 01 … 0f:
// one chunk) with the seed of ExampleSignPoWSeed. The password is the
// Argon2id password with the nonce found; the salt is the seed.
func ExampleSolvePoW() {
	fmt.Print(examplePoWProof())
	// Output:
	// chunks 1
	// nonce 82
	// password 6669656c647469702f706f772f763100000102030405060708090a0b0c0d0e0f0000000000004000000000000000000000000052
	// salt 6669656c64746970206578616d706c6520706f7720736565642c2065706f6368
	// argon2id 0074900b2ea5a06bd895fb24e7e1c949e36afa7ec665e07d32f511d781b2ceea
	// check true
}

var examplePoWProof = sync.OnceValue(func() string {
	in := PoWInput{
		Seed:     examplePoWSeed.Seed,
		UploadID: [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		Length:   16384,
		Chunk:    0,
	}
	p := examplePoWSeed.Params
	nonce, err := SolvePoW(context.Background(), p, in)
	if err != nil {
		panic(err)
	}
	password := setNonceOf(powPassword(&in), nonce)
	var b strings.Builder
	fmt.Fprintf(&b, "chunks %d\n", PoWChunks(in.Length))
	fmt.Fprintf(&b, "nonce %d\n", nonce)
	fmt.Fprintf(&b, "password %x\n", password)
	fmt.Fprintf(&b, "salt %x\n", in.Seed)
	fmt.Fprintf(&b, "argon2id %x\n", powHash(p, &in.Seed, password))
	fmt.Fprintf(&b, "check %v\n", CheckPoW(p, in, nonce))
	return b.String()
})

// The pre-proof of the proof above (docs/pow.md, "Pre-proof"): input is
// the SHA-256 input with the nonce found.
func ExampleSolvePrePoW() {
	fmt.Print(examplePrePoW())
	// Output:
	// proofs 0000000000000052
	// proofs-sha256 35921743a45af755f8c5c9514be72a4ac5609d0933e6d234c1e78605ae1c631a
	// pre 54013
	// input 6669656c647469702f7072652d706f772f7631006669656c64746970206578616d706c6520706f7720736565642c2065706f6368000102030405060708090a0b0c0d0e0f000000000000400035921743a45af755f8c5c9514be72a4ac5609d0933e6d234c1e78605ae1c631a000000000000d2fd
	// sha256 0000b98008737e606726eefe5248a0ad85c15b525f68e66b75d954af237425b7
	// check true
}

var examplePrePoW = sync.OnceValue(func() string {
	seed := examplePoWSeed.Seed
	id := [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	const length = 16384
	nonces := []uint64{82}
	pre, err := SolvePrePoW(context.Background(), seed, id, length, nonces)
	if err != nil {
		panic(err)
	}
	proofs := binary.BigEndian.AppendUint64(nil, nonces[0])
	input := setNonceOf(prePoWInput(&seed, &id, length, nonces), pre)
	var b strings.Builder
	fmt.Fprintf(&b, "proofs %x\n", proofs)
	fmt.Fprintf(&b, "proofs-sha256 %x\n", stdsha256.Sum256(proofs))
	fmt.Fprintf(&b, "pre %d\n", pre)
	fmt.Fprintf(&b, "input %x\n", input)
	fmt.Fprintf(&b, "sha256 %x\n", stdsha256.Sum256(input))
	fmt.Fprintf(&b, "check %v\n", CheckPrePoW(seed, id, length, nonces, pre))
	return b.String()
})

// Figures for docs/pow.md: a pre-proof (about 2^16 SHA-256 evaluations,
// averaged over inputs) and its check.
func BenchmarkSolvePrePoW(b *testing.B) {
	in := testPoWInput(0)
	nonces := []uint64{1, 2, 3}
	i := 0
	for b.Loop() {
		in.UploadID[0] = byte(i)
		in.UploadID[1] = byte(i >> 8)
		if _, err := SolvePrePoW(b.Context(), in.Seed, in.UploadID, in.Length, nonces); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkCheckPrePoW(b *testing.B) {
	in := testPoWInput(0)
	nonces := []uint64{1, 2, 3}
	for b.Loop() {
		CheckPrePoW(in.Seed, in.UploadID, in.Length, nonces, 0)
	}
}

// Figures for docs/pow.md: one proof of 64 KiB under the defaults
// (averaged over inputs, about 256 tries each), and one check.
func BenchmarkSolvePoW(b *testing.B) {
	i := 0
	for b.Loop() {
		if _, err := SolvePoW(b.Context(), DefaultPoWParams, testPoWInput(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkCheckPoW(b *testing.B) {
	in := testPoWInput(0)
	for b.Loop() {
		CheckPoW(DefaultPoWParams, in, 0)
	}
}
