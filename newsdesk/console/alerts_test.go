package console

import (
	"database/sql"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"

	_ "github.com/mattn/go-sqlite3"
)

// TestConsoleAlerts: a sync warning is shown in red at the top of every
// page. The server gives a receipt for a tip, alice's console pulls it,
// then the server drops it (an edit of its SQLite file) before today's
// receipts tree is logged; the console's next background sync finds the
// tree without the tip, and every page (inbox, a tip, claims, log) says
// so in its alert, naming the tip, until a sync succeeds.
func TestConsoleAlerts(t *testing.T) {
	r := newRoom(t, "alice")
	r.send(t, "a tip the server keeps")
	dropped := r.send(t, "a tip the server drops")
	c := r.console(t, "alice", "")
	ck := c.login(t)
	withCookie := http.Header{"Cookie": {ck.Name + "=" + ck.Value}}
	for deadline := time.Now().Add(failAfter); c.c.index.Load().Row(dropped) == nil; {
		if time.Now().After(deadline) {
			t.Fatal("the console never showed the tip the server will drop")
		}
		time.Sleep(50 * time.Millisecond) // polls the index a background sync replaces
	}

	db, err := sql.Open("sqlite3", "file:"+filepath.Join(r.srv.Dir, "fieldtip.db")+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id, err := crypto.ParseTipID(dropped)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := db.Exec(`DELETE FROM tips WHERE id = ?`, id[:]); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("deleted %d tips, want 1", n)
	}

	// Today's receipts tree, logged by the console's own form.
	form := url.Values{csrfField: {c.c.auth.csrf}}
	h := http.Header{"Cookie": withCookie["Cookie"], "Origin": {c.base}, "Content-Type": {"application/x-www-form-urlencoded"}}
	if status, _, body := do(t, "POST", c.base+"/claims/period", "", h, form.Encode()); status != http.StatusSeeOther {
		t.Fatalf("closing the period: %d %s", status, body)
	}
	for deadline := time.Now().Add(failAfter); !strings.Contains(c.c.syncError(), dropped); {
		if time.Now().After(deadline) {
			t.Fatalf("the console's sync never found the dropped tip; its error: %q", c.c.syncError())
		}
		time.Sleep(50 * time.Millisecond) // polls what the background sync stores
	}
	for _, path := range []string{"/", "/tip/" + dropped, "/claims", "/log"} {
		status, _, body := do(t, "GET", c.base+path, "", withCookie, "")
		if status != http.StatusOK {
			t.Errorf("GET %s: %d", path, status)
			continue
		}
		_, alert, found := strings.Cut(body, `<p class="alert" role="alert">`)
		if !found {
			t.Errorf("GET %s shows no alert", path)
			continue
		}
		alert, _, _ = strings.Cut(alert, "</p>")
		if !strings.Contains(alert, "receipts") || !strings.Contains(alert, dropped) {
			t.Errorf("GET %s: the alert says %q, want the receipts tree without %s", path, alert, dropped)
		}
		if strings.Index(body, `class="alert"`) > strings.Index(body, "<main") && strings.Contains(body, "<main") {
			t.Errorf("GET %s: the alert is not at the top, above the page's content", path)
		}
	}
}
