package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/testkit/sourcekit"
)

var backedUpRE = regexp.MustCompile(`^fieldtipd: backed up (\d+) tips, a log of (\d+) entries`)

// Issue 11: a backup taken with fieldtipd backup while sources send
// restores by the README's drill ("Backups"): the copy goes in place of
// the database, the server refuses to start on it while the log grew
// since (its pinned checkpoint is ahead), --recover-log brings the log up
// to an editor's replica, and the restored server starts and serves every
// tip the copy held, among them every tip acknowledged before the backup
// began.
func TestBackupUnderLoad(t *testing.T) {
	d := newDesk(t)
	srv := d.start(t)

	// The load: sources sending one tip after another.
	var mu sync.Mutex
	acked := map[string]bool{}
	var failed []error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		phone := sourcekit.New(t, srv.URL, d.newsroom, sourcekit.Options{})
		wg.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				res, err := phone.Send(context.Background(), &crypto.Tip{Text: fmt.Sprintf("source %d, tip %d", i, j)})
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
				} else {
					acked[res.Receipt.TipIDString()] = true
				}
				mu.Unlock()
			}
		})
	}
	ackedNow := func() map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]bool{}
		for id := range acked {
			out[id] = true
		}
		return out
	}
	waitAcked := func(n int) {
		t.Helper()
		for len(ackedNow()) < n {
			select {
			case <-srv.done:
				t.Fatalf("fieldtipd exited: %v", srv.err)
			case <-time.After(10 * time.Millisecond):
			}
			mu.Lock()
			nf := len(failed)
			mu.Unlock()
			if nf > maxFailuresBeforeStop {
				t.Fatalf("%d sends failed under load", nf)
			}
		}
	}
	waitAcked(8)
	before := ackedNow()
	backupFile := filepath.Join(d.dir, "backup.db")
	out, errOut := run(t, d.dir, "", 0, "fieldtipd", "backup", "--data", d.data, "--out", backupFile)
	if out != backupFile+"\n" {
		t.Errorf("fieldtipd backup printed %q, want the file's name", out)
	}
	m := backedUpRE.FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("fieldtipd backup said %q", errOut)
	}
	inBackup, _ := strconv.Atoi(m[1])
	// More tips arrive after the backup.
	waitAcked(len(before) + 4)
	close(stop)
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("%d sends failed under load, the first: %v", len(failed), failed[0])
	}
	all := ackedNow()
	if inBackup < len(before) || inBackup > len(all) {
		t.Fatalf("the backup holds %d tips; %d were acknowledged before it began, %d in all", inBackup, len(before), len(all))
	}

	// The editor pulls and logs a note: the log grows past the backup's,
	// and alice's cache holds a replica of it.
	cache := filepath.Join(d.dir, "alice-cache")
	editor := []string{"--server", srv.URL, "--key", "alice.key", "--passphrase-file", d.pass, "--cache", cache}
	run(t, d.dir, "", 0, "newsdesk", append([]string{"pull"}, editor...)...)
	var some string
	for id := range before {
		some = id
		break
	}
	run(t, d.dir, "", 0, "newsdesk", append([]string{"note", some, "--text", "checked after the backup"}, editor...)...)
	// Before the server stops, an editor syncs: the replica the restore
	// takes the log from is as new as the pinned checkpoint.
	run(t, d.dir, "", 0, "newsdesk", append([]string{"sync"}, editor...)...)
	srv.stopClean(t)

	// The drill: the copy replaces the database (WAL and shm go with the
	// old one); log.key and the pinned checkpoint stay.
	for _, name := range []string{"fieldtip.db", "fieldtip.db-wal", "fieldtip.db-shm"} {
		if err := os.Remove(filepath.Join(d.data, name)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	copyFile(t, backupFile, filepath.Join(d.data, "fieldtip.db"))
	_, errOut = run(t, d.dir, "", 1, "fieldtipd", "--data", d.data, "--listen", "127.0.0.1:0")
	if !strings.Contains(errOut, "behind the pinned checkpoint") || !strings.Contains(errOut, "--recover-log") {
		t.Errorf("fieldtipd on the restored copy said %q, want a refusal naming --recover-log", errOut)
	}
	run(t, d.dir, "", 0, "fieldtipd", "--data", d.data, "--recover-log", filepath.Join(cache, "log"))

	restored := d.start(t)
	fresh := filepath.Join(d.dir, "fresh-cache")
	out, _ = run(t, d.dir, "", 0, "newsdesk", "pull", "--server", restored.URL, "--key", "alice.key", "--passphrase-file", d.pass, "--cache", fresh)
	served := map[string]bool{}
	for _, id := range strings.Fields(out) {
		served[id] = true
	}
	if len(served) != inBackup {
		t.Errorf("the restored server serves %d tips, the backup held %d", len(served), inBackup)
	}
	for id := range before {
		if !served[id] {
			t.Errorf("tip %s, acknowledged before the backup, is not served after the restore", id)
		}
	}
	for id := range served {
		if !all[id] {
			t.Errorf("the restored server serves tip %s, which no source was given a receipt for", id)
		}
	}
	// The log goes on from the replica: an event logs on the restored
	// server.
	run(t, d.dir, "", 0, "newsdesk", "note", some, "--text", "after the restore", "--server", restored.URL,
		"--key", "alice.key", "--passphrase-file", d.pass, "--cache", cache)
	restored.stopClean(t)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
