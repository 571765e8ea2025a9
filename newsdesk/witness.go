package newsdesk

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"golang.org/x/mod/sumdb/note"
)

// cosign sends the server the editor's cosignature of signed, a
// checkpoint of size entries that the editor verified (C2SP
// tlog-cosignature/v1, with the editor's cosigning key): the editor
// witnesses that this tree extends every tree it verified before
// (AUDIT.md, promise 4). A sync verified it against the replica's with a
// consistency proof; a write's acknowledgement, against the checkpoint
// the event was signed over, which the replica held.
func (r *Remote) cosign(ctx context.Context, signed []byte, size int64, key *crypto.EditorKey) error {
	line, err := cosignatureLine(signed, key)
	if err != nil {
		return err
	}
	if _, err := r.raw(ctx, http.MethodPost, protocol.PathCosignature, append(bytes.Clone(signed), line...), protocol.MaxEditorResponse); err != nil {
		return fmt.Errorf("cosign the checkpoint of size %d: %w", size, err)
	}
	return nil
}

// cosignatureLine returns the editor's signature line over the text of a
// signed checkpoint.
func cosignatureLine(signed []byte, key *crypto.EditorKey) ([]byte, error) {
	text, _, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("cosign: not a signed note")
	}
	s, err := key.CosignatureSigner()
	if err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: string(text) + "\n"}, s)
	if err != nil {
		return nil, fmt.Errorf("cosign: %w", err)
	}
	i := bytes.LastIndex(msg[:len(msg)-1], []byte("\n"))
	return msg[i+1:], nil
}
