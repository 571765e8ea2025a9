package client

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
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
	dial, err := ProxyDialer("socks5h://" + proxyAddr)
	if err != nil {
		t.Fatalf("ProxyDialer: %v", err)
	}
	dir := initClient(t, "http://"+net.JoinHostPort(unresolvable, port), nk.key.Verifier)

	// Without the proxy the name does not resolve here (bounded, in case
	// this machine's resolver waits for an unreachable DNS server).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := Fetch(ctx, dir, SendOptions{}); err == nil {
		t.Fatalf("Fetch from %s without the proxy succeeded: the test's name resolves locally", unresolvable)
	}
	opts := SendOptions{NetDialContext: dial}
	b, _, err := Fetch(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Fetch through the proxy: %v", err)
	}
	if b.Version != 1 {
		t.Errorf("Fetch through the proxy: bundle version %d, want 1", b.Version)
	}
	res1, err := Send(context.Background(), dir, &crypto.Tip{Text: "through the proxy"}, opts)
	if err != nil {
		t.Fatalf("Send through the proxy: %v", err)
	}
	checkDelivered(t, srv, nk, res1, "through the proxy")

	// The outbox path too.
	codename, err := crypto.GenerateCodename()
	if err != nil {
		t.Fatal(err)
	}
	ob, err := CreateOutbox(OutboxPath(dir), codename, 0, testOutboxKDF)
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{dir: dir, codename: codename, ob: ob}
	p.compose(t, &crypto.Tip{Text: "from the outbox, through the proxy"})
	rep, err := SendOutbox(context.Background(), dir, ob, SendBudgetOptions{SendOptions: opts})
	if err != nil || len(rep.Sent) != 1 {
		t.Fatalf("SendOutbox through the proxy = %+v, %v", rep, err)
	}
	checkDelivered(t, srv, nk, rep.Sent[0], "from the outbox, through the proxy")

	asked := res.asked()
	if len(asked) != 3 {
		t.Errorf("the proxy resolved %q, want %s once per connection (3)", asked, unresolvable)
	}
	for _, name := range asked {
		if name != unresolvable {
			t.Errorf("the proxy was asked to resolve %q, want only %s", name, unresolvable)
		}
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
