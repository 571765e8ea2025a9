package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldtip/internal/testkit/sourcekit"
	"fieldtip/newsdesk"
	"fieldtip/protocol"
)

// jsonLogger logs every level as JSON into buf, without the time (whose
// digits could contain a port number by chance).
func jsonLogger(buf io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// logRecords parses a JSON log, one record a line.
func logRecords(tb testing.TB, out string) []map[string]any {
	tb.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			tb.Fatalf("log line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestLogsIdentifyNoSource runs accepted and refused sessions and editor
// requests with a JSON logger and checks that no log line holds a client
// address or port, a user agent, a tip id, a ciphertext hash or an upload
// id. The server's own listen address appears once, in "listening".
func TestLogsIdentifyNoSource(t *testing.T) {
	buf := &lockedBuffer{}
	ts := newTestServer(t, serverOptions{editors: 2, logger: jsonLogger(buf)})
	ctx := context.Background()
	d := &localAddrDialer{}
	var secrets []string // strings that must not be logged

	// Accepted: a tip through the real client.
	res := ts.sendWith(t, "logged nowhere", sourcekit.Options{NetDialContext: d.DialContext})
	secrets = append(secrets, res.Receipt.TipIDString(), hex.EncodeToString(res.Receipt.SHA256[:]))

	// Refused sessions, raw.
	ct := sealFor(t, ts, "refused", fs16, 1)
	for _, run := range []func(c *wsConn){
		func(c *wsConn) { c.text([]byte(`{"type":"hello"}`)) },
		func(c *wsConn) { c.binary(make([]byte, 20<<10)) },
		func(c *wsConn) {
			up := ts.newUpload(t, 1, fs16, fs16)
			secrets = append(secrets, up.UploadID.String())
			c.text(up)
			c.frame(ct, 0, fs16)
			c.text(&protocol.Commit{})
		},
		func(c *wsConn) { c.text(ts.newUpload(t, 7, fs16, fs16)) },
	} {
		c := ts.dial(t)
		secrets = append(secrets, c.c.LocalAddr().String())
		run(c)
		c.refusal()
	}
	// A commit that is accepted on a raw connection.
	c := ts.dial(t)
	secrets = append(secrets, c.c.LocalAddr().String())
	up := ts.newUpload(t, 1, fs16, fs16)
	secrets = append(secrets, up.UploadID.String())
	c.text(up)
	c.frame(ct, 0, fs16)
	c.text(&protocol.Commit{SHA256: sha256.Sum256(ct)})
	ts.openReceipt(t, c.readUpload(fs16, fs16))
	// A dropped upload, a resume refused for its wrong secret, and one
	// accepted.
	p := ts.startUpload(t, sealFor(t, ts, framesText(2), fs16, 2), fs16, 1)
	secret := ts.resumeMsg(t, p.up.UploadID).ResumeSecret
	secrets = append(secrets, p.up.UploadID.String(), p.c.c.LocalAddr().String(),
		base64.RawURLEncoding.EncodeToString(secret[:]), base64.RawURLEncoding.EncodeToString(p.up.ResumeHash[:]))
	p.c.drop()
	ts.resumeRefused(t, p.up.UploadID, [32]byte{})
	p.resumeOn(t, fs16)
	secrets = append(secrets, p.c.c.LocalAddr().String())
	p.finish(t, fs16)

	// Editors: a login, a refused login, list, fetch, unauthorized
	// requests, a published and a refused bundle.
	r := login(t, ts, ts.editors[0])
	if _, err := r.ListTips(ctx, 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := r.FetchTip(ctx, res.Receipt.TipIDString()); err != nil {
		t.Fatal(err)
	}
	if _, err := newsdesk.Login(ctx, ts.origin(), newEditorKey(t, "stranger", true)); err == nil {
		t.Fatal("stranger logged in")
	}
	httpDo(t, http.MethodGet, ts.origin()+protocol.PathTips, "", nil)
	httpDo(t, http.MethodGet, ts.origin()+protocol.PathTips, "Bearer garbage", nil)
	if e := publish(t, ts, ts.makeBundle(t, 2, nil).Signed()); e != nil {
		t.Fatal(e)
	}
	publish(t, ts, ts.makeBundle(t, 1, nil).Signed())
	// An upload left unfinished expires and is purged.
	q := ts.startUpload(t, sealFor(t, ts, framesText(2), fs16, 2), fs16, 1)
	secrets = append(secrets, q.up.UploadID.String(), q.c.c.LocalAddr().String())
	q.c.drop()
	ts.clock.advance(ts.s.cfg.UploadExpiry * 2)
	ts.s.purge(ctx)
	ts.stop()

	d.mu.Lock()
	secrets = append(secrets, d.addrs...)
	d.mu.Unlock()
	var ports []string
	for _, a := range secrets {
		if _, port, err := net.SplitHostPort(a); err == nil {
			ports = append(ports, port)
		}
	}
	secrets = append(secrets, ports...)
	secrets = append(secrets, "127.0.0.1", "User-Agent", "user_agent", "Go-http-client")

	out := buf.String()
	var rest strings.Builder
	var seen []string
	for _, rec := range logRecords(t, out) {
		msg, _ := rec["msg"].(string)
		seen = append(seen, msg)
		if msg == "listening" {
			// The server's own address, not a client's.
			if rec[attrAddr] != ts.addr {
				t.Errorf("listening on %v, want %s", rec[attrAddr], ts.addr)
			}
			continue
		}
		b, _ := json.Marshal(rec)
		rest.Write(b)
		rest.WriteByte('\n')
	}
	for _, want := range []string{"listening", "editor logged in", "bundle published", "deleted expired uploads", "shutting down"} {
		if !strings.Contains(strings.Join(seen, "\n"), want) {
			t.Errorf("no %q record in the log: the test saw less than it should", want)
		}
	}
	for _, s := range secrets {
		if strings.Contains(rest.String(), s) {
			t.Errorf("log holds %q:\n%s", s, rest.String())
		}
	}
}

// TestHTTPErrorLog: net/http's error lines reach the logger as their kind
// and a count only, never the line with its address.
func TestHTTPErrorLog(t *testing.T) {
	for _, tc := range []struct{ line, kind string }{
		{"http: TLS handshake error from 203.0.113.7:4242: EOF\n", "tls_handshake"},
		{"http: panic serving 203.0.113.7:4242: boom\ngoroutine 1 [running]:\n", "handler_panic"},
		{"http: Accept error: accept tcp 203.0.113.7:4242: too many open files; retrying in 5ms\n", "accept"},
		{"http2: server: error reading preface from client 203.0.113.7:4242: EOF\n", "http2"},
		{"http: superfluous response.WriteHeader call from 203.0.113.7:4242\n", "other"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			buf := &lockedBuffer{}
			l := &httpErrorLog{log: jsonLogger(buf)}
			if n, err := l.Write([]byte(tc.line)); n != len(tc.line) || err != nil {
				t.Errorf("Write() = %d, %v; want %d, nil", n, err, len(tc.line))
			}
			out := buf.String()
			recs := logRecords(t, out)
			if len(recs) != 1 || recs[0][attrKind] != tc.kind || recs[0][attrCount] != 1.0 {
				t.Errorf("logged %s, want one record with %s=%s %s=1", out, attrKind, tc.kind, attrCount)
			}
			for _, s := range []string{"203.0.113.7", "4242"} {
				if strings.Contains(out, s) {
					t.Errorf("logged %q: %s", s, out)
				}
			}
		})
	}

	t.Run("rate_limited", func(t *testing.T) {
		buf := &lockedBuffer{}
		l := &httpErrorLog{log: jsonLogger(buf)}
		for range 100 {
			l.Write([]byte("http: TLS handshake error from 203.0.113.7:4242: EOF\n"))
		}
		// One line per kind per minute: 100 lines written back to back
		// log once.
		if recs := logRecords(t, buf.String()); len(recs) != 1 {
			t.Errorf("%d records for 100 lines, want 1", len(recs))
		}
	})
}

// TestTLSHandshakeErrorLogged makes a real TLS handshake fail on a real
// listener: the server's log says tls_handshake and nothing of the client.
func TestTLSHandshakeErrorLogged(t *testing.T) {
	cert, key := selfSignedCert(t)
	buf := &lockedBuffer{}
	ts := newTestServer(t, serverOptions{logger: jsonLogger(buf), config: func(c *Config) {
		c.TLSCert, c.TLSKey = cert, key
	}})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	// Not a TLS record: the handshake fails at once, the server logs,
	// then closes.
	conn.SetDeadline(time.Now().Add(failAfter))
	if _, err := conn.Write([]byte("\xff\xff\xff\xff\xff not tls")); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, conn)
	ts.stop()

	out := buf.String()
	found := false
	for _, rec := range logRecords(t, out) {
		if rec["msg"] == "http server error" && rec[attrKind] == "tls_handshake" {
			found = true
		}
	}
	if !found {
		t.Errorf("no tls_handshake record in:\n%s", out)
	}
	_, port, _ := net.SplitHostPort(local)
	for _, s := range []string{local, ":" + port, "handshake error from"} {
		if strings.Contains(out, s) {
			t.Errorf("log holds %q:\n%s", s, out)
		}
	}
}

// selfSignedCert writes a throwaway certificate for 127.0.0.1 and returns
// the paths of it and its key.
func selfSignedCert(tb testing.TB) (certFile, keyFile string) {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fieldtip test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}
