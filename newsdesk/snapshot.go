package newsdesk

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/mod/sumdb/tlog"
)

// The sealed index (docs/newsdesk.md, "The sealed index") keeps what a
// session decrypted, between runs, so that the next run decrypts only what
// is new: the parts of every event body the editor opened, and a summary of
// every tip. It is plaintext derived from tips and events, so it is never
// written as such: it is sealed with XChaCha20-Poly1305 under a key derived
// with HKDF-SHA-256 from the editor's whole key file (which is secret and
// passphrase-protected), so only the same key opens it, and a file someone
// else wrote does not open at all. Bodies restored from it are checked
// again against the events' commitments (audit.OpenParts), and it is used
// only if the tree it names is a prefix of the verified replica.

// Its file, its first line (also the AEAD's additional data and the HKDF
// info), and limits.
const (
	snapshotFile   = "index.sealed"
	snapshotHeader = "fieldtip/newsdesk-index/v1"
	// maxSnapshot bounds the file read back; a bigger index is not kept.
	maxSnapshot = 256 << 20
)

// snapshot is the sealed index's plaintext: one JSON object.
type snapshot struct {
	// Log is the tree whose events it holds (every event below Log.N).
	Log struct {
		N    int64  `json:"size"`
		Hash []byte `json:"hash"`
	} `json:"log"`
	// Events are the bodies opened, in log order.
	Events []snapshotEvent `json:"events"`
	// Bad are the events sealed to the editor whose body does not open.
	Bad []int64 `json:"bad"`
	// Warnings are the replay's warnings.
	Warnings []string `json:"warnings"`
	// Tips are the summaries of the tips decrypted.
	Tips []TipSummary `json:"tips"`
}

// snapshotEvent is an opened body's parts.
type snapshotEvent struct {
	Index int64 `json:"index"`
	// Via is the index of the handover event the body came in, or -1.
	Via         int64  `json:"via"`
	PublicSalt  []byte `json:"public_salt"`
	Public      []byte `json:"public"`
	PrivateSalt []byte `json:"private_salt"`
	Private     []byte `json:"private"`
}

// snapshotKey derives the sealed index's key from the editor's key.
func snapshotKey(key *crypto.EditorKey) ([]byte, error) {
	return hkdf.Key(sha256.New, key.Marshal(), nil, snapshotHeader, chacha20poly1305.KeySize)
}

// sealSnapshot returns the sealed index file of snap: the header line,
// a random 24-byte nonce, and the JSON sealed with the header as
// additional data.
func sealSnapshot(snap *snapshot, key *crypto.EditorKey) ([]byte, error) {
	plain, err := json.Marshal(snap)
	if err != nil {
		return nil, err
	}
	k, err := snapshotKey(key)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(snapshotHeader)+1+aead.NonceSize()+len(plain)+aead.Overhead())
	out = append(out, snapshotHeader+"\n"...)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, []byte(snapshotHeader)), nil
}

// errSnapshot: a sealed index that does not open with this key.
var errSnapshot = errors.New("the sealed index does not open with this key")

// openSnapshot opens a sealed index file.
func openSnapshot(sealed []byte, key *crypto.EditorKey) (*snapshot, error) {
	rest, ok := bytes.CutPrefix(sealed, []byte(snapshotHeader+"\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no %s line", errSnapshot, snapshotHeader)
	}
	k, err := snapshotKey(key)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, err
	}
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes", errSnapshot, len(sealed))
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], []byte(snapshotHeader))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSnapshot, err)
	}
	var snap snapshot
	if err := json.Unmarshal(plain, &snap); err != nil {
		return nil, fmt.Errorf("%w: %w", errSnapshot, err)
	}
	return &snap, nil
}

// tree returns the log tree the sealed index names (one this editor's
// earlier run verified in full), or nil.
func (snap *snapshot) tree() *tlog.Tree {
	if snap == nil || snap.Log.N <= 0 || len(snap.Log.Hash) != tlog.HashSize {
		return nil
	}
	return &tlog.Tree{N: snap.Log.N, Hash: tlog.Hash(snap.Log.Hash)}
}

// loadSnapshot returns the cache's sealed index, or nil if there is none
// or it does not open (then the session decrypts everything again and
// writes a new one).
func (s *Session) loadSnapshot() *snapshot {
	sealed, err := readLimited(filepath.Join(s.cache.Dir, snapshotFile), maxSnapshot)
	if err != nil {
		return nil
	}
	snap, err := openSnapshot(sealed, s.key)
	if err != nil {
		return nil
	}
	return snap
}

// saveSnapshot writes the sealed index of what the session holds.
func (s *Session) saveSnapshot() error {
	snap := &snapshot{Events: []snapshotEvent{}, Bad: []int64{}, Warnings: []string{},
		Tips: slices.DeleteFunc(s.tips.summaries(), func(t TipSummary) bool { return t.transient })}
	r := s.replay
	if s.view != nil && r.size > 0 {
		snap.Log.N = r.size
		h, err := tlog.TreeHash(r.size, s.view.verifier)
		if err != nil {
			return err
		}
		snap.Log.Hash = h[:]
		for _, i := range r.order {
			o, ok := r.opened[i]
			if !ok {
				continue
			}
			e := snapshotEvent{Index: i, Via: -1, PublicSalt: o.Parts.PublicSalt[:], Public: o.Parts.Public,
				PrivateSalt: o.Parts.PrivateSalt[:], Private: o.Parts.Private}
			if o.Via != nil {
				e.Via = r.via[i]
			}
			snap.Events = append(snap.Events, e)
		}
		for _, i := range r.order {
			if r.bad[i] {
				snap.Bad = append(snap.Bad, i)
			}
		}
		snap.Warnings = append(snap.Warnings, r.warnings...)
	}
	sealed, err := sealSnapshot(snap, s.key)
	if err != nil {
		return err
	}
	path := filepath.Join(s.cache.Dir, snapshotFile)
	if len(sealed) > maxSnapshot {
		// Too big to keep: the next run decrypts again.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(s.cache.Dir, 0o700); err != nil {
		return err
	}
	if err := atomicfile.Replace(path, sealed, 0o600); err != nil {
		return fmt.Errorf("save the sealed index: %w", err)
	}
	s.dirty, s.tips.dirty = false, false
	return nil
}

// restore sets the replayer to the sealed index's events, if its tree is
// a prefix of v's, and reports whether it did; otherwise the replayer is
// left empty. Every body is checked against its event's commitments.
func (r *replayer) restore(v *LogView, snap *snapshot) bool {
	if snap.Log.N <= 0 || snap.Log.N > v.Tree.N || len(snap.Log.Hash) != tlog.HashSize {
		return false
	}
	if h, err := tlog.TreeHash(snap.Log.N, v.verifier); err != nil || !bytes.Equal(h[:], snap.Log.Hash) {
		return false
	}
	if err := r.restoreEvents(v, snap); err != nil {
		*r = *newReplayer(r.key, r.id)
		return false
	}
	return true
}

func (r *replayer) restoreEvents(v *LogView, snap *snapshot) error {
	n := snap.Log.N
	if _, err := r.openEvents(v, 0, n); err != nil {
		return err
	}
	open := func(e snapshotEvent) (OpenedEvent, error) {
		ev := r.events[e.Index]
		if ev == nil || len(e.PublicSalt) != audit.SaltSize || len(e.PrivateSalt) != audit.SaltSize {
			return OpenedEvent{}, fmt.Errorf("event %d: not an event", e.Index)
		}
		p := &audit.Parts{Public: e.Public, Private: e.Private, PublicSalt: [audit.SaltSize]byte(e.PublicSalt), PrivateSalt: [audit.SaltSize]byte(e.PrivateSalt)}
		body, err := audit.OpenParts(p, ev)
		if err != nil {
			return OpenedEvent{}, err
		}
		return OpenedEvent{Index: e.Index, Event: ev, Body: body, Parts: p}, nil
	}
	// Bodies opened directly first, then those handed over, whose
	// handover events are among the first.
	for _, direct := range []bool{true, false} {
		for _, e := range snap.Events {
			if (e.Via < 0) != direct {
				continue
			}
			o, err := open(e)
			if err != nil {
				return err
			}
			if !direct {
				h := r.opened[e.Via]
				if h.Body == nil || h.Body.Kind != audit.KindHandover || h.Body.To != r.key.Label || e.Via <= e.Index {
					return fmt.Errorf("event %d: handed over in %d, which is not a handover to %s", e.Index, e.Via, r.key.Label)
				}
				for k := range h.Body.Bodies {
					if h.Body.Bodies[k].Index == e.Index {
						o.Via = &h.Body.Bodies[k]
					}
				}
				if o.Via == nil {
					return fmt.Errorf("event %d: not in handover %d", e.Index, e.Via)
				}
				r.via[e.Index] = e.Via
			}
			r.opened[e.Index] = o
		}
	}
	for _, i := range snap.Bad {
		if r.events[i] == nil {
			return fmt.Errorf("event %d: not an event", i)
		}
		r.bad[i] = true
	}
	for _, i := range r.order {
		if _, ok := r.opened[i]; !ok && !r.bad[i] && r.sealedToMe(v.BundleAt(i)) {
			r.missing[i] = true
		}
	}
	r.warnings = snap.Warnings
	r.size = n
	return r.rebuild()
}
