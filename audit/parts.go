package audit

import "fmt"

// OpenParts checks the parts of a body an editor opened before (newsdesk
// keeps them sealed on the editor's machine, so that it need not decrypt
// every body again) against the event's commitments, then parses them:
// the checks OpenEventBody makes after decrypting, in the same order. A
// mismatch is a *CommitmentError naming the part.
func OpenParts(p *Parts, e *Event) (*EventBody, error) {
	if p.PublicCommitment() != e.Public {
		return nil, fmt.Errorf("event body: %w", &CommitmentError{Part: "public"})
	}
	if p.PrivateCommitment() != e.Private {
		return nil, fmt.Errorf("event body: %w", &CommitmentError{Part: "private"})
	}
	return parseParts(p)
}
