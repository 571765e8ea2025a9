package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldtip/audit"
	"fieldtip/internal/testkit/scripttest"
	"fieldtip/protocol"

	"filippo.io/torchwood"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/mod/sumdb/tlog"
)

// TestRecoverScripts runs testdata/recover/*.txt as TestScripts runs
// testdata/*.txt (the built binaries first on PATH, $PORT a free loopback
// port, the commands of internal/testkit/scripttest), with one more
// command, which stands in for an editor's replica:
//
//	logreplica URL DIR    copy the log served at URL into DIR, laid out as
//	                      an editor's replica (docs/log.md, "Recovery"):
//	                      checkpoint, every entry bundle, every event body;
//	                      print "N entries"
//
// The scripts live in their own directory because TestScripts does not
// know logreplica.
func TestRecoverScripts(t *testing.T) {
	scripttest.RunBuilt(t, binDir, testscript.Params{
		Dir: filepath.Join("testdata", "recover"),
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"logreplica": cmdLogReplica,
		},
	})
}

// maxReplicaFile caps each file logreplica fetches: an event body is at
// most audit.MaxSealedBodySize.
const maxReplicaFile = audit.MaxSealedBodySize + 1

func cmdLogReplica(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: logreplica URL DIR")
	}
	base, dir := strings.TrimSuffix(args[0], "/"), ts.MkAbs(args[1])
	c := &http.Client{Timeout: 10 * time.Second}
	fetch := func(path string) ([]byte, int) {
		resp, err := c.Get(base + "/" + path)
		ts.Check(err)
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxReplicaFile))
		ts.Check(err)
		return b, resp.StatusCode
	}
	write := func(path string, b []byte) {
		p := filepath.Join(dir, filepath.FromSlash(path))
		ts.Check(os.MkdirAll(filepath.Dir(p), 0o700))
		ts.Check(os.WriteFile(p, b, 0o600))
	}
	signed, status := fetch(strings.TrimPrefix(protocol.PathCheckpoint, "/"))
	if status != http.StatusOK {
		ts.Fatalf("logreplica: GET checkpoint: status %d", status)
	}
	text, _, ok := strings.Cut(string(signed), "\n\n")
	if !ok {
		ts.Fatalf("logreplica: checkpoint %q is not a signed note", signed)
	}
	cp, err := torchwood.ParseCheckpoint(text + "\n")
	ts.Check(err)
	write("checkpoint", signed)
	for n := int64(0); n*torchwood.TileWidth < cp.N; n++ {
		t := tlog.Tile{H: torchwood.TileHeight, L: -1, N: n, W: int(min(torchwood.TileWidth, cp.N-n*torchwood.TileWidth))}
		path := torchwood.TilePath(t)
		data, status := fetch(path)
		if status != http.StatusOK {
			ts.Fatalf("logreplica: GET %s: status %d", path, status)
		}
		write(path, data)
		rest := data
		for i := n * torchwood.TileWidth; i < n*torchwood.TileWidth+int64(t.W); i++ {
			var e []byte
			if e, rest, err = torchwood.ReadTileEntry(rest); err != nil {
				ts.Fatalf("logreplica: %s: entry %d: %v", path, i, err)
			}
			if !bytes.HasPrefix(e, []byte(audit.EventHeader+"\n")) {
				continue
			}
			bodyPath := strings.TrimPrefix(protocol.PathEventBodies, "/") + strconv.FormatInt(i, 10)
			if body, status := fetch(bodyPath); status == http.StatusOK {
				write(bodyPath, body)
			}
		}
	}
	fmt.Fprintf(ts.Stdout(), "%d entries\n", cp.N)
}
