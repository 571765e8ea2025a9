package server

import "testing"

// TestPublicOriginConfig: Config.PublicOrigin is an http(s) origin and
// nothing more, or unset (then the pages use Origin).
func TestPublicOriginConfig(t *testing.T) {
	for _, c := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"https://claims.example", true},
		{"http://127.0.0.1:8080", true},
		{"https://claims.example/", false},
		{"https://claims.example/news", false},
		{"wss://claims.example", false},
		{"claims.example", false},
		{"https://claims.example?x", false},
		{"https://u@claims.example", false},
	} {
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.PublicOrigin = c.origin
		if err := cfg.fill(); (err == nil) != c.ok {
			t.Errorf("fill with PublicOrigin %q = %v, want ok %v", c.origin, err, c.ok)
		}
	}
}
