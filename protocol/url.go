package protocol

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrNoScheme is a server URL without http://, https://, ws:// or wss://.
var ErrNoScheme = errors.New("no scheme")

// DefaultSourcePath is the sources' WebSocket path when a server URL names
// none.
const DefaultSourcePath = "/ws"

// ServerURL is a parsed --server value.
type ServerURL struct {
	// Origin is scheme://host[:port] with scheme http or https: the base of
	// the server's plain HTTP endpoints and the origin an editor's login is
	// bound to.
	Origin string
	// WebSocket is the sources' endpoint, ws:// or wss://.
	WebSocket string
}

// ParseServerURL accepts http://HOST[:PORT], https://HOST[:PORT], ws:// and
// wss:// URLs, optionally ending in the sources' WebSocket path (default
// DefaultSourcePath). It refuses user info, queries and fragments, which
// have no meaning here and could leak into logs.
// A URL without a scheme ("127.0.0.1:8080", "news.example") is an error
// wrapping ErrNoScheme that shows the URL meant.
func ParseServerURL(s string) (ServerURL, error) {
	if meant, ok := withScheme(s); ok {
		return ServerURL{}, fmt.Errorf("server URL %q: %w: want http://HOST:PORT or https://HOST, here %s", s, ErrNoScheme, meant)
	}
	u, err := url.Parse(s)
	if err != nil {
		return ServerURL{}, fmt.Errorf("server URL %q: %w", s, err)
	}
	var httpScheme, wsScheme string
	switch u.Scheme {
	case "http", "ws":
		httpScheme, wsScheme = "http", "ws"
	case "https", "wss":
		httpScheme, wsScheme = "https", "wss"
	default:
		return ServerURL{}, fmt.Errorf("server URL %q: scheme must be http, https, ws or wss", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return ServerURL{}, fmt.Errorf("server URL %q: no host", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.HasSuffix(s, "?") {
		return ServerURL{}, fmt.Errorf("server URL %q: only scheme, host, port and path are allowed", s)
	}
	path := u.EscapedPath()
	if path == "" || path == "/" {
		path = DefaultSourcePath
	}
	host := strings.ToLower(u.Host)
	return ServerURL{
		Origin:    httpScheme + "://" + host,
		WebSocket: wsScheme + "://" + host + path,
	}, nil
}

// withScheme returns the URL meant by s when s is a host, host:port or
// host/path with no scheme: http:// for this machine (the README's dev
// server), https:// for any other host. ok is false if s has a scheme or is
// no host at all.
func withScheme(s string) (meant string, ok bool) {
	rest := strings.TrimPrefix(s, "//")
	if strings.Contains(s, "://") || rest == "" {
		return "", false
	}
	for _, scheme := range []string{"http:", "https:", "ws:", "wss:"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			return "", false
		}
	}
	u, err := url.Parse("//" + rest)
	if err != nil || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() == "localhost" || ip != nil && ip.IsLoopback() {
		return "http://" + rest, true
	}
	return "https://" + rest, true
}
