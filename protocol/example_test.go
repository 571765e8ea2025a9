package protocol_test

import (
	"crypto/sha256"
	"fmt"

	"fieldtip/protocol"
)

// The signed bundle and receipt of the worked example, from the examples of
// docs/formats.md (crypto/example_test.go); TestExampleNotes checks that
// they open with the example keys.
const (
	exampleBundle = "fieldtip/bundle/v1\n" +
		"newsroom newsroom.example+b7c03b27+AX+Spp/Q2Bvh4j4NfYglx1e2tXD/5wp5xLhxOPT4Ahry\n" +
		"version 3\n" +
		"expires 2027-01-01T00:00:00Z\n" +
		"log log.example+974b4a5f+AVf/TKVMWvGsvKl9Tlkop00FsoQ3bWa9Ex07F5nTRF4c\n" +
		"policy clusters 2 approvals 2\n" +
		"editor alice age1d94r9nmwdjz7npjy9n0z47mrcx9a5apa4q6m8scyumzvzz744afs0a7rh0 alice+abd8ab9f+AT9aPesD+0RirXlDijdvDQta5CpC/EAN5ac6bEcRMvgl alice.cosign+694ce601+AVWbDjKK6AlInGNikJD8kcwFRFGK9Da6Sy2KcsA9WY/i\n" +
		"revoke bob\n" +
		"\n" +
		"— newsroom.example t8A7J8mOsCrEBI/ilpjSjQSPFla5C18XR6SVv2586PXRFiVOw0VVd/hCPQgeBbylJOH2HJEps5GIfLDT1J+nC50T8Ak=\n"
	exampleReceipt = "fieldtip/receipt/v1\n" +
		"tip UFFSU1RVVldYWVpbXF1eXw\n" +
		"sha256 4fe7b59af6de3b665b67788cc2f99892ab827efae3a467342b3bb4e3bc8e5bfe\n" +
		"length 16384\n" +
		"day 2026-03-14\n" +
		"\n" +
		"— log.example l0tKX6yAnbgDEntBM1aM1etkNC5QCrp4GyfE8yRiE1Stn57XRHqp/Imi7+rNHFin100Fvo72rxbNAFoFLhHXupiKdQc=\n"
)

// The worked example of docs/protocol.md: a source fetches the bundle and
// uploads a one-frame tip. The ciphertext is 16,384 zero bytes here (a real
// one is a padded age file); the upload id is the bytes 0x00…0x0f and the
// resume secret the bytes 0x10…0x2f. → is client to server, ← server to
// client.
func Example() {
	show := func(dir string, msg any) { fmt.Printf("%s %s\n", dir, protocol.Marshal(msg)) }

	show("→", &protocol.BundleRequest{Version: protocol.Version})
	show("←", &protocol.BundleReply{Bundle: []byte(exampleBundle)})

	var secret [32]byte
	for i := range secret {
		secret[i] = byte(0x10 + i)
	}
	ciphertext := make([]byte, protocol.FrameSize)
	show("→", &protocol.Upload{
		Version:       protocol.Version,
		BundleVersion: 3,
		UploadID:      protocol.UploadID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		ResumeHash:    sha256.Sum256(secret[:]),
		Length:        int64(len(ciphertext)),
		FrameSize:     protocol.FrameSize,
	})
	frame := protocol.AppendDataFrame(nil, 0, ciphertext)
	fmt.Printf("→ binary, %d bytes: %x %x %x…\n", len(frame), frame[:8], frame[8:12], frame[12:16])
	show("←", &protocol.Offset{Offset: 0})
	show("←", &protocol.Ack{Offset: protocol.FrameSize})
	show("→", &protocol.Commit{SHA256: sha256.Sum256(ciphertext)})
	show("←", &protocol.ReceiptReply{Receipt: []byte(exampleReceipt)})

	// Two refusals: a frame at an offset the server is not at, and a
	// busy server.
	show("←", &protocol.Error{Code: protocol.CodeConflict, Message: "upload is at offset 16384", Offset: 16384})
	show("←", &protocol.Error{Code: protocol.CodeBusy, Message: "try again later"})
	// Output:
	// → {"type":"bundle","version":1}
	// ← {"type":"bundle","bundle":"fieldtip/bundle/v1\nnewsroom newsroom.example+b7c03b27+AX+Spp/Q2Bvh4j4NfYglx1e2tXD/5wp5xLhxOPT4Ahry\nversion 3\nexpires 2027-01-01T00:00:00Z\nlog log.example+974b4a5f+AVf/TKVMWvGsvKl9Tlkop00FsoQ3bWa9Ex07F5nTRF4c\npolicy clusters 2 approvals 2\neditor alice age1d94r9nmwdjz7npjy9n0z47mrcx9a5apa4q6m8scyumzvzz744afs0a7rh0 alice+abd8ab9f+AT9aPesD+0RirXlDijdvDQta5CpC/EAN5ac6bEcRMvgl alice.cosign+694ce601+AVWbDjKK6AlInGNikJD8kcwFRFGK9Da6Sy2KcsA9WY/i\nrevoke bob\n\n— newsroom.example t8A7J8mOsCrEBI/ilpjSjQSPFla5C18XR6SVv2586PXRFiVOw0VVd/hCPQgeBbylJOH2HJEps5GIfLDT1J+nC50T8Ak=\n"}
	// → {"type":"upload","version":1,"bundle_version":3,"upload_id":"AAECAwQFBgcICQoLDA0ODw","resume_hash":"icdGBFLt3_EZ_qBBnnhcdN4v-xOdvnQyOspKAeGYpdw","length":16384,"frame_size":16384}
	// → binary, 16396 bytes: 0000000000000000 94640b85 00000000…
	// ← {"type":"offset","offset":0}
	// ← {"type":"ack","offset":16384}
	// → {"type":"commit","sha256":"4fe7b59af6de3b665b67788cc2f99892ab827efae3a467342b3bb4e3bc8e5bfe"}
	// ← {"type":"receipt","receipt":"fieldtip/receipt/v1\ntip UFFSU1RVVldYWVpbXF1eXw\nsha256 4fe7b59af6de3b665b67788cc2f99892ab827efae3a467342b3bb4e3bc8e5bfe\nlength 16384\nday 2026-03-14\n\n— log.example l0tKX6yAnbgDEntBM1aM1etkNC5QCrp4GyfE8yRiE1Stn57XRHqp/Imi7+rNHFin100Fvo72rxbNAFoFLhHXupiKdQc=\n"}
	// ← {"type":"error","offset":16384,"code":"conflict","message":"upload is at offset 16384"}
	// ← {"type":"error","code":"busy","message":"try again later"}
}
