package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"

	"golang.org/x/net/proxy"
)

// ErrProxyUnreachable: nothing answers at the SOCKS5 proxy's address (Tor
// is not running, or listens elsewhere). Nothing was sent to the server.
var ErrProxyUnreachable = errors.New("the proxy does not answer: is Tor running?")

// ProxyDialer returns a dial function for the NetDialContext of the
// options that connects through the SOCKS5 proxy at proxyURL,
// socks5h://HOST:PORT, with host names resolved by the proxy (Tor):
// nothing about the server is looked up on this device's network. When
// the proxy itself cannot be reached, the error wraps ErrProxyUnreachable.
//
// It is meant for the dialer's NetDialContext, so that TLS, when the
// server URL is https or wss, runs inside the tunnel to the server. Setting
// gorilla/websocket's Proxy field together with a TLS dial hook instead
// sends the TLS handshake to the proxy's port.
func ProxyDialer(proxyURL string) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	u, err := url.Parse(proxyURL)
	if err != nil || u.Scheme != "socks5h" || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("proxy %q: want socks5h://HOST:PORT (the proxy resolves host names)", proxyURL)
	}
	// x/net/proxy's SOCKS5 client hands host names to the proxy
	// unresolved. User info, if any, goes to the proxy as its username and
	// password (Tor uses them to keep circuits apart).
	d, err := proxy.FromURL(u, toProxy{})
	if err != nil {
		return nil, fmt.Errorf("proxy %q: %w", proxyURL, err)
	}
	cd, ok := d.(proxy.ContextDialer)
	if !ok {
		return nil, fmt.Errorf("proxy %q: dialer has no context support", proxyURL)
	}
	return cd.DialContext, nil
}

// toProxy dials the proxy itself, marking a failure to reach it apart from
// a failure the proxy reports about the server, which x/net/proxy's
// errors do not tell apart.
type toProxy struct{}

func (toProxy) Dial(network, addr string) (net.Conn, error) {
	return toProxy{}.DialContext(context.Background(), network, addr)
}

func (toProxy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil && ctx.Err() == nil {
		return nil, &proxyError{addr: addr, err: err}
	}
	return c, err
}

// proxyError is a failure to reach the proxy: it matches
// ErrProxyUnreachable and its cause.
type proxyError struct {
	addr string
	err  error
}

func (e *proxyError) Error() string {
	cause := e.err
	if u := errors.Unwrap(cause); u != nil {
		cause = u // "connect: connection refused", without the addresses again
	}
	return fmt.Sprintf("proxy %s does not answer (%v): is Tor running?", e.addr, cause)
}

func (e *proxyError) Unwrap() []error { return []error{ErrProxyUnreachable, e.err} }
