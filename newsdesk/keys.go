package newsdesk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"fieldtip/crypto"
	"fieldtip/internal/atomicfile"
)

// KeyOptions tune how key files are written. The zero value is valid.
type KeyOptions struct {
	// WorkFactor is the scrypt work factor, log2 N (default
	// crypto.DefaultScryptWorkFactor).
	WorkFactor int
}

func (o KeyOptions) workFactor() int {
	if o.WorkFactor == 0 {
		return crypto.DefaultScryptWorkFactor
	}
	return o.WorkFactor
}

// DefaultNewsroomName is the signed-note key name of a new newsroom key.
const DefaultNewsroomName = "fieldtip-newsroom"

// NewsroomInit creates the newsroom's Ed25519 signing key, writes it to
// out sealed with passphrase, and returns its verifier key. It refuses to
// replace an existing file.
func NewsroomInit(out, name, passphrase string, opts KeyOptions) (string, error) {
	if name == "" {
		name = DefaultNewsroomName
	}
	if strings.ContainsAny(name, "+ \t\n") {
		return "", fmt.Errorf("newsroom name %q may not contain '+' or spaces", name)
	}
	k, err := crypto.GenerateSignerKey(crypto.NewsroomKeyHeader, name)
	if err != nil {
		return "", err
	}
	sealed, err := crypto.SealWithPassphrase(k.Marshal(), passphrase, opts.workFactor())
	if err != nil {
		return "", err
	}
	if err := writeNew(out, sealed, 0o600); err != nil {
		return "", err
	}
	return k.Verifier, nil
}

// LoadNewsroomKey opens a newsroom key file.
func LoadNewsroomKey(path, passphrase string) (*crypto.SignerKey, error) {
	plain, err := openKeyFile(path, passphrase)
	if err != nil {
		return nil, err
	}
	k, err := crypto.ParseSignerKey(crypto.NewsroomKeyHeader, plain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// EditorNew creates an editor's keys under label, writes them to out
// sealed with passphrase and the public half to out+".pub". classic selects
// X25519 instead of the hybrid post-quantum age key.
func EditorNew(label, out, passphrase string, classic bool, opts KeyOptions) (*crypto.Editor, error) {
	k, err := crypto.GenerateEditorKey(label, classic)
	if err != nil {
		return nil, err
	}
	sealed, err := crypto.SealWithPassphrase(k.Marshal(), passphrase, opts.workFactor())
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(out + ".pub"); err == nil {
		return nil, fmt.Errorf("%s.pub exists already; not replacing it", out)
	}
	if err := writeNew(out, sealed, 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(out+".pub", crypto.MarshalEditorPublic(k.Public), 0o644); err != nil {
		return nil, err
	}
	return &k.Public, nil
}

// LoadEditorKey opens an editor key file.
func LoadEditorKey(path, passphrase string) (*crypto.EditorKey, error) {
	plain, err := openKeyFile(path, passphrase)
	if err != nil {
		return nil, err
	}
	k, err := crypto.ParseEditorKey(plain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// CheckKeyFile returns an error saying what path is if it is not a
// passphrase-protected key file (a *crypto.NotKeyFileError when it is
// another file fieldtip makes), before anyone is asked for a passphrase.
func CheckKeyFile(path string) error {
	b, err := readLimited(path, crypto.MaxKeyFileSize)
	if err != nil {
		return err
	}
	if err := crypto.CheckKeyFile(b); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func openKeyFile(path, passphrase string) ([]byte, error) {
	sealed, err := readLimited(path, crypto.MaxKeyFileSize)
	if err != nil {
		return nil, err
	}
	plain, err := crypto.OpenWithPassphrase(sealed, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return plain, nil
}

// BundleSpec is what newsdesk bundle sign puts in a bundle.
type BundleSpec struct {
	// Log is the server's log verifier key (fieldtipd --print-log-key).
	Log string
	// EditorFiles are LABEL.key.pub files.
	EditorFiles []string
	// Revoke lists labels of revoked editors.
	Revoke []string
	// Version, if not zero, is the bundle version; by default one more
	// than the last version this newsroom key signed.
	Version int64
	// Expires is how long the bundle is valid from now.
	Expires time.Duration
	// Policy is the publication policy (default crypto.DefaultPolicy).
	Policy crypto.Policy
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// versionFile records, next to a newsroom key file, the last bundle version
// signed with it. It is public and only a convenience: the server and the
// sources enforce that versions grow.
func versionFile(newsroomKey string) string { return newsroomKey + ".last-version" }

// BundleSign signs a bundle with the newsroom key at keyPath and returns
// it. It records the version signed next to the key file.
func BundleSign(keyPath string, nk *crypto.SignerKey, spec BundleSpec) (*crypto.Bundle, error) {
	if spec.Now == nil {
		spec.Now = time.Now
	}
	if spec.Policy == (crypto.Policy{}) {
		spec.Policy = crypto.DefaultPolicy
	}
	if spec.Expires <= 0 {
		return nil, fmt.Errorf("bundle expiry %s is not positive", spec.Expires)
	}
	if spec.Log == "" {
		return nil, errors.New("the server's log key is required (fieldtipd --print-log-key)")
	}
	last, err := lastVersion(keyPath)
	if err != nil {
		return nil, err
	}
	if spec.Version == 0 {
		spec.Version = last + 1
	}
	b := &crypto.Bundle{
		Newsroom: nk.Verifier,
		Version:  spec.Version,
		Expires:  spec.Now().Add(spec.Expires).UTC().Truncate(time.Second),
		Log:      spec.Log,
		Policy:   spec.Policy,
		Revoked:  append([]string(nil), spec.Revoke...),
	}
	for _, f := range spec.EditorFiles {
		text, err := readLimited(f, crypto.MaxKeyFileSize)
		if err != nil {
			return nil, err
		}
		e, err := crypto.ParseEditorPublic(text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		b.Editors = append(b.Editors, e)
	}
	slices.Sort(b.Revoked)
	if _, err := crypto.SignBundle(b, nk.Signer); err != nil {
		return nil, err
	}
	if b.Version > last {
		if err := os.WriteFile(versionFile(keyPath), []byte(strconv.FormatInt(b.Version, 10)+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("record bundle version: %w", err)
		}
	}
	return b, nil
}

func lastVersion(keyPath string) (int64, error) {
	b, err := os.ReadFile(versionFile(keyPath))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s: not a version number", versionFile(keyPath))
	}
	return v, nil
}

// writeNew writes a file that must not exist yet, durably, creating its
// directory.
func writeNew(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteNew(path, data, perm)
}

func readLimited(path string, max int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, st.Size(), max)
	}
	return os.ReadFile(path)
}

// WriteBundle writes a signed bundle to path, replacing an older file.
func WriteBundle(path string, signed []byte) error {
	return atomicfile.Replace(path, signed, 0o644)
}
