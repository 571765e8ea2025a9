package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fieldtip/protocol"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"fieldtip/crypto"
)

func TestInitRefusesBadInput(t *testing.T) {
	nk, err := crypto.GenerateSignerKey(crypto.NewsroomKeyHeader, "test-newsroom")
	if err != nil {
		t.Fatal(err)
	}
	const goodURL = "https://tips.example"
	tests := []struct {
		name, server, newsroom string
	}{
		{"url_empty", "", nk.Verifier},
		{"url_no_scheme", "tips.example", nk.Verifier},
		{"url_ftp", "ftp://tips.example", nk.Verifier},
		{"url_no_host", "https://", nk.Verifier},
		{"url_user_info", "https://user:pass@tips.example", nk.Verifier},
		{"url_query", "https://tips.example/ws?x=1", nk.Verifier},
		{"url_fragment", "https://tips.example/#x", nk.Verifier},
		{"url_unparsable", "http://[::1", nk.Verifier},
		{"verifier_empty", goodURL, ""},
		{"verifier_garbage", goodURL, "not a key"},
		{"verifier_is_signer_key", goodURL, string(bytes.TrimSpace(bytes.TrimPrefix(nk.Marshal(), []byte(crypto.NewsroomKeyHeader+"\nsign "))))},
		{"verifier_truncated", goodURL, nk.Verifier[:len(nk.Verifier)-4]},
		{"verifier_hash_changed", goodURL, changeHash(nk.Verifier)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "fieldtip")
			if _, _, _, err := Init(context.Background(), dir, tt.server, tt.newsroom, InitOptions{}); err == nil {
				t.Fatalf("Init(%q, %q) = nil, want an error", tt.server, tt.newsroom)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after a refused Init, the config dir exists (%v), want nothing written", err)
			}
		})
	}
}

// changeHash flips a character of a verifier key's key hash.
func changeHash(vkey string) string {
	b := []byte(vkey)
	i := bytes.IndexByte(b, '+') + 1
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// configBytes returns the config file's bytes.
func configBytes(t testing.TB, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInitAgain(t *testing.T) {
	// Init again with the same newsroom key, at another URL of the same
	// server: the server changes, the highest version seen stays, the
	// seeds are replaced by the server's current one.
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 4, log) }, serverOptions{})
	dir := initDir(t, srv.URL, nk.key.Verifier)
	before := mustConfig(t, dir)
	if before.Bundle == "" || len(before.Seeds) != 1 || before.HighestBundleVersion != 4 || before.Version != configVersion {
		t.Fatalf("after Init: bundle %d bytes, %d seeds, highest version %d, version %d; want a bundle, 1 seed, version 4, %d",
			len(before.Bundle), len(before.Seeds), before.HighestBundleVersion, before.Version, configVersion)
	}
	cfg, b, seed, err := Init(context.Background(), dir, srv.URL+protocol.DefaultSourcePath, nk.key.Verifier, InitOptions{})
	if err != nil {
		t.Fatalf("re-Init with the same newsroom key: %v", err)
	}
	if b.Version != 4 || seed == nil || cfg.Server != srv.URL+protocol.DefaultSourcePath {
		t.Errorf("re-Init = %+v, bundle %d", cfg, b.Version)
	}
	got := mustConfig(t, dir)
	want := *before
	want.Server = srv.URL + protocol.DefaultSourcePath
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("LoadConfig after re-Init = %+v, want %+v", *got, want)
	}
}

func TestFailedInitChangesNothing(t *testing.T) {
	// Issue 12: a failed init (a server that does not answer, a key that
	// did not sign the bundle, the log key given as the newsroom's) leaves
	// the config as it was; a refused one says what to do.
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 1, log) }, serverOptions{})
	dir := initDir(t, srv.URL, nk.key.Verifier)
	before := configBytes(t, dir)
	down := "http://" + closedAddr(t)
	other := newTestNewsroom(t, true)
	tests := []struct {
		name, server, newsroom string
		opts                   InitOptions
		want                   error // nil: any error
		says                   string
	}{
		{"server_down", down, nk.key.Verifier, InitOptions{}, nil, "connect to server"},
		{"log_key_as_newsroom", srv.URL, srv.LogKey.Verifier, InitOptions{ReplaceNewsroom: true}, crypto.ErrUnknownSigner, "the server's log key"},
		{"log_key_as_newsroom_unreplaced", srv.URL, srv.LogKey.Verifier, InitOptions{}, ErrOtherNewsroom, ""},
		{"other_newsroom", srv.URL, other.key.Verifier, InitOptions{}, ErrOtherNewsroom, nk.key.Verifier},
		{"other_newsroom_replaced_but_not_its_bundle", srv.URL, other.key.Verifier, InitOptions{ReplaceNewsroom: true}, crypto.ErrUnknownSigner, ""},
		{"proxy_down", srv.URL, nk.key.Verifier, InitOptions{Proxy: "socks5h://" + closedAddr(t)}, ErrProxyUnreachable, "is Tor running?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := Init(context.Background(), dir, tt.server, tt.newsroom, tt.opts)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Init = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Init = %q, want it to say %q", err, tt.says)
			}
			if after := configBytes(t, dir); !bytes.Equal(after, before) {
				t.Errorf("a failed Init changed the config:\n%s\nto\n%s", before, after)
			}
		})
	}
}

func TestInitReplaceNewsroom(t *testing.T) {
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 5, log) }, serverOptions{})
	other := newTestNewsroom(t, true)
	srv2 := startServer(t, func(log string) []byte { return other.bundle(t, 2, log) }, serverOptions{})
	dir := initDir(t, srv.URL, nk.key.Verifier)
	if _, _, _, err := Init(context.Background(), dir, srv2.URL, other.key.Verifier, InitOptions{ReplaceNewsroom: true}); err != nil {
		t.Fatalf("Init --replace-newsroom: %v", err)
	}
	cfg := mustConfig(t, dir)
	if cfg.Newsroom != other.key.Verifier || cfg.HighestBundleVersion != 2 || cfg.Server != srv2.URL {
		t.Errorf("after replacing the newsroom: %+v; want the new key, its server and its bundle's version 2", cfg)
	}
}

func TestConfigUpgrade(t *testing.T) {
	// A version 1 config (before the outbox: no bundle, no seeds) or 2
	// (no proxy) loads, and the next Init writes version 3 with the pin
	// and the highest version seen unchanged.
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 3, log) }, serverOptions{})
	for _, v := range []int{1, 2} {
		t.Run(fmt.Sprint("version_", v), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "fieldtip")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			old := fmt.Sprintf(`{"version":%d,"server":%q,"newsroom":%q,"highest_bundle_version":3}`+"\n", v, srv.URL, nk.key.Verifier)
			if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(old), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(dir)
			if err != nil {
				t.Fatalf("LoadConfig(version %d) = %v", v, err)
			}
			want := Config{Version: configVersion, Server: srv.URL, Newsroom: nk.key.Verifier, HighestBundleVersion: 3, dir: dir}
			if !reflect.DeepEqual(*cfg, want) {
				t.Errorf("LoadConfig(version %d) = %+v, want %+v", v, *cfg, want)
			}
			// Compose needs what version 1 did not keep.
			if _, err := Compose(context.Background(), cfg, &crypto.Tip{Text: "hello"}, ComposeOptions{}); err == nil {
				t.Errorf("Compose with no bundle and no seed = nil error")
			}
			if _, _, _, err := Init(context.Background(), dir, srv.URL, nk.key.Verifier, InitOptions{}); err != nil {
				t.Fatalf("Init over a version %d config: %v", v, err)
			}
			var onDisk map[string]any
			if err := json.Unmarshal(configBytes(t, dir), &onDisk); err != nil {
				t.Fatal(err)
			}
			if onDisk["version"] != float64(configVersion) || onDisk["server"] != srv.URL || onDisk["newsroom"] != nk.key.Verifier || onDisk["highest_bundle_version"] != float64(3) {
				t.Errorf("config written back = %v, want version %d, the same server and newsroom, highest_bundle_version 3", onDisk, configVersion)
			}
			if s, _ := onDisk["bundle"].(string); !strings.HasPrefix(s, crypto.BundleHeader) {
				t.Errorf("config written back has bundle %q, want the signed bundle", onDisk["bundle"])
			}
			if seeds, _ := onDisk["seeds"].([]any); len(seeds) != 1 {
				t.Errorf("config written back has seeds %v, want one", onDisk["seeds"])
			}
		})
	}
}

func TestLoadConfigRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name, content string
	}{
		{"not_json", "version 1\n"},
		{"future_version", `{"version":4,"server":"https://tips.example","newsroom":"x","highest_bundle_version":0}`},
		{"proxy_not_socks5h", `{"version":3,"server":"https://tips.example","newsroom":"x","highest_bundle_version":0,"proxy":"socks5://127.0.0.1:9050"}`},
		{"version_0", `{"version":0,"server":"https://tips.example","newsroom":"x","highest_bundle_version":0}`},
		{"no_version", `{"server":"https://tips.example"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadConfig(dir); err == nil || errors.Is(err, ErrNotInitialized) {
				t.Errorf("LoadConfig(%q) = %v, want a parse error", tt.content, err)
			}
		})
	}
}

func TestLoadConfigNotInitialized(t *testing.T) {
	if _, err := LoadConfig(t.TempDir()); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("LoadConfig in an empty dir = %v, want ErrNotInitialized", err)
	}
}
