package newsdesk

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestSnapshotDoc checks the worked example of docs/newsdesk.md, "The
// sealed index": the plaintext of a sealed index holding one note and
// one tip, byte for byte.
func TestSnapshotDoc(t *testing.T) {
	snap := &snapshot{Bad: []int64{}, Warnings: []string{}}
	snap.Log.N, snap.Log.Hash = 3, bytes.Repeat([]byte{1}, 32)
	snap.Events = []snapshotEvent{{Index: 2, Via: -1,
		PublicSalt: bytes.Repeat([]byte{2}, 32), Public: []byte(`{"kind":"note"}`),
		PrivateSalt: bytes.Repeat([]byte{3}, 32), Private: []byte(`{"tip":"AAAAAAAAAAAAAAAAAAAAAA","text":"call back"}`)}}
	snap.Tips = []TipSummary{{ID: "AAAAAAAAAAAAAAAAAAAAAA", Seq: 1, Day: "2026-03-14", Length: 16384,
		SHA256: strings.Repeat("04", 32), FirstLine: "Trucks at night.", TextBytes: 16,
		Attachments: []AttachmentInfo{{Name: "photo-1.jpg", Type: "image/jpeg", Size: 152301}}}}
	got, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/newsdesk.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "<!-- example of TestSnapshotDoc -->\n```json\n")
	block, _, ok2 := strings.Cut(block, "\n```")
	if !ok || !ok2 {
		t.Fatal("docs/newsdesk.md has no example of TestSnapshotDoc")
	}
	if block != string(got) {
		t.Errorf("docs/newsdesk.md's example differs; the snapshot marshals as\n%s", got)
	}
	if base64.StdEncoding.EncodeToString(snap.Events[0].Public) != "eyJraW5kIjoibm90ZSJ9" {
		t.Error("public part's base64")
	}
}

// TestPackDoc checks the example pack of docs/newsdesk.md, "Tip packs".
func TestPackDoc(t *testing.T) {
	got, _, err := formatPack([]packRecord{
		{Seq: 7, ID: "AAAAAAAAAAAAAAAAAAAAAA", Receipt: []byte("rc7"), Ciphertext: []byte("age-7")},
		{Seq: 9, ID: "AQAAAAAAAAAAAAAAAAAAAA", Receipt: []byte("rc9"), Ciphertext: []byte("age-9")},
	})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/newsdesk.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "<!-- example of TestPackDoc -->\n```text\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("docs/newsdesk.md has no example of TestPackDoc")
	}
	if block != string(got)+"\n" {
		t.Errorf("docs/newsdesk.md's pack example differs; formatPack writes\n%s", got)
	}
	if _, err := readPack(strings.NewReader(string(got)), int64(len(got))); err != nil {
		t.Errorf("readPack(the example) = %v", err)
	}
}
