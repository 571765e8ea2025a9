package newsdesk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"fieldtip/audit"
	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"
	"fieldtip/protocol"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// AuditOptions tune AuditVerify.
type AuditOptions struct {
	// Newsroom, if set, is the newsroom verifier key to pin in the state
	// directory; otherwise the key the first bundle names is pinned.
	Newsroom string
	// Cosigners, if positive, requires a checkpoint of the verified log
	// cosigned by that many distinct editors of the bundle in force at it.
	Cosigners int
}

// AuditReport is what AuditVerify checked.
type AuditReport struct {
	// Tree is the verified log.
	Tree tlog.Tree
	// Cosigned is the cosigned checkpoint checked (zero without
	// Cosigners), and Cosigners the labels of the editors who cosigned it.
	Cosigned  tlog.Tree
	Cosigners []string
	// Publications are the published claims the server lists, each
	// trail checked and its policy re-evaluated (auditPublications).
	Publications []PublicationAudit
}

// AuditVerify checks the server's log with no decryption key, keeping what
// it verified in stateDir (a replica, laid out as SyncLog's): the new
// checkpoint must extend the last one verified there (a fork is a
// *ForkError carrying both), every entry must pass audit.Verifier (an
// *audit.EntryError names the index and the reason), with Cosigners, N
// editors must have cosigned a checkpoint of this log, and every claim
// the server lists as published must have a trail of this log that
// checks, its policy met (auditPublications).
func AuditVerify(ctx context.Context, server, stateDir string, opts AuditOptions) (*AuditReport, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	u, err := protocol.ParseServerURL(server)
	if err != nil {
		return nil, err
	}
	pinPath := filepath.Join(stateDir, "newsroom")
	hc := &http.Client{Timeout: requestTimeout}
	defer hc.CloseIdleConnections()
	b, pinned, err := pinnedBundle(ctx, hc, u, pinPath, opts.Newsroom)
	if err != nil {
		return nil, err
	}
	v, err := syncReplica(ctx, server, stateDir, b.Newsroom, b.Log)
	if err != nil {
		return nil, err
	}
	if !pinned {
		if err := atomicfile.Replace(pinPath, []byte(b.Newsroom+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	rep := &AuditReport{Tree: v.Tree}
	if opts.Cosigners > 0 {
		if rep.Cosigned, rep.Cosigners, err = checkCosigned(ctx, server, v, opts.Cosigners); err != nil {
			return nil, err
		}
	}
	if rep.Publications, err = auditPublications(ctx, server, v); err != nil {
		return rep, err
	}
	return rep, nil
}

// ErrTooFewCosigners: no checkpoint of the log carries the cosignatures
// asked for.
var ErrTooFewCosigners = errors.New("too few editors cosigned the log")

// checkCosigned finds the newest checkpoint the server holds with at
// least n cosignatures, and checks that it is a checkpoint of v's log,
// signed by the log key, and cosigned by n distinct editors of the bundle
// in force at its size.
func checkCosigned(ctx context.Context, server string, v *LogView, n int) (tlog.Tree, []string, error) {
	u, err := protocol.ParseServerURL(server)
	if err != nil {
		return tlog.Tree{}, nil, err
	}
	hc := &http.Client{Timeout: requestTimeout}
	list, err := get(ctx, hc, u.Origin+protocol.PathCosigned, maxCosignedList)
	if err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("cosignatures: %w", err)
	}
	sizes, err := parseCosignedList(list)
	if err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("cosignatures: %w", err)
	}
	best := int64(0)
	for _, c := range sizes {
		best = max(best, c.Cosigners)
		if c.Cosigners < int64(n) || c.Size > v.Tree.N {
			continue
		}
		tree, who, err := checkCosignedSize(ctx, hc, u.Origin, v, c.Size)
		if err != nil {
			return tlog.Tree{}, nil, err
		}
		if len(who) >= n {
			return tree, who, nil
		}
	}
	return tlog.Tree{}, nil, fmt.Errorf("%w: %d asked for, at most %d on any checkpoint", ErrTooFewCosigners, n, best)
}

func checkCosignedSize(ctx context.Context, hc *http.Client, origin string, v *LogView, size int64) (tlog.Tree, []string, error) {
	msg, err := get(ctx, hc, origin+protocol.PathCosigned+"/"+strconv.FormatInt(size, 10), audit.MaxWitnessedSize)
	if err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("cosigned checkpoint %d: %w", size, err)
	}
	root, err := tlog.TreeHash(size, v.verifier)
	if err != nil {
		return tlog.Tree{}, nil, err
	}
	logV, err := note.NewVerifier(v.Bundle.Log)
	if err != nil {
		return tlog.Tree{}, nil, err
	}
	b := v.BundleAt(size)
	vs := []note.Verifier{logV}
	byName := map[string]string{}
	for _, e := range b.Editors {
		if slices.Contains(b.Revoked, e.Label) {
			continue
		}
		cv, err := crypto.CosignatureVerifier(e.Cosign)
		if err != nil {
			return tlog.Tree{}, nil, err
		}
		vs, byName[cv.Name()] = append(vs, cv), e.Label
	}
	nt, err := note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("cosigned checkpoint %d: %w", size, err)
	}
	want := fmt.Sprintf("%s\n%d\n%s\n", logV.Name(), size, root)
	if nt.Text != want {
		return tlog.Tree{}, nil, fmt.Errorf("cosigned checkpoint %d is not a checkpoint of the verified log", size)
	}
	var who []string
	logSigned := false
	for _, s := range nt.Sigs {
		if s.Name == logV.Name() && s.Hash == logV.KeyHash() {
			logSigned = true
		} else if l, ok := byName[s.Name]; ok && !slices.Contains(who, l) {
			who = append(who, l)
		}
	}
	if !logSigned {
		return tlog.Tree{}, nil, fmt.Errorf("cosigned checkpoint %d is not signed by the log key", size)
	}
	slices.Sort(who)
	return tlog.Tree{N: size, Hash: root}, who, nil
}

// maxCosignedList bounds GET /cosigned: protocol.MaxCosignatures lines of
// two 19-digit numbers.
const maxCosignedList = protocol.MaxCosignatures * 40

// cosignedSize is one line of GET /cosigned.
type cosignedSize struct {
	Size, Cosigners int64
}

// parseCosignedList parses GET /cosigned (docs/log.md, "Cosignatures"):
// at most protocol.MaxCosignatures lines "<size> <cosigners>\n", both
// canonical decimal integers of at least 1, sizes strictly decreasing.
// The counts are the server's claims; checkCosignedSize checks them.
func parseCosignedList(b []byte) ([]cosignedSize, error) {
	if len(b) > maxCosignedList {
		return nil, fmt.Errorf("list of %d bytes, more than %d", len(b), maxCosignedList)
	}
	var out []cosignedSize
	for line := range strings.Lines(string(b)) {
		if len(out) == protocol.MaxCosignatures {
			return nil, fmt.Errorf("more than %d lines", protocol.MaxCosignatures)
		}
		text, ok := strings.CutSuffix(line, "\n")
		a, c, ok2 := strings.Cut(text, " ")
		size, err1 := parsePositive(a)
		count, err2 := parsePositive(c)
		if !ok || !ok2 || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("malformed list line %q", FirstLine(line, 40))
		}
		if len(out) > 0 && size >= out[len(out)-1].Size {
			return nil, fmt.Errorf("size %d listed after size %d: not largest first", size, out[len(out)-1].Size)
		}
		out = append(out, cosignedSize{Size: size, Cosigners: count})
	}
	return out, nil
}

// parsePositive parses a canonical decimal integer of at least 1.
func parsePositive(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("not a positive integer: %q", FirstLine(s, 24))
	}
	return n, nil
}
