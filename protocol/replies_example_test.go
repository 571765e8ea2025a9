package protocol_test

import (
	"encoding/hex"
	"fmt"
	"testing"

	"fieldtip/crypto"
	"fieldtip/protocol"
)

// The replies example of docs/protocol.md: the keys are those of the
// codename of docs/outbox.md at the example newsroom (docs/replies.md's
// worked example), the reply id the bytes 0x70…0x7f, and the server holds
// 12 replies, 5 of them in the bucket.
const (
	exampleCodename = "copper truck mountain harbor velvet quarry nutmeg"
	exampleNewsroom = "newsroom.example+b7c03b27+AX+Spp/Q2Bvh4j4NfYglx1e2tXD/5wp5xLhxOPT4Ahry"
	exampleStored   = 12
	exampleBucket   = 5
)

var exampleReplyID = protocol.ReplyID{0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f}

func exampleReplyKeys() *crypto.ReplyKeys {
	k, err := crypto.DeriveReplyKeys(exampleCodename, exampleNewsroom, crypto.ReplyKDF)
	if err != nil {
		panic(err)
	}
	return k
}

// frameLine abbreviates a binary reply frame as the example shows it.
func frameLine(id protocol.ReplyID, size int) string {
	return fmt.Sprintf("← binary, %d bytes: %s 6167652d656e6372…", protocol.ReplyFrameHeader+size, hex.EncodeToString(id[:]))
}

func ExampleBucket() {
	k := exampleReplyKeys()
	mailbox := protocol.MailboxID(k.Mailbox)
	fmt.Println("# an editor writes a reply (newsdesk reply)")
	fmt.Printf("POST %s   (4096 bytes: an age file to the reply recipient)\n", protocol.ReplyPath(mailbox, exampleReplyID))
	fmt.Println("← 204 No Content")
	fmt.Println("# the source fetches its bucket, on a connection that carries no upload")
	fmt.Printf("→ %s\n", protocol.Marshal(&protocol.RepliesRequest{Version: protocol.Version, Bits: 0, Prefix: 0}))
	bits := protocol.SuggestBits(exampleStored)
	fmt.Printf("← %s\n", protocol.Marshal(&protocol.Bucket{Bits: bits, Count: 0}))
	fmt.Printf("→ %s\n", protocol.Marshal(&protocol.RepliesRequest{Version: protocol.Version, Bits: bits, Prefix: protocol.BucketPrefix(mailbox, bits)}))
	fmt.Printf("← %s\n", protocol.Marshal(&protocol.Bucket{Bits: bits, Count: exampleBucket}))
	fmt.Println(frameLine(protocol.ReplyID{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f}, 4096))
	fmt.Println(frameLine(exampleReplyID, 4096))
	fmt.Printf("# %d more frames: replies to other sources of the bucket, which do not open\n", exampleBucket-2)
	d := &protocol.Delete{ReplyID: exampleReplyID}
	copy(d.MailboxKey[:], k.MailboxKey())
	copy(d.Sig[:], k.SignDelete(exampleReplyID))
	fmt.Printf("→ %s\n", protocol.Marshal(d))
	fmt.Printf("← %s\n", protocol.Marshal(&protocol.Deleted{ReplyID: exampleReplyID}))
	fmt.Println("# refusals")
	fmt.Printf("← %s\n", protocol.Marshal(protocol.Errorf(protocol.CodeUnexpected, "uploads go on a connection that fetched no replies")))
	fmt.Printf("← %s\n", protocol.Marshal(protocol.Errorf(protocol.CodeUnauthorized, "the key is not the reply's mailbox's, or the signature does not verify")))
	fmt.Printf("← %s\n", protocol.Marshal(protocol.Errorf(protocol.CodeTooLarge, "the mailbox holds 65536 bytes of unread replies, at most 65536: the source has not read them yet")))
}

// The replies example of docs/protocol.md is ExampleBucket's output, and
// its values hold: the server's suggestion for 12 replies, the prefix of
// the example mailbox, a delete whose signature the server accepts.
func TestRepliesDocExample(t *testing.T) {
	got := captureStdout(t, ExampleBucket)
	if want := docBlock(t, "../docs/protocol.md", "<!-- output of ExampleBucket in protocol/replies_example_test.go -->"); got != want {
		t.Errorf("docs/protocol.md replies example:\n%s\nExampleBucket prints:\n%s", want, got)
	}
	k := exampleReplyKeys()
	if err := crypto.CheckDelete(k.Mailbox, k.MailboxKey(), exampleReplyID, k.SignDelete(exampleReplyID)); err != nil {
		t.Fatal(err)
	}
	if b := protocol.SuggestBits(exampleStored); b != 1 {
		t.Fatalf("SuggestBits(12) = %d, want 1 as the example says", b)
	}
}
