package protocol_test

import (
	"errors"
	"strings"
	"testing"

	"fieldtip/protocol"
)

func TestParseServerURL(t *testing.T) {
	tests := []struct {
		in        string
		origin    string // "" when the URL must be refused
		webSocket string
	}{
		{"https://news.example", "https://news.example", "wss://news.example/ws"},
		{"https://news.example/", "https://news.example", "wss://news.example/ws"},
		{"http://localhost:8080", "http://localhost:8080", "ws://localhost:8080/ws"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080", "ws://127.0.0.1:8080/ws"},
		{"wss://news.example/s3cret/path", "https://news.example", "wss://news.example/s3cret/path"},
		{"ws://news.example:9000/x/", "http://news.example:9000", "ws://news.example:9000/x/"},
		{"https://news.example/ws", "https://news.example", "wss://news.example/ws"},
		{"https://news.example/a/b", "https://news.example", "wss://news.example/a/b"},
		{"HTTPS://News.Example/Path", "https://news.example", "wss://news.example/Path"},
		{"https://[::1]:8443/in", "https://[::1]:8443", "wss://[::1]:8443/in"},
		{"https://news.example/a%20b", "https://news.example", "wss://news.example/a%20b"},
		{"https://news.example/a%2Fb", "https://news.example", "wss://news.example/a%2Fb"},
		{"http://abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion", "http://abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion", "ws://abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion/ws"},

		{"", "", ""},
		{"news.example", "", ""},
		{"news.example/ws", "", ""},
		{"//news.example", "", ""},
		{"ftp://news.example", "", ""},
		{"file:///etc/passwd", "", ""},
		{"javascript:alert(1)", "", ""},
		{"https:news.example", "", ""},
		{"https://", "", ""},
		{"https:///ws", "", ""},
		{"https://:443", "", ""},
		{"https://user@news.example", "", ""},
		{"https://user:pass@news.example/ws", "", ""},
		{"https://@news.example", "", ""},
		{"https://news.example?x=1", "", ""},
		{"https://news.example/ws?token=1", "", ""},
		{"https://news.example/?", "", ""},
		{"https://news.example#top", "", ""},
		{"https://news.example/ws#x", "", ""},
		{"https://news.example:port", "", ""},
		{"https://news example", "", ""},
		{"https://news.example/\x7f", "", ""},
	}
	for _, tt := range tests {
		got, err := protocol.ParseServerURL(tt.in)
		if tt.origin == "" {
			if err == nil {
				t.Errorf("ParseServerURL(%q) = %+v, want an error", tt.in, got)
			}
			continue
		}
		want := protocol.ServerURL{Origin: tt.origin, WebSocket: tt.webSocket}
		if err != nil || got != want {
			t.Errorf("ParseServerURL(%q) = %+v, %v, want %+v", tt.in, got, err, want)
		}
	}
}

// A URL without a scheme says so and shows the URL meant (issue 12).
func TestParseServerURLNoScheme(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"localhost:8080/ws", "http://localhost:8080/ws"},
		{"[::1]:8443", "http://[::1]:8443"},
		{"news.example", "https://news.example"},
		{"news.example/s3cret", "https://news.example/s3cret"},
		{"//news.example", "https://news.example"},
	} {
		_, err := protocol.ParseServerURL(tt.in)
		if !errors.Is(err, protocol.ErrNoScheme) || !strings.HasSuffix(err.Error(), "here "+tt.want) {
			t.Errorf("ParseServerURL(%q) = %v, want ErrNoScheme ending in %q", tt.in, err, "here "+tt.want)
		}
	}
	for _, in := range []string{"ftp://news.example", "https:news.example", "javascript:alert(1)"} {
		if _, err := protocol.ParseServerURL(in); err == nil || errors.Is(err, protocol.ErrNoScheme) {
			t.Errorf("ParseServerURL(%q) = %v, want an error other than ErrNoScheme", in, err)
		}
	}
}
