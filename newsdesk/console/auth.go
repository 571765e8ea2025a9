package console

// Who gets in (the package doc's first promise). The console listens on
// 127.0.0.1, where any local program, and any web page the editor's
// browser opens, can reach it; so:
//
//   - a one-time token, printed in the URL, is exchanged for a session
//     cookie (HttpOnly, SameSite=Strict, Path=/) at the first load, then
//     redirected away, so the token is neither reusable nor left in the
//     address bar or history;
//   - every request must carry the cookie: without it, 403 and nothing else;
//   - the Host header must be the console's own host:port, so a page of
//     another site whose name was re-pointed at 127.0.0.1 (DNS rebinding)
//     gets nothing;
//   - every POST carries the per-session CSRF token in its form (or the
//     X-CSRF-Token header) and, when the browser sends an Origin, the
//     console's own; SameSite=Strict already keeps the cookie off
//     cross-site requests.
//
// Tokens are 32 random bytes in unpadded base64url, compared in constant
// time; the cookie's value is checked against SHA-256 of the session
// secret only.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
)

const (
	// pathLogin takes the one-time token.
	pathLogin = "/login"
	// cookiePrefix starts the session cookie's name, which ends with the
	// console's port: browsers keep cookies by host, not port, so two
	// consoles (two editors on one machine) must not share a name.
	cookiePrefix = "fieldtip_console_"
	// csrfField is the form field (and csrfHeader the header) carrying
	// the CSRF token.
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
)

// auth holds the console's secrets. There is one session: the browser
// that used the token.
type auth struct {
	host   string
	cookie string
	token  string // the one-time token, until used

	mu   sync.Mutex
	used bool
	// session is the cookie's value once the token was used; csrf the
	// forms' token.
	session [32]byte
	csrf    string
}

func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func newAuth(host string) (*auth, error) {
	t, err := randomToken()
	if err != nil {
		return nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(host, ":")
	return &auth{host: host, cookie: cookiePrefix + port, token: t, csrf: csrf}, nil
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// exchange takes the one-time token and returns the session cookie's
// value, once.
func (a *auth) exchange(token string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.used || !equal(token, a.token) {
		return "", false
	}
	a.used = true
	v, err := randomToken()
	if err != nil {
		return "", false
	}
	a.session = sha256.Sum256([]byte(v))
	return v, true
}

// hasSession reports whether r carries the session cookie.
func (a *auth) hasSession(r *http.Request) bool {
	ck, err := r.Cookie(a.cookie)
	if err != nil {
		return false
	}
	h := sha256.Sum256([]byte(ck.Value))
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used && subtle.ConstantTimeCompare(h[:], a.session[:]) == 1
}

// csrfOK reports whether a POST carries the CSRF token and comes from
// the console's own pages: a browser that says where a request comes from
// (Sec-Fetch-Site, Origin) must say the console's origin. A page sent
// with Referrer-Policy: no-referrer makes Chromium send "Origin: null"
// even on its own forms, so "null" is left to the token.
func (a *auth) csrfOK(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" && o != "http://"+a.host {
		return false
	}
	t := r.Header.Get(csrfHeader)
	if t == "" {
		t = r.PostFormValue(csrfField)
	}
	return t != "" && equal(t, a.csrf)
}

// guard wraps the console's handler: the Host check, the login exchange,
// the cookie, CSRF on POST, and the headers of every answer.
func (c *Console) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nonce := securityHeaders(w)
		if r.Host != c.auth.host {
			refuse(w, http.StatusMisdirectedRequest, "this console answers only at http://"+c.auth.host+"/")
			return
		}
		if r.URL.Path == pathLogin && r.Method == http.MethodGet {
			v, ok := c.auth.exchange(r.URL.Query().Get("token"))
			if !ok {
				refuse(w, http.StatusForbidden, "this link was used already or is wrong: start newsdesk console again for a new one")
				return
			}
			http.SetCookie(w, &http.Cookie{Name: c.auth.cookie, Value: v, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if !c.auth.hasSession(r) {
			refuse(w, http.StatusForbidden, "open the console with the link newsdesk console printed")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if !c.auth.csrfOK(r) {
				refuse(w, http.StatusForbidden, "this form is not the console's (CSRF token or origin): reload the page")
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(withNonce(r.Context(), nonce)))
	})
}

// maxForm caps a POST's body: a note of 65,536 bytes and its form.
const maxForm = 256 << 10

// refuse answers a refusal in plain text.
func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}
