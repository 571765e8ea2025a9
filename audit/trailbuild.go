package audit

import (
	"context"
	"errors"

	"golang.org/x/mod/sumdb/tlog"
)

// TrailLog is what BuildTrail reads from the server's log. The server
// implements it over its store; tests over a log in memory.
type TrailLog interface {
	// ReadHashes returns the log's stored hashes (tlog.HashReader), at
	// least those of the head's tree.
	tlog.HashReader
	// Entries returns the entries at these log indexes, in the order
	// asked: exactly len(indexes) of them, or an error.
	Entries(ctx context.Context, indexes []int64) ([][]byte, error)
	// BundleBefore returns the log index of the bundle in force at index:
	// the last bundle entry before it.
	BundleBefore(ctx context.Context, index int64) (int64, error)
	// ReceiptsLeaves returns the leaves of the receipts tree whose root is
	// the entry at index, sorted, as the server stores them.
	ReceiptsLeaves(ctx context.Context, index int64) ([]Leaf, error)
	// Cosigned returns the cosigned checkpoints the server holds with a
	// size from min to max: each the log's signed checkpoint followed by
	// every cosignature line it keeps for that size.
	Cosigned(ctx context.Context, min, max int64) ([][]byte, error)
}

// Revealed is an event's public part and salt, as the publishing editor
// reveals it (Parts.Public, Parts.PublicSalt).
type Revealed struct {
	Index  int64
	Public []byte
	Salt   [SaltSize]byte
}

// BuildTrail builds the trail of a claim from the server's log: the
// revealed public parts of the claim's events (from the claim event that
// created it through the publication, then the corrections), head (the
// log's signed checkpoint, which must cover them all), and what log
// holds (docs/claims.md, "Building a trail"). It picks the largest
// cosigned checkpoint up to the head that includes every entry logged
// before the publication and carries enough day-precision cosignatures
// by editors of the publication's bundle, keeping only those.
//
// It checks as it builds, so that a bad request fails early with the same
// *TrailError rules as CheckTrail (ErrTrailCommitment for a public part
// that does not open its event, ErrTrailCosigners when no checkpoint is
// cosigned enough yet, which passes once editors have synced); the
// caller still runs CheckTrail on MarshalTrail's bytes, which is the
// check that counts.
func BuildTrail(ctx context.Context, log TrailLog, newsroom string, head []byte, claim ClaimID, revealed []Revealed) (*Trail, error) {
	return buildTrail(ctx, log, newsroom, head, claim, revealed)
}

var errNotYet = errors.New("not implemented yet")

func buildTrail(ctx context.Context, log TrailLog, newsroom string, head []byte, claim ClaimID, revealed []Revealed) (*Trail, error) {
	return nil, errNotYet
}

func checkTrail(t *Trail, newsroom string) (*TrailReport, error) {
	return nil, errNotYet
}
