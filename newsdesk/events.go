package newsdesk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/protocol"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// maxHandoverBatch bounds the re-encrypted bodies of one handover event
// (their base64 in the JSON private part) so that its plaintext, framed
// and padded, stays under audit.MaxBodySize. A variable so that tests can
// make handovers split without writing 12 MiB.
var maxHandoverBatch = 12 << 20

// maxProof bounds the answer to POST /event: a tlog-proof of at most 64
// hashes and a signed checkpoint.
const maxProof = audit.MaxCheckpointSize + 64*64

// proofHeader is the first line of a C2SP tlog-proof.
const proofHeader = "c2sp.org/tlog-proof@v1"

// ReplayedError is the server's refusal of an event whose id the log
// holds already (409 replayed): the same signed event sent twice. Index
// is the index the server names (docs/log.md), or -1 when it names none
// (sent twice into one commit). It is unauthenticated until the entry at
// Index is checked.
type ReplayedError struct {
	Index int64
	Err   *protocol.Error
}

func (e *ReplayedError) Error() string {
	if e.Index < 0 {
		return "the event was sent twice: " + e.Err.Error()
	}
	return fmt.Sprintf("the log holds the event already, at index %d: %s", e.Index, e.Err.Error())
}

func (e *ReplayedError) Unwrap() error { return e.Err }

// parseEventIndex parses a canonical non-negative decimal index (no sign, no
// leading zero).
func parseEventIndex(s string) (int64, error) {
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("index %q is not a canonical decimal", clipUntrusted(s))
	}
	return strconv.ParseInt(s, 10, 64)
}

// clipUntrusted shortens untrusted text for an error message.
func clipUntrusted(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return cli.TerminalSafe(s)
}

// SignedEvent is an event ready to post: its signed entry and its body's
// age file.
type SignedEvent struct {
	// Entry is the signed fieldtip/event/v1 entry.
	Entry []byte
	// Body is the body's age file, sealed to the editors of the bundle the
	// event names.
	Body []byte
	// Event is the event the entry says.
	Event *audit.Event
}

// SignEvent seals body to the editors of v's bundle in force and signs,
// with the editor's signing key, an event over v's checkpoint (its base)
// with a fresh random id, dated now's UTC day.
func SignEvent(v *LogView, key *crypto.EditorKey, body *audit.EventBody, now time.Time) (*SignedEvent, error) {
	sealed, err := audit.SealEventBody(body, v.Bundle)
	if err != nil {
		return nil, err
	}
	ev, err := sealed.Event(crypto.Day(now), v.Tree)
	if err != nil {
		return nil, err
	}
	signer, err := key.Signer()
	if err != nil {
		return nil, err
	}
	entry, err := audit.SignEvent(ev, signer)
	if err != nil {
		return nil, err
	}
	return &SignedEvent{Entry: entry, Body: sealed.Ciphertext, Event: ev}, nil
}

// PostEvent sends ev over the session r (POST /event, docs/log.md) and
// returns the event's index once the server's answer, a C2SP tlog-proof,
// checks out: its checkpoint verifies with the log key of v's bundle in
// force and includes the entry at the index it names, the index is past
// the event's base, and the checkpoint extends the base (a consistency
// proof from the server's tiles, checked against the new checkpoint): a
// checkpoint that does not is a *ForkError carrying both. v must be the
// view ev was signed over. A refusal is a *protocol.Error; a replayed one
// is a *ReplayedError.
func (r *Remote) PostEvent(ctx context.Context, v *LogView, ev *SignedEvent) (int64, error) {
	index, _, err := r.postEvent(ctx, v, ev)
	return index, err
}

// postEvent is PostEvent, also returning the signed checkpoint of the
// acknowledgement, which it verified.
func (r *Remote) postEvent(ctx context.Context, v *LogView, ev *SignedEvent) (int64, []byte, error) {
	if ev.Event.Base != v.Tree {
		return 0, nil, fmt.Errorf("post event: the event's base (size %d) is not the view's checkpoint (size %d)", ev.Event.Base.N, v.Tree.N)
	}
	if len(ev.Entry) > audit.MaxEventSize {
		return 0, nil, fmt.Errorf("post event: entry of %d bytes, more than %d", len(ev.Entry), audit.MaxEventSize)
	}
	req := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(ev.Entry)+len(ev.Body)), uint16(len(ev.Entry)))
	req = append(append(req, ev.Entry...), ev.Body...)
	proof, err := r.raw(ctx, http.MethodPost, protocol.PathEvent, req, maxProof)
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Code == protocol.CodeReplayed {
		index := pe.Index
		if index < 1 {
			index = -1 // not said: find looks for the entry
		}
		return 0, nil, &ReplayedError{Index: index, Err: pe}
	}
	if err != nil {
		return 0, nil, fmt.Errorf("log the event: %w", err)
	}
	return r.checkAck(ctx, v, ev, proof)
}

// checkAck checks the server's answer to an event (PostEvent) and returns
// the index and the signed checkpoint it names.
func (r *Remote) checkAck(ctx context.Context, v *LogView, ev *SignedEvent, proof []byte) (int64, []byte, error) {
	_, policy, err := logPolicy(v.Bundle.Log)
	if err != nil {
		return 0, nil, err
	}
	if err := torchwood.VerifyProof(policy, tlog.RecordHash(ev.Entry), proof); err != nil {
		return 0, nil, fmt.Errorf("the server acknowledged the event with a proof that does not verify: %w", err)
	}
	index, _, signed, err := parseProof(proof)
	if err != nil {
		return 0, nil, fmt.Errorf("the server's acknowledgement: %w", err)
	}
	cp, _, err := torchwood.VerifyCheckpoint(signed, policy)
	if err != nil {
		return 0, nil, fmt.Errorf("the server's acknowledgement: %w", err)
	}
	base := ev.Event.Base
	if index < base.N {
		return 0, nil, &ForkError{Reason: fmt.Sprintf("the event is acknowledged at index %d, inside the tree of size %d it was signed over", index, base.N), Stored: v.Signed, Served: signed}
	}
	tf, err := torchwood.NewTileFetcher(r.url.Origin+"/", torchwood.WithHTTPClient(r.http), torchwood.WithUserAgent("newsdesk"))
	if err != nil {
		return 0, nil, err
	}
	cons, err := tlog.ProveTree(cp.N, base.N, torchwood.TileHashReaderWithContext(ctx, cp.Tree, tf))
	if err != nil {
		return 0, nil, fmt.Errorf("the event is logged at index %d, but the consistency proof from size %d to %d: %w", index, base.N, cp.N, err)
	}
	if err := tlog.CheckTree(cons, cp.N, cp.Hash, base.N, base.Hash); err != nil {
		return 0, nil, &ForkError{Reason: fmt.Sprintf("the tree of size %d acknowledging the event does not extend the tree of size %d it was signed over", cp.N, base.N), Stored: v.Signed, Served: signed}
	}
	return index, signed, nil
}

// parseProof splits a C2SP tlog-proof as the server writes it (no extra
// data): header, "index N", one standard-base64 hash a line (at most 63),
// a blank line, then the signed checkpoint. It checks the form only;
// torchwood.VerifyProof checks what it says.
func parseProof(proof []byte) (index int64, hashes tlog.RecordProof, checkpoint []byte, err error) {
	if len(proof) > maxProof {
		return 0, nil, nil, fmt.Errorf("tlog proof of %d bytes, more than %d", len(proof), maxProof)
	}
	rest, ok := bytes.CutPrefix(proof, []byte(proofHeader+"\n"))
	if !ok {
		return 0, nil, nil, errors.New("not a tlog proof: no " + proofHeader + " line")
	}
	line, rest, ok := bytes.Cut(rest, []byte("\n"))
	s, isIndex := strings.CutPrefix(string(line), "index ")
	if !ok || !isIndex {
		return 0, nil, nil, errors.New("malformed tlog proof: no index line")
	}
	if index, err = parseEventIndex(s); err != nil {
		return 0, nil, nil, fmt.Errorf("malformed tlog proof: %w", err)
	}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return 0, nil, nil, errors.New("malformed tlog proof: no blank line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(hashes) == 63 {
			return 0, nil, nil, errors.New("malformed tlog proof: more than 63 hashes")
		}
		h, err := base64.StdEncoding.Strict().DecodeString(string(line))
		if err != nil || len(h) != tlog.HashSize || base64.StdEncoding.EncodeToString(h) != string(line) {
			return 0, nil, nil, fmt.Errorf("malformed tlog proof: hash %d is not 32 bytes of standard base64", len(hashes))
		}
		hashes = append(hashes, tlog.Hash(h))
	}
	if len(rest) == 0 {
		return 0, nil, nil, errors.New("malformed tlog proof: no checkpoint")
	}
	return index, hashes, rest, nil
}

// proofIndex returns the index a tlog-proof names (parseProof).
func proofIndex(proof []byte) (int64, error) {
	i, _, _, err := parseProof(proof)
	return i, err
}

// tipAction posts a delete or mark request for tip over the session and
// decodes the answer into v (when not nil).
func (r *Remote) tipAction(ctx context.Context, tip, suffix string, req, v any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	b, err := r.raw(ctx, http.MethodPost, protocol.TipActionPath(tip, suffix), body, protocol.MaxEditorResponse)
	if err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	return protocol.DecodeJSON(bytes.NewReader(b), protocol.MaxEditorResponse, v)
}
