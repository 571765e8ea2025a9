package protocol_test

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"fieldtip/protocol"
)

// The signed notes of the worked example. The bundle and the first receipt
// are the examples of docs/formats.md (crypto/example_test.go); the seed
// and the second receipt are signed the same way, with crypto.SignPoWSeed
// and crypto.SignReceipt and the example log key. TestExampleNotes checks
// that they open with the example keys and fit the example's uploads.
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
	// exampleSeed is the proof-of-work seed of epoch 2932 (the week of
	// 2026-03-14 with 604,800-second epochs): the seed bytes 0x80…0x9f and
	// crypto.DefaultPoWParams.
	exampleSeed = "fieldtip/pow-seed/v1\n" +
		"epoch 2932\n" +
		"epoch-seconds 604800\n" +
		"seed gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8\n" +
		"argon2id 1024 1 8\n" +
		"\n" +
		"— log.example l0tKX0ME8L8LRTo+97ZqfH2hBgSQ1BFnPQZCNC56aJch0mHI494WJ5esKWj7ASjHLjyaG1OBYePI9wQmICUzETeBKgk=\n"
	// exampleReceipt2 is the receipt of the second upload: tip id bytes
	// 0x60…0x6f, 32,768 zero bytes.
	exampleReceipt2 = "fieldtip/receipt/v1\n" +
		"tip YGFiY2RlZmdoaWprbG1ubw\n" +
		"sha256 c35020473aed1b4642cd726cad727b63fff2824ad68cedd7ffb73c7cbd890479\n" +
		"length 32768\n" +
		"day 2026-03-14\n" +
		"\n" +
		"— log.example l0tKX/KLSLKARaGk48jAOd/Qf/d/gKgajNFNHj1ePd3qodahezxHShjMD71VH9UpXbG3UQRtghVTnLo4TVt5XA1BfQA=\n"
)

// The uploads of the worked example. Each is n zero bytes (a real one is
// a padded age file); the ids and resume secrets are byte sequences; the
// proofs of work are the smallest nonces that work under exampleSeed
// (crypto.SolvePoWs), one per started 64 KiB, and each pre-proof the
// smallest that works over them (crypto.SolvePrePoW).
var (
	exampleTip1    = make([]byte, protocol.FrameSize)
	exampleID1     = protocol.UploadID{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f}
	exampleSecret1 = bytesFrom(0x10)
	examplePoW1    = []uint64{464}
	examplePre1    = uint64(41085)

	exampleTip2    = make([]byte, 2*protocol.FrameSize)
	exampleID2     = protocol.UploadID{0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f}
	exampleSecret2 = bytesFrom(0x40)
	examplePoW2    = []uint64{220}
	examplePre2    = uint64(52047)

	// exampleEpoch is the epoch of exampleSeed.
	exampleEpoch int64 = 2932
)

// bytesFrom returns the 32 bytes first, first+1, …
func bytesFrom(first byte) [32]byte {
	var b [32]byte
	for i := range b {
		b[i] = first + byte(i)
	}
	return b
}

// The worked example of docs/protocol.md. On one connection a source
// fetches the bundle (and with it the epoch's proof-of-work seed), uploads
// a one-frame tip (first message, frame and commit together), then starts
// a two-frame one; the link drops after the first frame's ack, with the
// second frame and the commit lost. On a new connection it resumes the
// second upload where the server's offset says. Then some refusals. → is
// client to server, ← server to client.
func Example() {
	show := func(dir string, msg any) { fmt.Printf("%s %s\n", dir, protocol.Marshal(msg)) }
	frame := func(offset int64, chunk []byte) {
		f := protocol.AppendDataFrame(nil, offset, chunk)
		fmt.Printf("→ binary, %d bytes: %x %x %x…\n", len(f), f[:8], f[8:12], f[12:16])
	}
	upload := func(id protocol.UploadID, secret [32]byte, tip []byte, pow []uint64, pre uint64) *protocol.Upload {
		return &protocol.Upload{
			Version:       protocol.Version,
			BundleVersion: 3,
			UploadID:      id,
			ResumeHash:    sha256.Sum256(secret[:]),
			Length:        int64(len(tip)),
			FrameSize:     protocol.FrameSize,
			PoWEpoch:      exampleEpoch,
			PoW:           pow,
			PrePoW:        pre,
		}
	}

	fmt.Println("# connection 1")
	show("→", &protocol.BundleRequest{Version: protocol.Version})
	show("←", &protocol.BundleReply{Bundle: []byte(exampleBundle), Seed: []byte(exampleSeed)})
	// A new upload: its frame and its commit follow at once, without
	// waiting for the offset or the ack.
	show("→", upload(exampleID1, exampleSecret1, exampleTip1, examplePoW1, examplePre1))
	frame(0, exampleTip1)
	show("→", &protocol.Commit{SHA256: sha256.Sum256(exampleTip1)})
	show("←", &protocol.Offset{Offset: 0, Seed: []byte(exampleSeed)})
	show("←", &protocol.Ack{Offset: protocol.FrameSize})
	show("←", &protocol.ReceiptReply{Receipt: []byte(exampleReceipt)})
	// A second upload, two frames in flight and the commit behind them;
	// only the first frame arrives.
	show("→", upload(exampleID2, exampleSecret2, exampleTip2, examplePoW2, examplePre2))
	frame(0, exampleTip2[:protocol.FrameSize])
	frame(protocol.FrameSize, exampleTip2[protocol.FrameSize:])
	show("→", &protocol.Commit{SHA256: sha256.Sum256(exampleTip2)})
	show("←", &protocol.Offset{Offset: 0, Seed: []byte(exampleSeed)})
	show("←", &protocol.Ack{Offset: protocol.FrameSize})

	fmt.Println("# the link drops; connection 2")
	// A resumed upload waits one round trip for the server's offset.
	show("→", &protocol.Resume{Version: protocol.Version, UploadID: exampleID2, ResumeSecret: exampleSecret2})
	show("←", &protocol.Offset{Offset: protocol.FrameSize, Seed: []byte(exampleSeed)})
	frame(protocol.FrameSize, exampleTip2[protocol.FrameSize:])
	show("→", &protocol.Commit{SHA256: sha256.Sum256(exampleTip2)})
	show("←", &protocol.Ack{Offset: 2 * protocol.FrameSize})
	show("←", &protocol.ReceiptReply{Receipt: []byte(exampleReceipt2)})

	fmt.Println("# refusals")
	// A version 2 client learns which version the server speaks, and what
	// to do.
	v2 := []byte(`{"type":"bundle","version":2}`)
	fmt.Printf("→ %s\n", v2)
	_, err := protocol.ParseClientMessage(v2)
	var e *protocol.Error
	if !errors.As(err, &e) {
		panic(err)
	}
	show("←", e)
	// A frame at an offset the server is not at.
	show("←", &protocol.Error{Code: protocol.CodeConflict, Message: "data frame is not at the server's offset", Offset: 16384})
	// Proofs computed with the seed of an epoch the server no longer takes.
	show("←", &protocol.Error{Code: protocol.CodeStalePoW, Message: "proof of work for epoch 2930; this server accepts epochs 2931 and 2932"})
	// A resume of an upload the server does not hold (finished, expired or
	// never opened).
	show("←", &protocol.Error{Code: protocol.CodeNotFound, Message: "no unfinished upload with this id: never opened, finished, or expired"})
	// A busy server.
	show("←", &protocol.Error{Code: protocol.CodeBusy, Message: "try again later"})
	// Output:
	// # connection 1
	// → {"type":"bundle","version":3}
	// ← {"type":"bundle","bundle":"fieldtip/bundle/v1\nnewsroom newsroom.example+b7c03b27+AX+Spp/Q2Bvh4j4NfYglx1e2tXD/5wp5xLhxOPT4Ahry\nversion 3\nexpires 2027-01-01T00:00:00Z\nlog log.example+974b4a5f+AVf/TKVMWvGsvKl9Tlkop00FsoQ3bWa9Ex07F5nTRF4c\npolicy clusters 2 approvals 2\neditor alice age1d94r9nmwdjz7npjy9n0z47mrcx9a5apa4q6m8scyumzvzz744afs0a7rh0 alice+abd8ab9f+AT9aPesD+0RirXlDijdvDQta5CpC/EAN5ac6bEcRMvgl alice.cosign+694ce601+AVWbDjKK6AlInGNikJD8kcwFRFGK9Da6Sy2KcsA9WY/i\nrevoke bob\n\n— newsroom.example t8A7J8mOsCrEBI/ilpjSjQSPFla5C18XR6SVv2586PXRFiVOw0VVd/hCPQgeBbylJOH2HJEps5GIfLDT1J+nC50T8Ak=\n","seed":"fieldtip/pow-seed/v1\nepoch 2932\nepoch-seconds 604800\nseed gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8\nargon2id 1024 1 8\n\n— log.example l0tKX0ME8L8LRTo+97ZqfH2hBgSQ1BFnPQZCNC56aJch0mHI494WJ5esKWj7ASjHLjyaG1OBYePI9wQmICUzETeBKgk=\n"}
	// → {"type":"upload","version":3,"bundle_version":3,"upload_id":"AAECAwQFBgcICQoLDA0ODw","resume_hash":"icdGBFLt3_EZ_qBBnnhcdN4v-xOdvnQyOspKAeGYpdw","length":16384,"frame_size":16384,"pow_epoch":2932,"pow":"AAAAAAAAAdA","pre_pow":"AAAAAAAAoH0"}
	// → binary, 16396 bytes: 0000000000000000 94640b85 00000000…
	// → {"type":"commit","sha256":"4fe7b59af6de3b665b67788cc2f99892ab827efae3a467342b3bb4e3bc8e5bfe"}
	// ← {"type":"offset","offset":0,"seed":"fieldtip/pow-seed/v1\nepoch 2932\nepoch-seconds 604800\nseed gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8\nargon2id 1024 1 8\n\n— log.example l0tKX0ME8L8LRTo+97ZqfH2hBgSQ1BFnPQZCNC56aJch0mHI494WJ5esKWj7ASjHLjyaG1OBYePI9wQmICUzETeBKgk=\n"}
	// ← {"type":"ack","offset":16384}
	// ← {"type":"receipt","receipt":"fieldtip/receipt/v1\ntip UFFSU1RVVldYWVpbXF1eXw\nsha256 4fe7b59af6de3b665b67788cc2f99892ab827efae3a467342b3bb4e3bc8e5bfe\nlength 16384\nday 2026-03-14\n\n— log.example l0tKX6yAnbgDEntBM1aM1etkNC5QCrp4GyfE8yRiE1Stn57XRHqp/Imi7+rNHFin100Fvo72rxbNAFoFLhHXupiKdQc=\n"}
	// → {"type":"upload","version":3,"bundle_version":3,"upload_id":"MDEyMzQ1Njc4OTo7PD0-Pw","resume_hash":"yipP5yf6rs8W7NEwqG4IhcVUDAU3U0BEUHHAZXVV_UI","length":32768,"frame_size":16384,"pow_epoch":2932,"pow":"AAAAAAAAANw","pre_pow":"AAAAAAAAy08"}
	// → binary, 16396 bytes: 0000000000000000 94640b85 00000000…
	// → binary, 16396 bytes: 0000000000004000 94640b85 00000000…
	// → {"type":"commit","sha256":"c35020473aed1b4642cd726cad727b63fff2824ad68cedd7ffb73c7cbd890479"}
	// ← {"type":"offset","offset":0,"seed":"fieldtip/pow-seed/v1\nepoch 2932\nepoch-seconds 604800\nseed gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8\nargon2id 1024 1 8\n\n— log.example l0tKX0ME8L8LRTo+97ZqfH2hBgSQ1BFnPQZCNC56aJch0mHI494WJ5esKWj7ASjHLjyaG1OBYePI9wQmICUzETeBKgk=\n"}
	// ← {"type":"ack","offset":16384}
	// # the link drops; connection 2
	// → {"type":"resume","version":3,"upload_id":"MDEyMzQ1Njc4OTo7PD0-Pw","resume_secret":"QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8"}
	// ← {"type":"offset","offset":16384,"seed":"fieldtip/pow-seed/v1\nepoch 2932\nepoch-seconds 604800\nseed gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8\nargon2id 1024 1 8\n\n— log.example l0tKX0ME8L8LRTo+97ZqfH2hBgSQ1BFnPQZCNC56aJch0mHI494WJ5esKWj7ASjHLjyaG1OBYePI9wQmICUzETeBKgk=\n"}
	// → binary, 16396 bytes: 0000000000004000 94640b85 00000000…
	// → {"type":"commit","sha256":"c35020473aed1b4642cd726cad727b63fff2824ad68cedd7ffb73c7cbd890479"}
	// ← {"type":"ack","offset":32768}
	// ← {"type":"receipt","receipt":"fieldtip/receipt/v1\ntip YGFiY2RlZmdoaWprbG1ubw\nsha256 c35020473aed1b4642cd726cad727b63fff2824ad68cedd7ffb73c7cbd890479\nlength 32768\nday 2026-03-14\n\n— log.example l0tKX/KLSLKARaGk48jAOd/Qf/d/gKgajNFNHj1ePd3qodahezxHShjMD71VH9UpXbG3UQRtghVTnLo4TVt5XA1BfQA=\n"}
	// # refusals
	// → {"type":"bundle","version":2}
	// ← {"type":"error","code":"unsupported_version","message":"protocol version 2 is not supported; this server speaks 3: update fieldtip (the tips waiting in its outbox are kept)"}
	// ← {"type":"error","offset":16384,"code":"conflict","message":"data frame is not at the server's offset"}
	// ← {"type":"error","code":"stale_pow","message":"proof of work for epoch 2930; this server accepts epochs 2931 and 2932"}
	// ← {"type":"error","code":"not_found","message":"no unfinished upload with this id: never opened, finished, or expired"}
	// ← {"type":"error","code":"busy","message":"try again later"}
}
