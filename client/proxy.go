package client

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"golang.org/x/net/proxy"
)

// ProxyDialer returns a dial function for SendOptions.NetDialContext that
// connects through the SOCKS5 proxy at proxyURL, socks5h://HOST:PORT, with
// host names resolved by the proxy (Tor): nothing about the server is
// looked up on this device's network.
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
	d, err := proxy.FromURL(u, proxy.Direct)
	if err != nil {
		return nil, fmt.Errorf("proxy %q: %w", proxyURL, err)
	}
	cd, ok := d.(proxy.ContextDialer)
	if !ok {
		return nil, fmt.Errorf("proxy %q: dialer has no context support", proxyURL)
	}
	return cd.DialContext, nil
}
