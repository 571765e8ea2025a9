package crypto

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
)

const exampleNewsroom = "newsroom.example+b7c03b27+AX+Spp/Q2Bvh4j4NfYglx1e2tXD/5wp5xLhxOPT4Ahry"

// cheapReplyKDF keeps tests fast; the real cost is checked once.
var cheapReplyKDF = CodenameKDF{MemoryKiB: 64, Time: 1}

var testReplyKeys = sync.OnceValue(func() *ReplyKeys {
	k, err := DeriveReplyKeys(testCodename, exampleNewsroom, cheapReplyKDF)
	if err != nil {
		panic(err)
	}
	return k
})

func TestBech32(t *testing.T) {
	// BIP 173's valid vectors whose data is whole bytes.
	data, _ := hex.DecodeString("00443214c74254b635cf84653a56d7c675be77df")
	for _, c := range []struct {
		hrp  string
		data []byte
		want string
	}{
		{"a", nil, "a12uel5l"},
		{"abcdef", data, "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"},
	} {
		if got := bech32Encode(c.hrp, c.data); got != c.want {
			t.Errorf("bech32Encode(%q, %x) = %s, want %s", c.hrp, c.data, got, c.want)
		}
	}
	// age's own encoder gives back what ours wrote, for many seeds.
	for range 64 {
		seed := make([]byte, 32)
		rand.Read(seed)
		x := strings.ToUpper(bech32Encode("age-secret-key-", seed))
		xi, err := age.ParseX25519Identity(x)
		if err != nil || xi.String() != x {
			t.Fatalf("age does not read back X25519 key %s: %v", x, err)
		}
		h := strings.ToUpper(bech32Encode("age-secret-key-pq-", seed))
		hi, err := age.ParseHybridIdentity(h)
		if err != nil || hi.String() != h {
			t.Fatalf("age does not read back hybrid key %s: %v", h, err)
		}
	}
}

// TestDeriveReplyKeysKnownAnswer checks the derivation at the real cost
// against values computed outside Go: the root with the Argon2 reference
// implementation's command line (argon2 … -id -t 3 -m 16 -p 1 -l 32), the
// rest with Python's cryptography (docs/replies.md, "Worked example").
func TestDeriveReplyKeysKnownAnswer(t *testing.T) {
	k, err := DeriveReplyKeys(testCodename, exampleNewsroom, ReplyKDF)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(k.MailboxKey()), "79131d5bf097dc2a615aae279143d67b07a3b0da066a168603dc14f8d8354ee7"; got != want {
		t.Errorf("mailbox key = %s, want %s", got, want)
	}
	if got, want := k.Mailbox.String(), "G6FGz0GlNaJcjlra3TjIjUDkDbecmTnzwq7YBzAM__Y"; got != want {
		t.Errorf("mailbox id = %s, want %s", got, want)
	}
	a, err := k.Address(StanzaX25519)
	if err != nil {
		t.Fatal(err)
	}
	if want := "age14ayc4rw94afalzd0r4duy7chcjhvzepn85pywnp5hd8sag4w0etqjvs5ly"; a.Recipient != want {
		t.Errorf("X25519 reply recipient = %s, want %s", a.Recipient, want)
	}
	h, err := k.Address(StanzaHybrid)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.ToUpper(bech32Encode("age-secret-key-pq-", mustHex(t, "98d38ee2b420e5baa04e54f0ccd3f29b5db3be20e9fcce5e2703730867dd4abe"))); k.hybrid.String() != want {
		t.Errorf("hybrid reply identity = %s, want %s", k.hybrid.String(), want)
	}
	if !strings.HasPrefix(h.Recipient, "age1pq1") || h.Mailbox != k.Mailbox {
		t.Errorf("hybrid address = %.20s… %s", h.Recipient, h.Mailbox)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeriveReplyKeysSeparates(t *testing.T) {
	base := testReplyKeys()
	again, _ := DeriveReplyKeys(testCodename, exampleNewsroom, cheapReplyKDF)
	if again.Mailbox != base.Mailbox {
		t.Fatal("DeriveReplyKeys is not deterministic")
	}
	other := func(codename, newsroom string, kdf CodenameKDF) *ReplyKeys {
		k, err := DeriveReplyKeys(codename, newsroom, kdf)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	for name, k := range map[string]*ReplyKeys{
		"other codename": other(testCodename+" basin", exampleNewsroom, cheapReplyKDF),
		"other newsroom": other(testCodename, "other.example+00000000+AX+Spp/Q2Bvh4j4NfYglx1e2tXD/5wp5xLhxOPT4Ahry", cheapReplyKDF),
		"other cost":     other(testCodename, exampleNewsroom, CodenameKDF{MemoryKiB: 128, Time: 1}),
	} {
		if k.Mailbox == base.Mailbox {
			t.Errorf("%s: same mailbox", name)
		}
		a1, _ := k.Address(StanzaX25519)
		a2, _ := base.Address(StanzaX25519)
		if a1.Recipient == a2.Recipient {
			t.Errorf("%s: same reply recipient", name)
		}
	}
	// The outbox key of the same codename has nothing in common with the
	// reply keys: another domain string.
	var salt [32]byte
	copy(salt[:], exampleNewsroom)
	ok := DeriveOutboxKey(testCodename, salt, cheapReplyKDF)
	if bytes.Contains(ok[:], base.Mailbox[:8]) {
		t.Error("outbox key shares bytes with the mailbox id")
	}
	if _, err := DeriveReplyKeys(testCodename, "", cheapReplyKDF); err == nil {
		t.Error("DeriveReplyKeys without a newsroom key: no error")
	}
	if _, err := base.Address("scrypt"); err == nil {
		t.Error("Address(scrypt): no error")
	}
}

func TestReplyRoundTrip(t *testing.T) {
	k := testReplyKeys()
	for _, typ := range []string{StanzaHybrid, StanzaX25519} {
		a, err := k.Address(typ)
		if err != nil {
			t.Fatal(err)
		}
		r, err := a.AgeRecipient()
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{"Which company's trucks?", strings.Repeat("é", MaxReplyText/2), strings.Repeat("<", MaxReplyText)} {
			ct, err := SealReply(&Reply{Text: text}, r)
			if err != nil {
				t.Fatalf("%s: SealReply(%d bytes): %v", typ, len(text), err)
			}
			if !ValidReplySize(len(ct)) || int64(len(ct)) != Bucket(int64(len(ct)), ReplyFrameSize) {
				t.Errorf("%s: sealed reply of %d bytes is not a bucket size", typ, len(ct))
			}
			if err := CheckReplyCiphertext(ct); err != nil {
				t.Errorf("%s: CheckReplyCiphertext: %v", typ, err)
			}
			got, err := OpenReply(ct, k.Identities()...)
			if err != nil || got.Text != text {
				t.Fatalf("%s: OpenReply = %v, %v", typ, got, err)
			}
			other, _ := DeriveReplyKeys(testCodename+" basin", exampleNewsroom, cheapReplyKDF)
			if _, err := OpenReply(ct, other.Identities()...); !errors.Is(err, ErrNotForMe) {
				t.Errorf("%s: OpenReply with another codename's keys = %v, want ErrNotForMe", typ, err)
			}
		}
	}
	// A short reply to a post-quantum recipient is one 4 KiB frame.
	a, _ := k.Address(StanzaHybrid)
	r, _ := a.AgeRecipient()
	ct, _ := SealReply(&Reply{Text: "Which company's trucks?"}, r)
	if len(ct) != ReplyFrameSize {
		t.Errorf("short reply sealed to %d bytes, want %d", len(ct), ReplyFrameSize)
	}
}

func TestParseReply(t *testing.T) {
	h := ReplyHeader + "\n"
	for _, c := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"ok", h + `{"text":"hello"}` + "\n", true},
		{"ok padded", h + `{"text":"hello"}` + "\n\x00\x00\x00", true},
		{"ok newline and tab", h + `{"text":"a\nb\tc"}` + "\n", true},
		{"no header", `{"text":"hello"}` + "\n", false},
		{"tip header", TipHeader + "\n" + `{"text":"hello"}` + "\n", false},
		{"CRLF", ReplyHeader + "\r\n" + `{"text":"hello"}` + "\n", false},
		{"no manifest line", h + `{"text":"hello"}`, false},
		{"empty text", h + `{"text":""}` + "\n", false},
		{"unknown member", h + `{"text":"a","from":"alice"}` + "\n", false},
		{"missing text", h + `{}` + "\n", false},
		{"whitespace", h + `{ "text":"a"}` + "\n", false},
		{"other case key", h + `{"Text":"a"}` + "\n", false},
		{"escaped letter", h + `{"text":"\u0061"}` + "\n", false},
		{"control character", h + `{"text":"a\u0007"}` + "\n", false},
		{"bidi override", h + `{"text":"a` + "\u202e" + `"}` + "\n", false},
		{"nonzero padding", h + `{"text":"a"}` + "\n\x00\x01", false},
		{"text too long", h + `{"text":"` + strings.Repeat("a", MaxReplyText+1) + `"}` + "\n", false},
		{"text longest", h + `{"text":"` + strings.Repeat("a", MaxReplyText) + `"}` + "\n", true},
		{"invalid UTF-8", h + "{\"text\":\"\xff\"}\n", false},
		{"two objects", h + `{"text":"a"}{"text":"b"}` + "\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseReply([]byte(c.in))
			if c.ok && err != nil {
				t.Fatalf("ParseReply = %v", err)
			}
			if !c.ok && !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseReply = %v, %v, want ErrMalformed", r, err)
			}
		})
	}
	if _, err := MarshalReply(&Reply{Text: ""}); !errors.Is(err, ErrMalformed) {
		t.Errorf("MarshalReply(empty) = %v", err)
	}
}

func TestCheckReplyCiphertext(t *testing.T) {
	k := testReplyKeys()
	a, _ := k.Address(StanzaX25519)
	r, _ := a.AgeRecipient()
	ct, err := SealReply(&Reply{Text: "hello"}, r)
	if err != nil {
		t.Fatal(err)
	}
	// Two recipients: not a reply.
	xi, _ := age.GenerateX25519Identity()
	var two bytes.Buffer
	w, _ := age.Encrypt(&two, r, xi.Recipient())
	w.Write(make([]byte, ReplyFrameSize-70-2*98-16-16))
	w.Close()
	for _, c := range []struct {
		name string
		ct   []byte
		ok   bool
	}{
		{"ok", ct, true},
		{"short by one", ct[:len(ct)-1], false},
		{"one more", append(bytes.Clone(ct), 0), false},
		{"empty", nil, false},
		{"zeros", make([]byte, ReplyFrameSize), false},
		{"two recipients", two.Bytes(), false},
		{"too large", make([]byte, MaxReplySize+ReplyFrameSize), false},
	} {
		err := CheckReplyCiphertext(c.ct)
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrBadCiphertext)) {
			t.Errorf("%s: CheckReplyCiphertext = %v", c.name, err)
		}
	}
	if len(two.Bytes()) != ReplyFrameSize {
		t.Fatalf("two-recipient file is %d bytes, the test wants %d", len(two.Bytes()), ReplyFrameSize)
	}
}

func TestCheckDelete(t *testing.T) {
	k := testReplyKeys()
	other, _ := DeriveReplyKeys(testCodename+" basin", exampleNewsroom, cheapReplyKDF)
	id := [ReplyIDSize]byte{1, 2, 3}
	sig := k.SignDelete(id)
	for _, c := range []struct {
		name    string
		mailbox MailboxID
		key     []byte
		reply   [ReplyIDSize]byte
		sig     []byte
		want    error
	}{
		{"ok", k.Mailbox, k.MailboxKey(), id, sig, nil},
		{"another mailbox's key", k.Mailbox, other.MailboxKey(), id, other.SignDelete(id), ErrNotMailboxKey},
		{"another reply", k.Mailbox, k.MailboxKey(), [ReplyIDSize]byte{9}, sig, ErrBadSignature},
		{"signature altered", k.Mailbox, k.MailboxKey(), id, append([]byte{sig[0] ^ 1}, sig[1:]...), ErrBadSignature},
		{"short key", k.Mailbox, k.MailboxKey()[:31], id, sig, ErrMalformed},
		{"short signature", k.Mailbox, k.MailboxKey(), id, sig[:63], ErrMalformed},
	} {
		err := CheckDelete(c.mailbox, c.key, c.reply, c.sig)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: CheckDelete = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestParseMailboxID(t *testing.T) {
	k := testReplyKeys()
	s := k.Mailbox.String()
	if m, err := ParseMailboxID(s); err != nil || m != k.Mailbox {
		t.Fatalf("ParseMailboxID(%s) = %v, %v", s, m, err)
	}
	for _, bad := range []string{"", s[:42], s + "A", s + "=", strings.ReplaceAll(s, "_", "/"), " " + s, s[:42] + "Z"} {
		if _, err := ParseMailboxID(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseMailboxID(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestTipV2(t *testing.T) {
	k := testReplyKeys()
	for _, typ := range []string{StanzaHybrid, StanzaX25519} {
		a, _ := k.Address(typ)
		tip := &Tip{Text: "trucks", Attachments: []Attachment{{Name: "a.txt", Type: "text/plain", Data: []byte("x")}}, Reply: a}
		plain, err := MarshalTip(tip)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(plain, []byte(TipHeaderV2+"\n")) {
			t.Fatalf("a tip with a reply address starts %q", plain[:16])
		}
		got, err := ParseTip(append(plain, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if got.Reply == nil || *got.Reply != *a || got.Text != "trucks" || string(got.Attachments[0].Data) != "x" {
			t.Fatalf("ParseTip = %+v", got)
		}
	}
	// A tip without one is still written, and read, as v1.
	plain, _ := MarshalTip(&Tip{Text: "old"})
	if !bytes.HasPrefix(plain, []byte(TipHeader+"\n")) {
		t.Fatalf("a tip without a reply address starts %q", plain[:16])
	}
	if got, err := ParseTip(plain); err != nil || got.Reply != nil {
		t.Fatalf("ParseTip(v1) = %+v, %v", got, err)
	}
	a, _ := k.Address(StanzaX25519)
	h2 := TipHeaderV2 + "\n"
	reply := `"reply":{"recipient":"` + a.Recipient + `","mailbox":"` + a.Mailbox.String() + `"}`
	for _, c := range []struct {
		name string
		in   string
	}{
		{"v2 without reply", h2 + `{"text":"a","attachments":[]}` + "\n"},
		{"v2 null reply", h2 + `{"text":"a","attachments":[],"reply":null}` + "\n"},
		{"v1 with reply", TipHeader + "\n" + `{"text":"a","attachments":[],` + reply + `}` + "\n"},
		{"reply first", h2 + `{` + reply + `,"text":"a","attachments":[]}` + "\n"},
		{"reply without mailbox", h2 + `{"text":"a","attachments":[],"reply":{"recipient":"` + a.Recipient + `"}}` + "\n"},
		{"reply with another member", h2 + `{"text":"a","attachments":[],"reply":{"recipient":"` + a.Recipient + `","mailbox":"` + a.Mailbox.String() + `","x":1}}` + "\n"},
		{"mailbox padded", h2 + `{"text":"a","attachments":[],"reply":{"recipient":"` + a.Recipient + `","mailbox":"` + a.Mailbox.String() + `="}}` + "\n"},
		{"recipient upper case", h2 + `{"text":"a","attachments":[],"reply":{"recipient":"` + strings.ToUpper(a.Recipient) + `","mailbox":"` + a.Mailbox.String() + `"}}` + "\n"},
		{"recipient a secret key", h2 + `{"text":"a","attachments":[],"reply":{"recipient":"AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ","mailbox":"` + a.Mailbox.String() + `"}}` + "\n"},
		{"recipient garbage", h2 + `{"text":"a","attachments":[],"reply":{"recipient":"age1xyz","mailbox":"` + a.Mailbox.String() + `"}}` + "\n"},
		{"tip v3", "fieldtip/tip/v3\n" + `{"text":"a","attachments":[],` + reply + `}` + "\n"},
	} {
		if _, err := ParseTip([]byte(c.in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseTip = %v, want ErrMalformed", c.name, err)
		}
	}
	ok := h2 + `{"text":"a","attachments":[],` + reply + `}` + "\n"
	if _, err := ParseTip([]byte(ok)); err != nil {
		t.Errorf("ParseTip(canonical v2) = %v", err)
	}
	if strings.Contains(ok, "AGE-SECRET") {
		t.Fatal("test bug")
	}
	if _, err := MarshalTip(&Tip{Text: "a", Reply: &ReplyAddress{Recipient: "age1xyz"}}); err == nil {
		t.Error("MarshalTip with a bad reply recipient: no error")
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add([]byte(ReplyHeader + "\n" + `{"text":"hello"}` + "\n\x00"))
	f.Add([]byte(ReplyHeader + "\n" + `{"text":"a\u003cb"}` + "\n"))
	f.Add([]byte(ReplyHeader + "\n" + `{"text":""}` + "\n"))
	f.Add([]byte(TipHeader + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReply(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseReply error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// One encoding: the parsed reply re-encodes to the input, less
		// its zero padding.
		m, err := MarshalReply(r)
		if err != nil {
			t.Fatalf("MarshalReply of a parsed reply: %v", err)
		}
		if !bytes.Equal(m, bytes.TrimRight(b, "\x00")) && !bytes.Equal(m, b[:len(m)]) {
			t.Fatalf("ParseReply(%q) re-encodes to %q", b, m)
		}
	})
}

func FuzzCheckReplyCiphertext(f *testing.F) {
	k := testReplyKeys()
	for _, typ := range []string{StanzaHybrid, StanzaX25519} {
		a, _ := k.Address(typ)
		r, _ := a.AgeRecipient()
		ct, err := SealReply(&Reply{Text: "hello"}, r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckReplyCiphertext(b)
		if err != nil {
			if !errors.Is(err, ErrBadCiphertext) {
				t.Fatalf("CheckReplyCiphertext error %v does not wrap ErrBadCiphertext", err)
			}
			return
		}
		// What passes has a reply's size, and opening it with the right
		// keys fails cleanly or succeeds: never a panic.
		if !ValidReplySize(len(b)) {
			t.Fatalf("accepted %d bytes", len(b))
		}
		OpenReply(b, k.Identities()...)
	})
}
