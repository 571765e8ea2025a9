package newsdesk

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"fieldtip/crypto"
)

// fastKeys keeps scrypt cheap in tests.
var fastKeys = KeyOptions{WorkFactor: 10}

func TestNewsroomInit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "newsroom.key")
	verifier, err := NewsroomInit(path, "", "correct horse", fastKeys)
	if err != nil {
		t.Fatalf("NewsroomInit: %v", err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("newsroom key file mode = %v (%v), want 0600", st.Mode().Perm(), err)
	}

	k, err := LoadNewsroomKey(path, "correct horse")
	if err != nil {
		t.Fatalf("LoadNewsroomKey: %v", err)
	}
	if k.Verifier != verifier {
		t.Errorf("loaded key's verifier = %s, NewsroomInit said %s", k.Verifier, verifier)
	}
	if k.Signer.Name() != DefaultNewsroomName {
		t.Errorf("newsroom key name = %q, want %q", k.Signer.Name(), DefaultNewsroomName)
	}
	if _, err := LoadNewsroomKey(path, "wrong horse"); !errors.Is(err, crypto.ErrIncorrectPassphrase) {
		t.Errorf("LoadNewsroomKey with a wrong passphrase = %v, want ErrIncorrectPassphrase", err)
	}

	if _, err := NewsroomInit(path, "", "other passphrase", fastKeys); err == nil {
		t.Fatal("second NewsroomInit on the same file = nil, want a refusal")
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("refused NewsroomInit changed the key file")
	}
	assertNoTempFiles(t, filepath.Dir(path))

	for _, name := range []string{"has space", "has+plus", "tab\tname"} {
		p := filepath.Join(t.TempDir(), "n.key")
		if _, err := NewsroomInit(p, name, "pass", fastKeys); err == nil {
			t.Errorf("NewsroomInit with name %q = nil, want a refusal", name)
		}
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("refused NewsroomInit(name %q) left a file: %v", name, err)
		}
	}
}

// assertNoTempFiles fails if dir holds a leftover temporary file.
func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("temporary files left in %s: %v", dir, names)
	}
}

func TestEditorNew(t *testing.T) {
	tests := []struct {
		name    string
		classic bool
		prefix  string
	}{
		{"hybrid_default", false, "age1pq1"},
		{"classic", true, "age1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "alice.key")
			pub, err := EditorNew("alice", out, "editor pass", tt.classic, fastKeys)
			if err != nil {
				t.Fatalf("EditorNew: %v", err)
			}
			if pub.Label != "alice" || !bytes.HasPrefix([]byte(pub.Recipient), []byte(tt.prefix)) {
				t.Errorf("EditorNew = %+v, want label alice and a %s recipient", pub, tt.prefix)
			}
			pubText, err := os.ReadFile(out + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			if e, err := crypto.ParseEditorPublic(pubText); err != nil || e != *pub {
				t.Errorf("ParseEditorPublic(%s.pub) = %+v, %v; want %+v", out, e, err, *pub)
			}
			k, err := LoadEditorKey(out, "editor pass")
			if err != nil {
				t.Fatalf("LoadEditorKey: %v", err)
			}
			if k.Public != *pub {
				t.Errorf("loaded key's public half = %+v, want %+v", k.Public, *pub)
			}
			if _, err := LoadEditorKey(out, "Editor pass"); !errors.Is(err, crypto.ErrIncorrectPassphrase) {
				t.Errorf("LoadEditorKey with a wrong passphrase = %v, want ErrIncorrectPassphrase", err)
			}
		})
	}
}

func TestEditorNewRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "alice.key")
	if _, err := EditorNew("alice", out, "pass", true, fastKeys); err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(out)
	pub, _ := os.ReadFile(out + ".pub")

	if _, err := EditorNew("alice", out, "pass", true, fastKeys); err == nil {
		t.Fatal("second EditorNew on the same files = nil, want a refusal")
	}
	if k, _ := os.ReadFile(out); !bytes.Equal(k, key) {
		t.Error("refused EditorNew changed the key file")
	}
	if p, _ := os.ReadFile(out + ".pub"); !bytes.Equal(p, pub) {
		t.Error("refused EditorNew changed the public key file")
	}

	// Only the .pub exists: refused, and no secret key file appears.
	out2 := filepath.Join(dir, "bob.key")
	if err := os.WriteFile(out2+".pub", []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EditorNew("bob", out2, "pass", true, fastKeys); err == nil {
		t.Fatal("EditorNew over an existing .pub = nil, want a refusal")
	}
	if _, err := os.Stat(out2); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused EditorNew wrote %s: %v", out2, err)
	}
	if p, _ := os.ReadFile(out2 + ".pub"); string(p) != "keep me\n" {
		t.Errorf("refused EditorNew changed %s.pub to %q", out2, p)
	}

	// Only the key exists: refused, the key kept.
	out3 := filepath.Join(dir, "carol.key")
	if err := os.WriteFile(out3, []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EditorNew("carol", out3, "pass", true, fastKeys); err == nil {
		t.Fatal("EditorNew over an existing key file = nil, want a refusal")
	}
	if k, _ := os.ReadFile(out3); string(k) != "keep me\n" {
		t.Errorf("refused EditorNew changed %s to %q", out3, k)
	}
	assertNoTempFiles(t, dir)

	if _, err := EditorNew("Not A Label", filepath.Join(dir, "x.key"), "pass", true, fastKeys); err == nil {
		t.Error("EditorNew with an invalid label = nil, want a refusal")
	}
}

// bundleFixture is a newsroom key file and editor public key files.
type bundleFixture struct {
	keyPath string
	nk      *crypto.SignerKey
	pubs    []string
	log     string
}

func newBundleFixture(t *testing.T, labels ...string) *bundleFixture {
	t.Helper()
	dir := t.TempDir()
	f := &bundleFixture{keyPath: filepath.Join(dir, "newsroom.key")}
	var err error
	if f.nk, err = crypto.GenerateSignerKey(crypto.NewsroomKeyHeader, DefaultNewsroomName); err != nil {
		t.Fatal(err)
	}
	for _, l := range labels {
		k, err := crypto.GenerateEditorKey(l, true)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, l+".key.pub")
		if err := os.WriteFile(p, crypto.MarshalEditorPublic(k.Public), 0o644); err != nil {
			t.Fatal(err)
		}
		f.pubs = append(f.pubs, p)
	}
	logKey, err := crypto.GenerateSignerKey(crypto.LogKeyHeader, "fieldtip-log")
	if err != nil {
		t.Fatal(err)
	}
	f.log = logKey.Verifier
	return f
}

func (f *bundleFixture) spec() BundleSpec {
	return BundleSpec{Log: f.log, EditorFiles: f.pubs, Expires: 30 * 24 * time.Hour}
}

func TestBundleSignVersions(t *testing.T) {
	f := newBundleFixture(t, "alice")
	steps := []struct {
		version int64 // 0: the default
		want    int64
	}{
		{0, 1},
		{0, 2},
		{0, 3},
		{10, 10}, // explicit, above the last
		{0, 11},
		{5, 5}, // explicit, below the last: signed, not recorded
		{0, 12},
	}
	for i, s := range steps {
		spec := f.spec()
		spec.Version = s.version
		b, err := BundleSign(f.keyPath, f.nk, spec)
		if err != nil {
			t.Fatalf("step %d: BundleSign(version %d): %v", i, s.version, err)
		}
		if b.Version != s.want {
			t.Errorf("step %d: BundleSign(version %d) signed version %d, want %d", i, s.version, b.Version, s.want)
		}
		opened, err := crypto.OpenBundle(b.Signed(), f.nk.Verifier)
		if err != nil {
			t.Fatalf("step %d: OpenBundle(signed): %v", i, err)
		}
		if opened.Version != s.want {
			t.Errorf("step %d: signed text says version %d, want %d", i, opened.Version, s.want)
		}
	}
}

func TestBundleSignContent(t *testing.T) {
	f := newBundleFixture(t, "alice", "bob")
	now := time.Date(2026, 3, 1, 12, 30, 45, 999, time.UTC)
	spec := f.spec()
	spec.Revoke = []string{"zed", "carl", "dora"}
	spec.Policy = crypto.Policy{Clusters: 3, Approvals: 1}
	spec.Now = func() time.Time { return now }
	spec.Expires = 48 * time.Hour
	b, err := BundleSign(f.keyPath, f.nk, spec)
	if err != nil {
		t.Fatalf("BundleSign: %v", err)
	}
	opened, err := crypto.OpenBundle(b.Signed(), f.nk.Verifier)
	if err != nil {
		t.Fatalf("OpenBundle(signed): %v", err)
	}
	if want := []string{"carl", "dora", "zed"}; !slices.Equal(opened.Revoked, want) {
		t.Errorf("revoked = %q, want %q (sorted)", opened.Revoked, want)
	}
	if !slices.Equal(spec.Revoke, []string{"zed", "carl", "dora"}) {
		t.Errorf("BundleSign reordered the caller's revoke list: %q", spec.Revoke)
	}
	if want := now.Add(48 * time.Hour).Truncate(time.Second); !opened.Expires.Equal(want) {
		t.Errorf("expires = %s, want %s", opened.Expires, want)
	}
	if opened.Policy != spec.Policy || opened.Log != f.log || opened.Newsroom != f.nk.Verifier {
		t.Errorf("bundle = policy %+v log %s newsroom %s; want %+v %s %s", opened.Policy, opened.Log, opened.Newsroom, spec.Policy, f.log, f.nk.Verifier)
	}
	if len(opened.Editors) != 2 || opened.Editors[0].Label != "alice" || opened.Editors[1].Label != "bob" {
		t.Errorf("editors = %+v, want alice then bob", opened.Editors)
	}

	spec = f.spec()
	if b, err := BundleSign(f.keyPath, f.nk, spec); err != nil || b.Policy != crypto.DefaultPolicy {
		t.Errorf("BundleSign with no policy = %+v, %v; want the default policy", b, err)
	}
}

func TestBundleSignRefusals(t *testing.T) {
	f := newBundleFixture(t, "alice")
	garbage := filepath.Join(t.TempDir(), "garbage.pub")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(s *BundleSpec)
	}{
		{"no_log_key", func(s *BundleSpec) { s.Log = "" }},
		{"bad_log_key", func(s *BundleSpec) { s.Log = "not a key" }},
		{"no_expiry", func(s *BundleSpec) { s.Expires = 0 }},
		{"negative_expiry", func(s *BundleSpec) { s.Expires = -time.Hour }},
		{"no_editors", func(s *BundleSpec) { s.EditorFiles = nil }},
		{"missing_editor_file", func(s *BundleSpec) { s.EditorFiles = []string{filepath.Join(t.TempDir(), "nobody.key.pub")} }},
		{"garbage_editor_file", func(s *BundleSpec) { s.EditorFiles = []string{garbage} }},
		{"editor_twice", func(s *BundleSpec) { s.EditorFiles = append(s.EditorFiles, s.EditorFiles[0]) }},
		{"revoke_listed_editor", func(s *BundleSpec) { s.Revoke = []string{"alice"} }},
		{"revoke_twice", func(s *BundleSpec) { s.Revoke = []string{"bob", "bob"} }},
		{"revoke_invalid_label", func(s *BundleSpec) { s.Revoke = []string{"Bob Smith"} }},
		{"negative_version", func(s *BundleSpec) { s.Version = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := f.spec()
			tt.change(&spec)
			if b, err := BundleSign(f.keyPath, f.nk, spec); err == nil {
				t.Fatalf("BundleSign = version %d, want a refusal", b.Version)
			}
			if _, err := os.Stat(versionFile(f.keyPath)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused BundleSign recorded a version: %v", err)
			}
		})
	}
}
