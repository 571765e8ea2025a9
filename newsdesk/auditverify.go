package newsdesk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

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
}

// AuditVerify checks the server's log with no decryption key, keeping what
// it verified in stateDir (a replica, laid out as SyncLog's): the new
// checkpoint must extend the last one verified there (a fork is a
// *ForkError carrying both), every entry must pass audit.Verifier (an
// *audit.EntryError names the index and the reason), and with Cosigners,
// N editors must have cosigned a checkpoint of this log.
func AuditVerify(ctx context.Context, server, stateDir string, opts AuditOptions) (*AuditReport, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	newsroom := opts.Newsroom
	pinPath := filepath.Join(stateDir, "newsroom")
	pinned, err := os.ReadFile(pinPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		p := strings.TrimSpace(string(pinned))
		if newsroom != "" && newsroom != p {
			return nil, fmt.Errorf("%s pins newsroom key %s, not %s", stateDir, p, newsroom)
		}
		newsroom = p
	}
	msg, err := FetchBundle(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("fetch bundle: %w", err)
	}
	var b *crypto.Bundle
	if newsroom == "" {
		b, err = crypto.OpenBundleSelfSigned(msg)
	} else {
		b, err = crypto.OpenBundle(msg, newsroom)
	}
	if err != nil {
		return nil, fmt.Errorf("server's bundle refused: %w", err)
	}
	v, err := syncReplica(ctx, server, stateDir, b.Newsroom, b.Log)
	if err != nil {
		return nil, err
	}
	if len(pinned) == 0 {
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
	list, err := get(ctx, hc, u.Origin+protocol.PathCosigned, 64*48)
	if err != nil {
		return tlog.Tree{}, nil, fmt.Errorf("cosignatures: %w", err)
	}
	best := 0
	for line := range strings.Lines(string(list)) {
		f := strings.Fields(line)
		if len(f) != 2 {
			return tlog.Tree{}, nil, fmt.Errorf("cosignatures: malformed list line %q", FirstLine(line, 40))
		}
		size, err1 := strconv.ParseInt(f[0], 10, 64)
		count, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || size < 1 {
			return tlog.Tree{}, nil, fmt.Errorf("cosignatures: malformed list line %q", FirstLine(line, 40))
		}
		best = max(best, count)
		if count < n || size > v.Tree.N {
			continue
		}
		tree, who, err := checkCosignedSize(ctx, hc, u.Origin, v, size)
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
	msg, err := get(ctx, hc, origin+protocol.PathCosigned+"/"+strconv.FormatInt(size, 10), maxCheckpoint+64*256)
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
