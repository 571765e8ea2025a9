package protocol

import (
	"fmt"
	"net/url"
	"strings"
)

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
func ParseServerURL(s string) (ServerURL, error) {
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
