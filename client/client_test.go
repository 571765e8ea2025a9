package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
			if err := Init(dir, tt.server, tt.newsroom); err == nil {
				t.Fatalf("Init(%q, %q) = nil, want an error", tt.server, tt.newsroom)
			}
			if _, err := LoadConfig(dir); !errors.Is(err, ErrNotInitialized) {
				t.Errorf("after a refused Init, LoadConfig = %v, want ErrNotInitialized", err)
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

func TestInitKeepsHighestVersion(t *testing.T) {
	nk := newTestNewsroom(t, true)
	dir := initClient(t, "https://tips.example", nk.key.Verifier)
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HighestBundleVersion != 0 || cfg.Server != "https://tips.example" || cfg.Newsroom != nk.key.Verifier {
		t.Fatalf("LoadConfig after Init = %+v", cfg)
	}
	cfg.HighestBundleVersion = 7
	if err := saveConfig(dir, cfg); err != nil {
		t.Fatal(err)
	}
	// Same newsroom key, another server: the server changes, the highest
	// version seen stays.
	if err := Init(dir, "https://mirror.example/secret", nk.key.Verifier); err != nil {
		t.Fatalf("re-Init with the same newsroom key: %v", err)
	}
	got, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Version: configVersion, Server: "https://mirror.example/secret", Newsroom: nk.key.Verifier, HighestBundleVersion: 7}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("LoadConfig after re-Init = %+v, want %+v", *got, want)
	}
}

func TestInitKeepsBundleAndSeeds(t *testing.T) {
	// Init again keeps the stored bundle and seeds (compose still works
	// offline if the fetch that follows fails, a rollback stays refused);
	// a successful Fetch replaces the seeds, which is how a source accepts
	// a changed epoch length (acceptSeed).
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 4, log) }, serverOptions{})
	dir := initClient(t, srv.URL, nk.key.Verifier)
	if _, _, err := Fetch(context.Background(), dir, SendOptions{}); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	before, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if before.Bundle == "" || len(before.Seeds) != 1 || before.HighestBundleVersion != 4 {
		t.Fatalf("after Fetch: bundle %d bytes, %d seeds, highest version %d; want a bundle, 1 seed, version 4", len(before.Bundle), len(before.Seeds), before.HighestBundleVersion)
	}
	if err := Init(dir, srv.URL, nk.key.Verifier); err != nil {
		t.Fatal(err)
	}
	got, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, *before) {
		t.Errorf("LoadConfig after re-Init = %+v, want %+v", *got, *before)
	}
	if _, _, err := Fetch(context.Background(), dir, SendOptions{}); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if after, err := LoadConfig(dir); err != nil || len(after.Seeds) != 1 {
		t.Fatalf("after a second Fetch: %v, want exactly the current seed", err)
	}
}

func TestConfigUpgradeFromVersion1(t *testing.T) {
	// A version 1 config (before the outbox: no bundle, no seeds) loads,
	// and the next save writes version 2 with the pin and the highest
	// version seen unchanged.
	nk := newTestNewsroom(t, true)
	srv := startServer(t, func(log string) []byte { return nk.bundle(t, 3, log) }, serverOptions{})
	dir := filepath.Join(t.TempDir(), "fieldtip")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	v1 := fmt.Sprintf(`{"version":1,"server":%q,"newsroom":%q,"highest_bundle_version":3}`+"\n", srv.URL, nk.key.Verifier)
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatalf("LoadConfig(version 1) = %v", err)
	}
	want := Config{Version: configVersion, Server: srv.URL, Newsroom: nk.key.Verifier, HighestBundleVersion: 3}
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("LoadConfig(version 1) = %+v, want %+v", *cfg, want)
	}
	// Compose needs what version 1 did not keep.
	if _, err := Compose(context.Background(), dir, &crypto.Tip{Text: "hello"}, ComposeOptions{}); err == nil {
		t.Errorf("Compose with a version 1 config (no bundle, no seed) = nil error")
	}
	if _, _, err := Fetch(context.Background(), dir, SendOptions{}); err != nil {
		t.Fatalf("Fetch with a version 1 config: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk map[string]any
	if err := json.Unmarshal(b, &onDisk); err != nil {
		t.Fatal(err)
	}
	if onDisk["version"] != float64(2) || onDisk["server"] != srv.URL || onDisk["newsroom"] != nk.key.Verifier || onDisk["highest_bundle_version"] != float64(3) {
		t.Errorf("config written back = %s, want version 2, the same server and newsroom, highest_bundle_version 3", b)
	}
	if s, _ := onDisk["bundle"].(string); !strings.HasPrefix(s, crypto.BundleHeader) {
		t.Errorf("config written back has bundle %q, want the signed bundle", onDisk["bundle"])
	}
	if seeds, _ := onDisk["seeds"].([]any); len(seeds) != 1 {
		t.Errorf("config written back has seeds %v, want one", onDisk["seeds"])
	}
}

func TestInitRefusesAnotherNewsroom(t *testing.T) {
	nk := newTestNewsroom(t, true)
	other := newTestNewsroom(t, true)
	dir := initClient(t, "https://tips.example", nk.key.Verifier)
	before, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := Init(dir, "https://tips.example", other.key.Verifier); err == nil {
		t.Fatal("Init with another newsroom key = nil, want a refusal")
	}
	after, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("refused Init changed the config:\n%s\nto\n%s", before, after)
	}
}

func TestLoadConfigRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name, content string
	}{
		{"not_json", "version 1\n"},
		{"future_version", `{"version":3,"server":"https://tips.example","newsroom":"x","highest_bundle_version":0}`},
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

func TestSendNotInitialized(t *testing.T) {
	res, err := Send(context.Background(), t.TempDir(), &crypto.Tip{Text: "x"}, SendOptions{})
	mustFail(t, res, err)
	if !errors.Is(err, ErrNotInitialized) {
		t.Errorf("Send in an empty dir = %v, want ErrNotInitialized", err)
	}
}
