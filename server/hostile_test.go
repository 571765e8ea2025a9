package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"fieldtip/crypto"
	"fieldtip/protocol"

	"github.com/gorilla/websocket"
	"golang.org/x/mod/sumdb/note"
)

// hostileCase is one malformed or hostile input of the catalogue: run
// sends it to a live server and returns the typed error the server
// answered (and, over plain HTTP, the status; 0 on a WebSocket).
type hostileCase struct {
	name string
	// server names the catalogue's server the case runs against:
	// catalogueServers.
	server string
	run    func(t *testing.T, ts *testServer, h *hostileEnv) (int, *protocol.Error)
	want   protocol.Code
	// status is the HTTP status of a plain HTTP refusal.
	status int
	// offset is the server's offset a conflict or bad_checksum carries.
	offset int64
}

// hostileEnv is what the cases share: an editor's session token and a
// stored tip.
type hostileEnv struct {
	token string
	tip   string
}

// catalogueServers are the servers of the catalogue: "" a classic one with
// two editors and two uploads per connection, "pq" post-quantum keys,
// "staging" and "unfinished" with small limits.
func catalogueServers(t *testing.T) map[string]*testServer {
	return map[string]*testServer{
		"": newTestServer(t, serverOptions{editors: 2, config: func(c *Config) {
			c.MaxUploadsPerConn = 2
			// Small enough that the proofs of an upload over it are
			// quick to compute.
			c.MaxUploadSize = 1 << 20
		}}),
		"pq": newTestServer(t, serverOptions{editors: 2, pq: true}),
		"staging": newTestServer(t, serverOptions{config: func(c *Config) {
			c.MaxStagingBytes = 2 * fs16
			c.MaxUploadSize = 2 * fs16
		}}),
		"unfinished": newTestServer(t, serverOptions{config: func(c *Config) {
			c.MaxUnfinishedUploads = 1
		}}),
	}
}

// sourceCases turns the refused source sessions (refusalCases) into
// catalogue cases.
func sourceCases() []hostileCase {
	var out []hostileCase
	for _, rc := range refusalCases {
		out = append(out, hostileCase{name: "ws/" + rc.name, server: rc.server, want: rc.want, offset: rc.offset,
			run: func(t *testing.T, ts *testServer, _ *hostileEnv) (int, *protocol.Error) {
				return 0, rc.run(t, ts, ts.dial(t))
			}})
	}
	return out
}

// request is a plain HTTP request of the catalogue; auth adds the
// editor's session.
func request(method, path string, auth bool, body []byte) func(*testing.T, *testServer, *hostileEnv) (int, *protocol.Error) {
	return func(t *testing.T, ts *testServer, h *hostileEnv) (int, *protocol.Error) {
		a := ""
		if auth {
			a = "Bearer " + h.token
		}
		status, b := httpDo(t, method, ts.origin()+strings.ReplaceAll(path, "TIP", h.tip), a, body)
		return status, httpError(t, b)
	}
}

// rawRequest sends req's bytes as they are and reads the answer.
func rawRequest(req string) func(*testing.T, *testServer, *hostileEnv) (int, *protocol.Error) {
	return func(t *testing.T, ts *testServer, h *hostileEnv) (int, *protocol.Error) {
		k := dialKeepAlive(t, ts.addr)
		k.c.SetDeadline(time.Now().Add(failAfter))
		if _, err := k.c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(k.br, nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		return resp.StatusCode, httpError(t, mustRead(t, resp.Body))
	}
}

// loginWith posts a login note made by mk.
func loginWith(mk func(t *testing.T, ts *testServer) []byte) func(*testing.T, *testServer, *hostileEnv) (int, *protocol.Error) {
	return func(t *testing.T, ts *testServer, h *hostileEnv) (int, *protocol.Error) {
		status, b := httpDo(t, http.MethodPost, ts.origin()+protocol.PathLogin, "", mk(t, ts))
		return status, httpError(t, b)
	}
}

// httpCases are the hostile plain HTTP requests: to the sources' path
// without an upgrade, to editors' endpoints without or with a session,
// to the log's and the public endpoints.
var httpCases = []hostileCase{
	{name: "http/source_path_no_upgrade", run: request(http.MethodGet, protocol.DefaultSourcePath, false, nil), want: protocol.CodeMalformed, status: 400},
	{name: "http/source_path_post", run: request(http.MethodPost, protocol.DefaultSourcePath, false, []byte("x")), want: protocol.CodeNotFound, status: 404},
	{name: "http/upgrade_websocket_version_8", run: rawRequest("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"), want: protocol.CodeMalformed, status: 400},
	{name: "http/upgrade_without_key", run: rawRequest("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"), want: protocol.CodeMalformed, status: 400},
	{name: "http/upgrade_cross_origin", run: rawRequest("GET /ws HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"), want: protocol.CodeUnauthorized, status: 403},
	{name: "http/unknown_path", run: request(http.MethodGet, "/../../etc/passwd", false, nil), want: protocol.CodeNotFound, status: 404},
	{name: "http/wrong_method", run: request(http.MethodDelete, protocol.PathBundle, false, nil), want: protocol.CodeNotFound, status: 404},
	{name: "http/tips_no_session", run: request(http.MethodGet, protocol.PathTips, false, nil), want: protocol.CodeUnauthorized, status: 401},
	{name: "http/tips_forged_session", run: func(t *testing.T, ts *testServer, h *hostileEnv) (int, *protocol.Error) {
		var forged [32]byte
		rand.Read(forged[:])
		status, b := httpDo(t, http.MethodGet, ts.origin()+protocol.PathTips, "Bearer "+base64.RawURLEncoding.EncodeToString(forged[:]), nil)
		return status, httpError(t, b)
	}, want: protocol.CodeUnauthorized, status: 401},
	{name: "http/tips_limit_over_max", run: request(http.MethodGet, protocol.PathTips+"?limit=1001", true, nil), want: protocol.CodeMalformed, status: 400},
	{name: "http/tips_after_not_a_number", run: request(http.MethodGet, protocol.PathTips+"?after=1e3", true, nil), want: protocol.CodeMalformed, status: 400},
	{name: "http/tip_not_an_id", run: request(http.MethodGet, protocol.PathTips+"/%00%1b", true, nil), want: protocol.CodeMalformed, status: 400},
	{name: "http/tip_unknown", run: request(http.MethodGet, protocol.PathTips+"/AAAAAAAAAAAAAAAAAAAAAA", true, nil), want: protocol.CodeNotFound, status: 404},
	{name: "http/login_empty", run: loginWith(func(*testing.T, *testServer) []byte { return nil }), want: protocol.CodeUnauthorized, status: 403},
	{name: "http/login_unsigned_garbage", run: loginWith(func(*testing.T, *testServer) []byte { return []byte("fieldtip/login/v1\n\x1b]0;x\x07\n\n— k AAAA\n") }), want: protocol.CodeUnauthorized, status: 403},
	{name: "http/login_signed_garbage", run: loginWith(func(t *testing.T, ts *testServer) []byte {
		msg, err := note.Sign(&note.Note{Text: "fieldtip/login/v1\nnot a login\n"}, editorSigner(t, ts.editors[0]))
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}), want: protocol.CodeUnauthorized, status: 400},
	{name: "http/login_too_large", run: loginWith(func(*testing.T, *testServer) []byte { return make([]byte, crypto.MaxLoginSize+1) }), want: protocol.CodeTooLarge, status: 413},
	{name: "http/login_not_an_editor", run: loginWith(func(t *testing.T, ts *testServer) []byte {
		return signLogin(t, challenge(t, ts), editorSigner(t, newEditorKey(t, "stranger", true)))
	}), want: protocol.CodeUnauthorized, status: 403},
	{name: "http/login_for_another_origin", run: loginWith(func(t *testing.T, ts *testServer) []byte {
		l := challenge(t, ts)
		l.Origin = "https://phishing.example"
		return signLogin(t, l, editorSigner(t, ts.editors[0]))
	}), want: protocol.CodeUnauthorized, status: 403},
	{name: "http/login_replayed", run: func(t *testing.T, ts *testServer, h *hostileEnv) (int, *protocol.Error) {
		msg := signLogin(t, challenge(t, ts), editorSigner(t, ts.editors[0]))
		if _, e := postLogin(t, ts, msg); e != nil {
			t.Fatalf("first login refused: %v", e)
		}
		status, b := httpDo(t, http.MethodPost, ts.origin()+protocol.PathLogin, "", msg)
		return status, httpError(t, b)
	}, want: protocol.CodeUnauthorized, status: 403},
	{name: "http/bundle_unsigned", run: request(http.MethodPost, protocol.PathBundle, false, []byte("fieldtip/bundle/v1\nversion 99\n")), want: protocol.CodeUnauthorized, status: 403},
	{name: "http/bundle_too_large", run: request(http.MethodPost, protocol.PathBundle, false, make([]byte, crypto.MaxBundleSize+1)), want: protocol.CodeTooLarge, status: 413},
	{name: "http/bundle_replayed", run: func(t *testing.T, ts *testServer, h *hostileEnv) (int, *protocol.Error) {
		status, b := httpDo(t, http.MethodPost, ts.origin()+protocol.PathBundle, "", ts.s.Bundle().Signed())
		return status, httpError(t, b)
	}, want: protocol.CodeStaleBundle, status: 409},
	{name: "http/tile_not_a_path", run: request(http.MethodGet, protocol.PathTiles+"0/abc", false, nil), want: protocol.CodeMalformed, status: 400},
	{name: "http/tile_non_canonical", run: request(http.MethodGet, protocol.PathTiles+"0/0000", false, nil), want: protocol.CodeMalformed, status: 400},
	{name: "http/tile_beyond_the_log", run: request(http.MethodGet, protocol.PathTiles+"0/005", false, nil), want: protocol.CodeNotFound, status: 404},
	{name: "http/event_body_leading_zero", run: request(http.MethodGet, protocol.PathEventBodies+"01", false, nil), want: protocol.CodeMalformed, status: 400},
	{name: "http/event_body_negative", run: request(http.MethodGet, protocol.PathEventBodies+"-1", false, nil), want: protocol.CodeMalformed, status: 400},
	{name: "http/event_body_beyond", run: request(http.MethodGet, protocol.PathEventBodies+"9223372036854775807", false, nil), want: protocol.CodeNotFound, status: 404},
	{name: "http/event_no_session", run: request(http.MethodPost, protocol.PathEvent, false, []byte("x")), want: protocol.CodeUnauthorized, status: 401},
	{name: "http/event_garbage", run: request(http.MethodPost, protocol.PathEvent, true, []byte("\x00\x00and no event")), want: protocol.CodeMalformed, status: 400},
	{name: "http/event_length_past_end", run: request(http.MethodPost, protocol.PathEvent, true, []byte("\xff\xffshort")), want: protocol.CodeMalformed, status: 400},
	{name: "http/event_too_large", run: request(http.MethodPost, protocol.PathEvent, true, make([]byte, maxEventRequest+1)), want: protocol.CodeTooLarge, status: 413},
	{name: "http/cosignature_garbage", run: request(http.MethodPost, protocol.PathCosignature, true, []byte("not a checkpoint\n")), want: protocol.CodeMalformed, status: 400},
	{name: "http/cosignature_too_large", run: request(http.MethodPost, protocol.PathCosignature, true, make([]byte, maxCosignRequest+1)), want: protocol.CodeTooLarge, status: 413},
	{name: "http/cosigned_not_a_size", run: request(http.MethodGet, protocol.PathCosigned+"/+1", false, nil), want: protocol.CodeMalformed, status: 400},
	{name: "http/cosigned_unknown", run: request(http.MethodGet, protocol.PathCosigned+"/4242", false, nil), want: protocol.CodeNotFound, status: 404},
	{name: "http/receipts_not_an_index", run: request(http.MethodGet, protocol.PathReceipts+"0x10", false, nil), want: protocol.CodeMalformed, status: 400},
	{name: "http/receipts_not_a_root", run: request(http.MethodGet, protocol.PathReceipts+"0", false, nil), want: protocol.CodeNotFound, status: 404},
	{name: "http/tip_delete_garbage", run: request(http.MethodPost, protocol.PathTips+"/TIP"+protocol.PathTipDeleteSuffix, true, []byte(`{"event":1,"event":2}`)), want: protocol.CodeMalformed, status: 400},
	{name: "http/tip_delete_unknown_tip", run: request(http.MethodPost, protocol.PathTips+"/AAAAAAAAAAAAAAAAAAAAAA"+protocol.PathTipDeleteSuffix, true, []byte(`{"event":1}`)), want: protocol.CodeNotFound, status: 404},
	{name: "http/tip_delete_not_an_event", run: request(http.MethodPost, protocol.PathTips+"/TIP"+protocol.PathTipDeleteSuffix, true, []byte(`{"event":0}`)), want: protocol.CodeMalformed, status: 400},
	{name: "http/tip_mark_too_large", run: request(http.MethodPost, protocol.PathTips+"/TIP"+protocol.PathTipMarkSuffix, true, bytes.Repeat([]byte(" "), protocol.MaxTipActionRequest+1)), want: protocol.CodeTooLarge, status: 413},
	{name: "http/tip_handover_no_session", run: request(http.MethodGet, protocol.PathTips+"/TIP"+protocol.PathTipHandoverSuffix, false, nil), want: protocol.CodeUnauthorized, status: 401},
}

// TestHostileInputs is the catalogue of malformed and hostile inputs
// against live servers (issue 11): each is answered with its typed error
// (on plain HTTP, with its status too), and after each the server is
// healthy: /healthz answers, an honest source gets a receipt, and every
// tip acknowledged before is intact.
func TestHostileInputs(t *testing.T) {
	servers := catalogueServers(t)
	for _, ts := range servers {
		ts.send(t, "acknowledged before any hostile input")
	}
	h := &hostileEnv{token: sessionToken(t, servers[""]), tip: servers[""].send(t, "a tip to act on").Receipt.TipIDString()}
	cases := append(sourceCases(), httpCases...)
	if len(cases) < 40 {
		t.Fatalf("the catalogue holds %d cases, want at least 40", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := servers[tc.server]
			status, e := tc.run(t, ts, h)
			if !protocol.IsError(e, tc.want) {
				t.Fatalf("refusal = %v, want code %s", e, tc.want)
			}
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if len(e.Message) == 0 || len(e.Message) > protocol.MaxMessageLength {
				t.Errorf("error text of %d bytes", len(e.Message))
			}
			if (tc.want == protocol.CodeConflict || tc.want == protocol.CodeBadChecksum) && e.Offset != tc.offset {
				t.Errorf("%s carries offset %d, want %d", e.Code, e.Offset, tc.offset)
			}
			if status, body := httpDo(t, http.MethodGet, ts.origin()+protocol.PathHealth, "", nil); status != http.StatusOK || string(body) != "ok\n" {
				t.Errorf("/healthz after %s: %d %q", tc.name, status, body)
			}
			ts.send(t, "well-behaved after "+tc.name)
			ts.intact(t)
		})
	}
	// The catalogue's sessions hold no connection slot after them.
	for name, ts := range servers {
		if c, _, err := testDialer.Dial(ts.wsURL(), nil); err != nil {
			t.Errorf("server %q: a source cannot connect after the catalogue: %v", name, err)
		} else {
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			c.Close()
		}
	}
}
