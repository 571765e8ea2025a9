package client

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fieldtip/crypto"

	socks5 "github.com/armon/go-socks5"
)

// unresolvable is the server's host name in the SOCKS tests: .invalid
// never resolves (RFC 6761 §6.4), so reaching the server proves that the
// proxy, not this device, looked the name up.
const unresolvable = "fieldtip.invalid"

// proxyResolver is the SOCKS server's resolver: it knows unresolvable
// (as 127.0.0.1) and nothing else, and records every name asked.
type proxyResolver struct {
	mu    sync.Mutex
	names []string
}

// Resolve implements socks5.NameResolver (its context is an alias of the
// standard one).
func (r *proxyResolver) Resolve(ctx context.Context, name string) (context.Context, net.IP, error) {
	r.mu.Lock()
	r.names = append(r.names, name)
	r.mu.Unlock()
	if name != unresolvable {
		return ctx, nil, errors.New("unknown host")
	}
	return ctx, net.IPv4(127, 0, 0, 1), nil
}

func (r *proxyResolver) asked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.names...)
}

// startSOCKS runs a real SOCKS5 server (github.com/armon/go-socks5) on a
// loopback port until the test ends, and returns its address.
func startSOCKS(t *testing.T) (string, *proxyResolver) {
	t.Helper()
	res := &proxyResolver{}
	srv, err := socks5.New(&socks5.Config{Resolver: res, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln) // returns when the listener closes
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String(), res
}

func TestSendThroughSOCKS5(t *testing.T) {
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{})
	_, port, err := net.SplitHostPort(hostPort(t, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr, res := startSOCKS(t)
	serverURL := "http://" + net.JoinHostPort(unresolvable, port)
	dir := filepath.Join(t.TempDir(), "fieldtip")

	// Without the proxy the name does not resolve here (bounded, in case
	// this machine's resolver waits for an unreachable DNS server).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, _, err := Init(ctx, dir, serverURL, nk.key.Verifier, InitOptions{}); err == nil {
		t.Fatalf("Init for %s without the proxy succeeded: the test's name resolves locally", unresolvable)
	}
	cfg, b, _, err := Init(context.Background(), dir, serverURL, nk.key.Verifier, InitOptions{Proxy: "socks5h://" + proxyAddr})
	if err != nil {
		t.Fatalf("Init through the proxy: %v", err)
	}
	if b.Version != 1 || cfg.Proxy != "socks5h://"+proxyAddr {
		t.Errorf("Init through the proxy: bundle version %d, proxy %q; want 1 and the proxy remembered", b.Version, cfg.Proxy)
	}

	// The proxy is remembered: the outbox goes through it with no option.
	p := outboxIn(t, dir)
	p.compose(t, &crypto.Tip{Text: "from the outbox, through the proxy"})
	rep, err := p.send(t, context.Background(), SendOptions{})
	if err != nil || len(rep.Sent) != 1 {
		t.Fatalf("SendOutbox through the remembered proxy = %+v, %v", rep, err)
	}
	checkDelivered(t, srv, nk, rep.Sent[0], "from the outbox, through the proxy")

	asked := res.asked()
	if len(asked) != 2 {
		t.Errorf("the proxy resolved %q, want %s once per connection (2)", asked, unresolvable)
	}
	for _, name := range asked {
		if name != unresolvable {
			t.Errorf("the proxy was asked to resolve %q, want only %s", name, unresolvable)
		}
	}

	// Cleared, the next connection is direct, and fails here.
	if err := cfg.SetProxy(""); err != nil {
		t.Fatal(err)
	}
	p.compose(t, &crypto.Tip{Text: "not without the proxy"})
	rep, err = SendOutbox(ctx, mustConfig(t, dir), p.ob, SendOptions{})
	if err == nil || len(rep.Sent) != 0 || len(res.asked()) != 2 {
		t.Errorf("SendOutbox with the proxy cleared = %+v, %v; want a failed direct connection", rep, err)
	}
}

func TestProxyDialerRefusesBadURLs(t *testing.T) {
	for _, u := range []string{
		"",
		"socks5://127.0.0.1:9050", // resolves names locally: leaks the server's name to the local network
		"socks4a://127.0.0.1:9050",
		"http://127.0.0.1:8080",
		"https://127.0.0.1:8080",
		"SOCKS5://127.0.0.1:9050",
		"socks5h://127.0.0.1",  // no port
		"socks5h://127.0.0.1:", // empty port
		"socks5h://",
		"socks5h:///",
		"socks5h://127.0.0.1:9050/path",
		"socks5h://127.0.0.1:9050?x=1",
		"socks5h://127.0.0.1:9050#x",
		"127.0.0.1:9050",
		"socks5h:127.0.0.1:9050",
		"socks5h://[::1",
	} {
		if _, err := ProxyDialer(u); err == nil {
			t.Errorf("ProxyDialer(%q) = nil error, want a refusal", u)
		}
	}
	for _, u := range []string{"socks5h://127.0.0.1:9050", "socks5h://127.0.0.1:9050/", "socks5h://user:pass@127.0.0.1:9050", "socks5h://localhost:9150", "socks5h://[::1]:9050"} {
		if _, err := ProxyDialer(u); err != nil {
			t.Errorf("ProxyDialer(%q) = %v, want it accepted", u, err)
		}
	}
}
