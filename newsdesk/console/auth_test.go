package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConsoleRefuses: the console answers nothing without its cookie, at
// another Host (DNS rebinding), to a replayed or wrong token, or to a POST
// without the CSRF token or from another origin; and every answer carries
// the security headers.
func TestConsoleRefuses(t *testing.T) {
	r := newRoom(t, "alice")
	tip := r.send(t, "a tip")
	c := r.console(t, "alice", "")

	// Before the token is used: nothing without a cookie.
	for _, path := range []string{"/", "/tip/" + tip, "/claims", "/log", "/api/changes", "/tip/" + tip + "/file/1"} {
		status, h, body := do(t, "GET", c.base+path, "", nil, "")
		if status != http.StatusForbidden || strings.Contains(body, "a tip") || h.Get("Set-Cookie") != "" {
			t.Errorf("GET %s without the cookie: %d %q", path, status, body)
		}
	}
	// A wrong token does not spend the right one.
	wrong := c.base + pathLogin + "?token=" + strings.Repeat("A", 43)
	if status, h, _ := do(t, "GET", wrong, "", nil, ""); status != http.StatusForbidden || h.Get("Set-Cookie") != "" {
		t.Errorf("a wrong token: %d, %v", status, h)
	}
	// A forged Host, even with the right token, gets nothing and spends
	// nothing.
	for _, host := range []string{"evil.example", "evil.example:" + strings.Split(c.host, ":")[1], "localhost:" + strings.Split(c.host, ":")[1], "127.0.0.1"} {
		if status, h, _ := do(t, "GET", c.url, host, nil, ""); status != http.StatusMisdirectedRequest || h.Get("Set-Cookie") != "" {
			t.Errorf("the token at Host %q: %d %v", host, status, h)
		}
	}
	ck := c.login(t)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/", ck)
	}
	// The token is spent.
	if status, h, _ := do(t, "GET", c.url, "", nil, ""); status != http.StatusForbidden || h.Get("Set-Cookie") != "" {
		t.Errorf("the token replayed: %d %v", status, h)
	}
	withCookie := http.Header{"Cookie": {ck.Name + "=" + ck.Value}}
	status, h, body := do(t, "GET", c.base+"/", "", withCookie, "")
	if status != http.StatusOK || !strings.Contains(body, "a tip") {
		t.Fatalf("GET / with the cookie: %d %s", status, body)
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "script-src 'nonce-", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	// The cookie at another Host: refused.
	if status, _, body := do(t, "GET", c.base+"/", "rebound.example:"+strings.Split(c.host, ":")[1], withCookie, ""); status != http.StatusMisdirectedRequest || strings.Contains(body, "a tip") {
		t.Errorf("the cookie at a forged Host: %d %s", status, body)
	}
	// A wrong cookie: refused.
	if status, _, _ := do(t, "GET", c.base+"/", "", http.Header{"Cookie": {ck.Name + "=" + strings.Repeat("B", 43)}}, ""); status != http.StatusForbidden {
		t.Errorf("a wrong cookie: %d", status)
	}

	// POSTs: the cookie alone is not enough.
	size := c.c.index.Load().LogSize
	form := url.Values{"status": {"useful"}}
	post := func(h http.Header, f url.Values) int {
		hh := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		for k, v := range h {
			hh[k] = v
		}
		status, _, _ := do(t, "POST", c.base+"/tip/"+tip+"/triage", "", hh, f.Encode())
		return status
	}
	if got := post(withCookie, form); got != http.StatusForbidden {
		t.Errorf("POST without the CSRF token: %d", got)
	}
	withToken := url.Values{"status": {"useful"}, csrfField: {c.c.auth.csrf}}
	if got := post(http.Header{}, withToken); got != http.StatusForbidden {
		t.Errorf("POST with the CSRF token, without the cookie: %d", got)
	}
	other := http.Header{"Cookie": withCookie["Cookie"], "Origin": {"http://127.0.0.1:1"}}
	if got := post(other, withToken); got != http.StatusForbidden {
		t.Errorf("POST from another origin: %d", got)
	}
	bad := url.Values{"status": {"useful"}, csrfField: {strings.Repeat("C", 43)}}
	if got := post(withCookie, bad); got != http.StatusForbidden {
		t.Errorf("POST with a wrong CSRF token: %d", got)
	}
	if got := c.c.index.Load().LogSize; got != size {
		t.Fatalf("refused POSTs changed the log from %d to %d entries", size, got)
	}
	same := http.Header{"Cookie": withCookie["Cookie"], "Origin": {c.base}}
	if got := post(same, withToken); got != http.StatusSeeOther {
		t.Errorf("POST with the cookie and the token: %d", got)
	}
	if got := c.c.index.Load().Row(tip).Status; got != "useful" {
		t.Errorf("after the triage, status %q", got)
	}
}

// The console listens on loopback only.
func TestConsoleLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:0": true, "[::1]:0": true, "0.0.0.0:0": false, ":0": false, "192.0.2.1:80": false, "localhost:0": false} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
