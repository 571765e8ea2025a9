package crypto

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// replyExample is the worked example of docs/replies.md: the derivation
// at the real cost, spelled out, and a sealed reply's sizes.
func replyExample() (string, error) {
	var s strings.Builder
	password := []byte(ReplyKDFDomain + "\x00" + testCodename)
	root := argon2.IDKey(password, []byte(exampleNewsroom), ReplyKDF.Time, ReplyKDF.MemoryKiB, 1, 32)
	fmt.Fprintf(&s, "codename          %s\n", testCodename)
	fmt.Fprintf(&s, "newsroom          %s\n", exampleNewsroom)
	fmt.Fprintf(&s, "root              %x\n", root)
	for _, l := range []struct{ name, info string }{
		{"X25519 seed", replyIdentityX25519Info},
		{"hybrid seed", replyIdentityHybridInfo},
		{"mailbox secret", mailboxSecretInfo},
	} {
		seed, err := hkdf.Expand(sha256.New, root, l.info, 32)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&s, "%-17s %x\n", l.name, seed)
	}
	k, err := DeriveReplyKeys(testCodename, exampleNewsroom, ReplyKDF)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&s, "mailbox key       %s\n", hex.EncodeToString(k.MailboxKey()))
	fmt.Fprintf(&s, "mailbox id        %s\n", k.Mailbox)
	fmt.Fprintf(&s, "X25519 identity   %s\n", k.x25519)
	x, _ := k.Address(StanzaX25519)
	fmt.Fprintf(&s, "X25519 recipient  %s\n", x.Recipient)
	fmt.Fprintf(&s, "hybrid identity   %s\n", k.hybrid)
	h, _ := k.Address(StanzaHybrid)
	fmt.Fprintf(&s, "hybrid recipient  %s…%s (%d characters)\n", h.Recipient[:16], h.Recipient[len(h.Recipient)-8:], len(h.Recipient))
	r := &Reply{Text: "Which company's trucks? <a name is enough>"}
	plain, err := MarshalReply(r)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&s, "\nreply plaintext (%d bytes, then zero padding):\n%s", len(plain), plain)
	for _, a := range []*ReplyAddress{h, x} {
		to, err := a.AgeRecipient()
		if err != nil {
			return "", err
		}
		ct, err := SealReply(r, to)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&s, "sealed to %.7s…  %d bytes\n", a.Recipient, len(ct))
	}
	id := [ReplyIDSize]byte{0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f}
	fmt.Fprintf(&s, "\ndelete of reply   %x\nsigned message    %x\nsignature         %x\n", id, deleteMessage(id), k.SignDelete(id))
	return s.String(), nil
}

func TestRepliesDoc(t *testing.T) {
	b, err := os.ReadFile("../docs/replies.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := replyExample()
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- output of replyExample in crypto/reply_doc_test.go -->\n```text\n"
	_, after, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("docs/replies.md has no %q", marker)
	}
	got, _, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatal("docs/replies.md: the example's block does not end")
	}
	if got != want {
		t.Errorf("docs/replies.md worked example:\n%s\nwant:\n%s", got, want)
	}
}
