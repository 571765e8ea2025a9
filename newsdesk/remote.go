package newsdesk

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"
)

// Remote is a logged-in session with a server's editors' endpoint. A
// Session renews it when it expires.
type Remote struct {
	url    protocol.ServerURL
	http   *http.Client
	token  string
	Editor string
	// expires is when the server said the token ends (zero if unknown).
	expires time.Time
}

// requestTimeout bounds every request to the server.
const requestTimeout = 60 * time.Second

// Login authenticates to the server as the editor of key: it asks for a
// challenge, signs a fieldtip/login/v1 note over this client's view of the
// server's origin, the server's nonce and expiry, and trades it for a
// session token.
func Login(ctx context.Context, server string, key *crypto.EditorKey) (*Remote, error) {
	u, err := protocol.ParseServerURL(server)
	if err != nil {
		return nil, err
	}
	return login(ctx, &http.Client{Timeout: requestTimeout}, u, key)
}

// login is Login over the client hc.
func login(ctx context.Context, hc *http.Client, u protocol.ServerURL, key *crypto.EditorKey) (*Remote, error) {
	r := &Remote{url: u, http: hc}
	var c protocol.Challenge
	if err := r.do(ctx, http.MethodPost, protocol.PathChallenge, nil, &c); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if c.Origin != u.Origin {
		return nil, fmt.Errorf("login: the server takes logins for %s, but you connect to %s (use --server %s, or set the server's --origin)", c.Origin, u.Origin, c.Origin)
	}
	l := &crypto.Login{Origin: u.Origin}
	nonce, err := base64.RawURLEncoding.Strict().DecodeString(c.Nonce)
	if err != nil || len(nonce) != crypto.NonceSize {
		return nil, errors.New("login: server sent a malformed challenge nonce")
	}
	copy(l.Nonce[:], nonce)
	if l.Expires, err = time.Parse(time.RFC3339, c.Expires); err != nil {
		return nil, errors.New("login: server sent a malformed challenge expiry")
	}
	signer, err := key.Signer()
	if err != nil {
		return nil, err
	}
	msg, err := crypto.SignLogin(l, signer)
	if err != nil {
		return nil, err
	}
	var s protocol.Session
	if err := r.do(ctx, http.MethodPost, protocol.PathLogin, msg, &s); err != nil {
		return nil, fmt.Errorf("login as %s: %w", key.Label, err)
	}
	r.token, r.Editor = s.Token, s.Editor
	// An expiry that does not parse only means the session is renewed
	// when the server refuses it.
	r.expires, _ = time.Parse(time.RFC3339, s.Expires)
	return r, nil
}

// FetchBundle returns the signed bundle the server has in force
// (unverified: the caller verifies it).
func FetchBundle(ctx context.Context, server string) ([]byte, error) {
	u, err := protocol.ParseServerURL(server)
	if err != nil {
		return nil, err
	}
	r := &Remote{url: u, http: &http.Client{Timeout: requestTimeout}}
	return r.raw(ctx, http.MethodGet, protocol.PathBundle, nil, crypto.MaxBundleSize)
}

// PublishBundle hands a signed bundle to the server.
func PublishBundle(ctx context.Context, server string, bundle []byte) error {
	u, err := protocol.ParseServerURL(server)
	if err != nil {
		return err
	}
	r := &Remote{url: u, http: &http.Client{Timeout: requestTimeout}}
	_, err = r.raw(ctx, http.MethodPost, protocol.PathBundle, bundle, 0)
	return err
}

// ListTips returns up to limit tips after cursor.
func (r *Remote) ListTips(ctx context.Context, after int64, limit int) ([]protocol.TipInfo, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.Itoa(limit)}}
	var l protocol.TipList
	if err := r.do(ctx, http.MethodGet, protocol.PathTips+"?"+q.Encode(), nil, &l); err != nil {
		return nil, fmt.Errorf("list tips: %w", err)
	}
	return l.Tips, nil
}

// FetchTip returns a tip's ciphertext.
func (r *Remote) FetchTip(ctx context.Context, id string) ([]byte, error) {
	b, err := r.raw(ctx, http.MethodGet, protocol.PathTips+"/"+url.PathEscape(id), nil, crypto.MaxTipSize)
	if err != nil {
		return nil, fmt.Errorf("fetch tip %s: %w", id, err)
	}
	return b, nil
}

func (r *Remote) do(ctx context.Context, method, path string, body []byte, v any) error {
	b, err := r.raw(ctx, method, path, body, protocol.MaxEditorResponse)
	if err != nil {
		return err
	}
	if err := protocol.DecodeJSON(bytes.NewReader(b), protocol.MaxEditorResponse, v); err != nil {
		return fmt.Errorf("server response: %w", err)
	}
	return nil
}

// raw makes one request and returns the body of a 2xx answer; a typed
// error answer comes back as *protocol.Error.
func (r *Remote) raw(ctx context.Context, method, path string, body []byte, max int64) ([]byte, error) {
	return request(ctx, r.http, method, r.url.Origin+path, r.token, body, max)
}

// request makes one request, with a bearer token unless it is empty, and
// returns the body of a 2xx answer of at most max bytes; a typed error
// answer comes back as *protocol.Error.
func request(ctx context.Context, hc *http.Client, method, url, token string, body []byte, max int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if m, err := protocol.ParseServerMessage(b); err == nil {
			if e, ok := m.(*protocol.Error); ok {
				return nil, e
			}
		}
		return nil, fmt.Errorf("server answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("server response larger than %d bytes", max)
	}
	return b, nil
}
