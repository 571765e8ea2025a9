package crypto

import (
	"context"
	"slices"
	"sync"
	"testing"
)

func TestSolvePoWsProgress(t *testing.T) {
	// Issue 12: a long proof of work can show how far it is. progress is
	// called once per chunk, with counts 1 to n (in any order), and the
	// proofs are those SolvePoWs finds.
	p := PoWParams{MemoryKiB: 8, Time: 1, Bits: 2}
	var seed [32]byte
	var id [16]byte
	length := int64(5*PoWChunkSize + 1)
	var mu sync.Mutex
	var got []int
	nonces, err := SolvePoWsProgress(context.Background(), p, seed, id, length, func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if total != 6 {
			t.Errorf("progress total = %d, want 6", total)
		}
		got = append(got, done)
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int{1, 2, 3, 4, 5, 6}) {
		t.Errorf("progress counts = %v, want 1 to 6 once each", got)
	}
	want, err := SolvePoWs(context.Background(), p, seed, id, length)
	if err != nil || !slices.Equal(nonces, want) {
		t.Errorf("SolvePoWsProgress = %v, SolvePoWs = %v, %v", nonces, want, err)
	}
}
