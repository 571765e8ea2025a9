package crypto

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"
)

// MaxBundleSize caps a signed bundle: it becomes a log entry, and the
// tlog-tiles entry limit is 65,535 bytes.
const MaxBundleSize = 65535

// MaxEditors caps the editors a bundle may list.
const MaxEditors = 64

// Age stanza types of the two editor key types a bundle may use.
const (
	StanzaHybrid = "mlkem768x25519"
	StanzaX25519 = "X25519"
)

// Bundle is the newsroom's signed list of editors, the server's log key and
// the publication policy. A *Bundle returned by OpenBundle has verified.
//
// Its text, after the BundleHeader line, is (single spaces, this order):
//
//	newsroom <newsroom verifier key>
//	version <positive integer>
//	expires <RFC 3339 UTC, seconds>
//	log <server log verifier key>
//	policy clusters <n> approvals <n>
//	editor <label> <age recipient> <signing verifier> <cosigning verifier>   (1 or more)
//	revoke <label>                                                          (0 or more, sorted)
type Bundle struct {
	// Newsroom is the verifier key of the newsroom key that signs the bundle.
	Newsroom string
	// Version increases with every bundle the newsroom signs.
	Version int64
	// Expires is when sources stop trusting this bundle (UTC, seconds).
	Expires time.Time
	// Log is the verifier key of the server's log key, which signs receipts.
	Log string
	// Policy is the newsroom's publication policy.
	Policy Policy
	// Editors are the editors tips are encrypted to, in the order signed.
	Editors []Editor
	// Revoked lists labels of editors whose keys must no longer be trusted.
	Revoked []string

	signed []byte
}

// Policy is the publication policy a bundle fixes (AUDIT.md).
type Policy struct {
	// Clusters is how many independent supporting clusters a claim needs.
	Clusters int64
	// Approvals is how many distinct editors, not the author, must approve.
	Approvals int64
}

// DefaultPolicy is the policy of DESIGN.md §4 step 6.
var DefaultPolicy = Policy{Clusters: 2, Approvals: 2}

// Editor is one editor's public keys under a label the newsroom chose.
type Editor struct {
	Label     string
	Recipient string // age recipient, age1pq1… or age1…
	Sign      string // Ed25519 signed-note verifier key named Label
	Cosign    string // Ed25519 signed-note verifier key named CosignName(Label)
}

// Signed returns the exact signed note the bundle was opened from or signed
// as, or nil for a bundle that was built but not signed.
func (b *Bundle) Signed() []byte { return b.signed }

// StanzaType returns the age stanza type every editor's recipient produces.
func (b *Bundle) StanzaType() string {
	if strings.HasPrefix(b.Editors[0].Recipient, "age1pq1") {
		return StanzaHybrid
	}
	return StanzaX25519
}

// Recipients parses the editors' age recipients.
func (b *Bundle) Recipients() ([]age.Recipient, error) {
	var rs []age.Recipient
	for _, e := range b.Editors {
		r, err := parseRecipient(e.Recipient)
		if err != nil {
			return nil, fmt.Errorf("bundle: editor %q: %w", e.Label, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// Editor returns the editor with the given label, or nil.
func (b *Bundle) Editor(label string) *Editor {
	for i := range b.Editors {
		if b.Editors[i].Label == label {
			return &b.Editors[i]
		}
	}
	return nil
}

// Expired reports whether the bundle is past its expiry at now.
func (b *Bundle) Expired(now time.Time) bool { return !now.Before(b.Expires) }

// LogVerifier returns the verifier of the server's log key.
func (b *Bundle) LogVerifier() (note.Verifier, error) { return note.NewVerifier(b.Log) }

// ParseRecipient parses an editor's age recipient as a bundle lists it:
// hybrid post-quantum or X25519.
func ParseRecipient(s string) (age.Recipient, error) { return parseRecipient(s) }

func parseRecipient(s string) (age.Recipient, error) {
	// age quotes its input in errors: a secret key pasted where a
	// recipient belongs must not reach an error message.
	if strings.HasPrefix(strings.ToUpper(s), "AGE-SECRET-KEY-") {
		return nil, errors.New("an age secret key, not a recipient")
	}
	if strings.HasPrefix(s, "age1pq1") {
		return age.ParseHybridRecipient(s)
	}
	return age.ParseX25519Recipient(s)
}

// text formats the bundle body, checking it on the way.
func (b *Bundle) text() (string, error) {
	if err := b.check(); err != nil {
		return "", err
	}
	var s strings.Builder
	fmt.Fprintf(&s, "%s\nnewsroom %s\nversion %d\nexpires %s\nlog %s\npolicy clusters %d approvals %d\n",
		BundleHeader, b.Newsroom, b.Version, b.Expires.UTC().Format(time.RFC3339), b.Log, b.Policy.Clusters, b.Policy.Approvals)
	for _, e := range b.Editors {
		fmt.Fprintf(&s, "editor %s %s %s %s\n", e.Label, e.Recipient, e.Sign, e.Cosign)
	}
	for _, l := range b.Revoked {
		fmt.Fprintf(&s, "revoke %s\n", l)
	}
	return s.String(), nil
}

func (b *Bundle) check() error {
	if _, err := note.NewVerifier(b.Newsroom); err != nil {
		return fmt.Errorf("bundle: %w: newsroom key: %w", ErrMalformed, err)
	}
	if _, err := note.NewVerifier(b.Log); err != nil {
		return fmt.Errorf("bundle: %w: log key: %w", ErrMalformed, err)
	}
	if b.Version < 1 {
		return fmt.Errorf("bundle: %w: version %d is not positive", ErrMalformed, b.Version)
	}
	if b.Policy.Clusters < 1 || b.Policy.Approvals < 1 || b.Policy.Clusters > 100 || b.Policy.Approvals > MaxEditors {
		return fmt.Errorf("bundle: %w: policy clusters %d approvals %d out of range", ErrMalformed, b.Policy.Clusters, b.Policy.Approvals)
	}
	if err := b.checkEditors(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	seen := map[string]bool{}
	for _, e := range b.Editors {
		seen[e.Label] = true
	}
	if !slices.IsSorted(b.Revoked) {
		return fmt.Errorf("bundle: %w: revoked labels not sorted", ErrMalformed)
	}
	for i, l := range b.Revoked {
		if !ValidLabel(l) {
			return fmt.Errorf("bundle: %w: revoked label %q is not valid", ErrMalformed, clip(l))
		}
		if i > 0 && b.Revoked[i-1] == l {
			return fmt.Errorf("bundle: %w: label %q revoked twice", ErrMalformed, l)
		}
		if seen[l] {
			return fmt.Errorf("bundle: %w: editor %q both listed and revoked", ErrMalformed, l)
		}
	}
	return nil
}

// checkEditors checks the editor list on its own (also used for a single
// public key file).
func (b *Bundle) checkEditors() error {
	if len(b.Editors) == 0 || len(b.Editors) > MaxEditors {
		return fmt.Errorf("%w: %d editors, want 1 to %d", ErrMalformed, len(b.Editors), MaxEditors)
	}
	seen, keys := map[string]bool{}, map[string]bool{}
	hybrid := strings.HasPrefix(b.Editors[0].Recipient, "age1pq1")
	for _, e := range b.Editors {
		if !ValidLabel(e.Label) {
			return fmt.Errorf("%w: editor label %q is not valid", ErrMalformed, clip(e.Label))
		}
		if seen[e.Label] {
			return fmt.Errorf("%w: editor %q listed twice", ErrMalformed, e.Label)
		}
		seen[e.Label] = true
		// One person, one vote: the policy counts approvals by distinct
		// editors, so no two labels may share a key.
		for _, k := range []string{e.Recipient, e.Sign, e.Cosign} {
			if keys[k] {
				return fmt.Errorf("%w: editor %q reuses a key of another editor", ErrMalformed, e.Label)
			}
			keys[k] = true
		}
		if _, err := parseRecipient(e.Recipient); err != nil {
			return fmt.Errorf("%w: editor %q: age recipient: %w", ErrMalformed, e.Label, err)
		}
		if strings.HasPrefix(e.Recipient, "age1pq1") != hybrid {
			return fmt.Errorf("%w: editor %q: post-quantum and classic age keys mixed (age cannot encrypt to both)", ErrMalformed, e.Label)
		}
		if err := checkVerifier(e.Sign, e.Label); err != nil {
			return fmt.Errorf("%w: editor %q: signing key: %w", ErrMalformed, e.Label, err)
		}
		if err := checkVerifier(e.Cosign, CosignName(e.Label)); err != nil {
			return fmt.Errorf("%w: editor %q: cosigning key: %w", ErrMalformed, e.Label, err)
		}
	}
	return nil
}

func checkVerifier(vkey, name string) error {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}
	if v.Name() != name {
		return fmt.Errorf("key is named %q, want %q", clip(v.Name()), name)
	}
	return nil
}

// SignBundle signs b with the newsroom signer, whose verifier must be
// b.Newsroom, and returns the signed note. b.Signed is set on success.
func SignBundle(b *Bundle, newsroom note.Signer) ([]byte, error) {
	text, err := b.text()
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(b.Newsroom)
	if err != nil || v.Name() != newsroom.Name() || v.KeyHash() != newsroom.KeyHash() {
		return nil, fmt.Errorf("bundle: the newsroom line does not name the signing key")
	}
	msg, err := note.Sign(&note.Note{Text: text}, newsroom)
	if err != nil {
		return nil, fmt.Errorf("bundle: sign: %w", err)
	}
	if len(msg) > MaxBundleSize {
		return nil, fmt.Errorf("bundle: signed bundle is %d bytes, more than %d", len(msg), MaxBundleSize)
	}
	b.signed = msg
	return msg, nil
}

// OpenBundle verifies a signed bundle against the pinned newsroom verifier
// key and parses it. It checks signature and format only; expiry and version
// order are the caller's (Expired, and the highest version it has seen).
func OpenBundle(msg []byte, newsroom string) (*Bundle, error) {
	if len(msg) > MaxBundleSize {
		return nil, fmt.Errorf("bundle: %w: %d bytes, more than %d", ErrMalformed, len(msg), MaxBundleSize)
	}
	v, err := note.NewVerifier(newsroom)
	if err != nil {
		return nil, fmt.Errorf("bundle: pinned newsroom key: %w", err)
	}
	n, err := OpenNote("bundle", msg, note.VerifierList(v))
	if err != nil {
		return nil, err
	}
	b, err := parseBundle(n.Text)
	if err != nil {
		return nil, err
	}
	if b.Newsroom != newsroom {
		return nil, fmt.Errorf("bundle: %w: names newsroom key %q, not the pinned one", ErrMalformed, clip(b.Newsroom))
	}
	b.signed = msg
	return b, nil
}

// OpenBundleSelfSigned verifies a bundle against the newsroom key it names
// itself. Only a party that pins that key afterwards (the server, on first
// start) may use it; a source pins the newsroom key out of band and calls
// OpenBundle.
func OpenBundleSelfSigned(msg []byte) (*Bundle, error) {
	if len(msg) > MaxBundleSize {
		return nil, fmt.Errorf("bundle: %w: %d bytes, more than %d", ErrMalformed, len(msg), MaxBundleSize)
	}
	_, err := note.Open(msg, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil, fmt.Errorf("bundle: %w: %w", ErrMalformed, err)
	}
	r, err := newLineReader("bundle", unverified.Note.Text, BundleHeader)
	if err != nil {
		return nil, err
	}
	newsroom, err := r.value("newsroom")
	if err != nil {
		return nil, err
	}
	return OpenBundle(msg, newsroom)
}

func parseBundle(text string) (*Bundle, error) {
	r, err := newLineReader("bundle", text, BundleHeader)
	if err != nil {
		return nil, err
	}
	b := &Bundle{}
	if b.Newsroom, err = r.value("newsroom"); err != nil {
		return nil, err
	}
	if b.Version, err = r.int("version", 1, 1<<53); err != nil {
		return nil, err
	}
	exp, err := r.value("expires")
	if err != nil {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339, exp)
	if err != nil || t.UTC().Format(time.RFC3339) != exp {
		return nil, fmt.Errorf("bundle: %w: expires %q is not an RFC 3339 UTC time in seconds", ErrMalformed, clip(exp))
	}
	b.Expires = t.UTC()
	if b.Log, err = r.value("log"); err != nil {
		return nil, err
	}
	p, err := r.next("policy", 4)
	if err != nil {
		return nil, err
	}
	if p[0] != "clusters" || p[2] != "approvals" {
		return nil, fmt.Errorf("bundle: %w: policy line must be \"policy clusters N approvals N\"", ErrMalformed)
	}
	if b.Policy.Clusters, err = r.parseInt("clusters", p[1], 1, 100); err != nil {
		return nil, err
	}
	if b.Policy.Approvals, err = r.parseInt("approvals", p[3], 1, MaxEditors); err != nil {
		return nil, err
	}
	for r.peek() == "editor" {
		f, err := r.next("editor", 4)
		if err != nil {
			return nil, err
		}
		b.Editors = append(b.Editors, Editor{Label: f[0], Recipient: f[1], Sign: f[2], Cosign: f[3]})
	}
	for r.peek() == "revoke" {
		l, err := r.value("revoke")
		if err != nil {
			return nil, err
		}
		b.Revoked = append(b.Revoked, l)
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	// One encoding: the text must be exactly what formatting the parsed
	// value gives (catches, for example, a non-canonical key string).
	if canon, _ := b.text(); canon != text {
		return nil, fmt.Errorf("bundle: %w: not in canonical form", ErrMalformed)
	}
	return b, nil
}
