package client

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
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
	if *got != want {
		t.Errorf("LoadConfig after re-Init = %+v, want %+v", *got, want)
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
		{"future_version", `{"version":2,"server":"https://tips.example","newsroom":"x","highest_bundle_version":0}`},
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
