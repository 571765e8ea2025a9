package crypto_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"fieldtip/crypto"
)

// The keys of the worked examples of docs/formats.md. Their secret halves
// are published: never use them for anything else. The signed-note keys
// have the seeds SHA-256("fieldtip example key " + name).
const (
	exampleNewsroomKeyFile = "fieldtip/newsroom-key/v1\n" +
		"sign PRIVATE+KEY+newsroom.example+b7c03b27+AWUrZili2VzEsrmQYARV+2m/68nqnvhUwrhmjXO7IQuD\n"
	exampleLogKeyFile = "fieldtip/log-key/v1\n" +
		"sign PRIVATE+KEY+log.example+974b4a5f+AWppr8Ief/B0QlkqpgCPEt3hWBW7gaXNROSdz8XkyX7V\n"
	exampleEditorKeyFile = "fieldtip/editor-key/v1\n" +
		"label alice\n" +
		"age AGE-SECRET-KEY-1ZVQUTCQW7WPS6MZHT65CWV8CVNUQVQ2QPUWPYAC4N4C58KXSRPMS7X8UEK\n" +
		"sign PRIVATE+KEY+alice+abd8ab9f+AevrW6mbzX0A896bDp92fqR9TMxgT8tYJhPOweRtFZZK\n" +
		"cosign PRIVATE+KEY+alice.cosign+694ce601+AS6rNFuOqS8b8OQ5SMH+sN4DIQ+EasR/4DoXey2arCv5\n"
)

func exampleKeys() (newsroom, logKey *crypto.SignerKey, alice *crypto.EditorKey) {
	newsroom, err := crypto.ParseSignerKey(crypto.NewsroomKeyHeader, []byte(exampleNewsroomKeyFile))
	if err != nil {
		log.Fatal(err)
	}
	logKey, err = crypto.ParseSignerKey(crypto.LogKeyHeader, []byte(exampleLogKeyFile))
	if err != nil {
		log.Fatal(err)
	}
	alice, err = crypto.ParseEditorKey([]byte(exampleEditorKeyFile))
	if err != nil {
		log.Fatal(err)
	}
	return newsroom, logKey, alice
}

// An editor's key file (shown here before passphrase sealing) and the
// public key file derived from it, which the editor hands to the newsroom.
func ExampleParseEditorKey() {
	k, err := crypto.ParseEditorKey([]byte(exampleEditorKeyFile))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(crypto.MarshalEditorPublic(k.Public)))
	// Output:
	// fieldtip/editor/v1
	// label alice
	// age age1d94r9nmwdjz7npjy9n0z47mrcx9a5apa4q6m8scyumzvzz744afs0a7rh0
	// sign alice+abd8ab9f+AT9aPesD+0RirXlDijdvDQta5CpC/EAN5ac6bEcRMvgl
	// cosign alice.cosign+694ce601+AVWbDjKK6AlInGNikJD8kcwFRFGK9Da6Sy2KcsA9WY/i
}

// The newsroom signs a bundle listing alice; a source that pinned the
// newsroom's verifier key opens it.
func ExampleSignBundle() {
	newsroom, logKey, alice := exampleKeys()
	b := &crypto.Bundle{
		Newsroom: newsroom.Verifier,
		Version:  3,
		Expires:  time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		Log:      logKey.Verifier,
		Policy:   crypto.DefaultPolicy,
		Editors:  []crypto.Editor{alice.Public},
		Revoked:  []string{"bob"},
	}
	msg, err := crypto.SignBundle(b, newsroom.Signer)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(msg))
	// Output:
	// fieldtip/bundle/v1
	// newsroom newsroom.example+b7c03b27+AX+Spp/Q2Bvh4j4NfYglx1e2tXD/5wp5xLhxOPT4Ahry
	// version 3
	// expires 2027-01-01T00:00:00Z
	// log log.example+974b4a5f+AVf/TKVMWvGsvKl9Tlkop00FsoQ3bWa9Ex07F5nTRF4c
	// policy clusters 2 approvals 2
	// editor alice age1d94r9nmwdjz7npjy9n0z47mrcx9a5apa4q6m8scyumzvzz744afs0a7rh0 alice+abd8ab9f+AT9aPesD+0RirXlDijdvDQta5CpC/EAN5ac6bEcRMvgl alice.cosign+694ce601+AVWbDjKK6AlInGNikJD8kcwFRFGK9Da6Sy2KcsA9WY/i
	// revoke bob
	//
	// — newsroom.example t8A7J8mOsCrEBI/ilpjSjQSPFla5C18XR6SVv2586PXRFiVOw0VVd/hCPQgeBbylJOH2HJEps5GIfLDT1J+nC50T8Ak=
}

// exampleBundle is the output of ExampleSignBundle.
const exampleBundle = "fieldtip/bundle/v1\n" +
	"newsroom newsroom.example+b7c03b27+AX+Spp/Q2Bvh4j4NfYglx1e2tXD/5wp5xLhxOPT4Ahry\n" +
	"version 3\n" +
	"expires 2027-01-01T00:00:00Z\n" +
	"log log.example+974b4a5f+AVf/TKVMWvGsvKl9Tlkop00FsoQ3bWa9Ex07F5nTRF4c\n" +
	"policy clusters 2 approvals 2\n" +
	"editor alice age1d94r9nmwdjz7npjy9n0z47mrcx9a5apa4q6m8scyumzvzz744afs0a7rh0 alice+abd8ab9f+AT9aPesD+0RirXlDijdvDQta5CpC/EAN5ac6bEcRMvgl alice.cosign+694ce601+AVWbDjKK6AlInGNikJD8kcwFRFGK9Da6Sy2KcsA9WY/i\n" +
	"revoke bob\n" +
	"\n" +
	"— newsroom.example t8A7J8mOsCrEBI/ilpjSjQSPFla5C18XR6SVv2586PXRFiVOw0VVd/hCPQgeBbylJOH2HJEps5GIfLDT1J+nC50T8Ak=\n"

// A source opens the bundle against the newsroom verifier key it pinned,
// and refuses one older than the newest it has seen or past its expiry.
func ExampleOpenBundle() {
	const pinned = "newsroom.example+b7c03b27+AX+Spp/Q2Bvh4j4NfYglx1e2tXD/5wp5xLhxOPT4Ahry"
	b, err := crypto.OpenBundle([]byte(exampleBundle), pinned)
	if err != nil {
		log.Fatal(err)
	}
	highestSeen := int64(2)
	now := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	fmt.Println(b.Version >= highestSeen, b.Expired(now))
	for _, e := range b.Editors {
		fmt.Println(e.Label, b.StanzaType())
	}
	fmt.Println("revoked:", b.Revoked)

	_, err = crypto.OpenBundle([]byte(strings.Replace(exampleBundle, "version 3", "version 4", 1)), pinned)
	fmt.Println(errors.Is(err, crypto.ErrBadSignature))
	// Output:
	// true false
	// alice X25519
	// revoked: [bob]
	// true
}

// The server signs a receipt for the 16,384-byte upload of
// docs/protocol.md's worked example (16,384 zero bytes stand in for the
// ciphertext).
func ExampleSignReceipt() {
	_, logKey, _ := exampleKeys()
	r := &crypto.Receipt{
		TipID:  [crypto.TipIDSize]byte{0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f},
		SHA256: sha256.Sum256(make([]byte, 16384)),
		Length: 16384,
		Day:    "2026-03-14",
	}
	msg, err := crypto.SignReceipt(r, logKey.Signer)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(msg))
	// Output:
	// fieldtip/receipt/v1
	// tip UFFSU1RVVldYWVpbXF1eXw
	// sha256 4fe7b59af6de3b665b67788cc2f99892ab827efae3a467342b3bb4e3bc8e5bfe
	// length 16384
	// day 2026-03-14
	//
	// — log.example l0tKX6yAnbgDEntBM1aM1etkNC5QCrp4GyfE8yRiE1Stn57XRHqp/Imi7+rNHFin100Fvo72rxbNAFoFLhHXupiKdQc=
}

// Alice answers the server's login challenge.
func ExampleSignLogin() {
	_, _, alice := exampleKeys()
	signer, err := alice.Signer()
	if err != nil {
		log.Fatal(err)
	}
	l := &crypto.Login{
		Origin:  "https://news.example",
		Nonce:   [crypto.NonceSize]byte{0: 0x60, 31: 0x7f},
		Expires: time.Date(2026, 3, 14, 12, 5, 0, 0, time.UTC),
	}
	msg, err := crypto.SignLogin(l, signer)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(msg))
	// Output:
	// fieldtip/login/v1
	// origin https://news.example
	// nonce YAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAH8
	// expires 2026-03-14T12:05:00Z
	//
	// — alice q9irnxOxrSq7WFARI3o6Mf7lXBsH9Yd3NnF2E6SvjjLpqGd/AvhLYyrrAQYHo0uEw9PgPzkMLbyP42YwRJBKMFiUsgQ=
}

// A tip's plaintext before padding: header line, manifest line, then the
// attachments' bytes.
func ExampleMarshalTip() {
	plain, err := crypto.MarshalTip(&crypto.Tip{
		Text: "Copper concentrate leaves the Hyesan mine by truck at 2am <3 nights>.",
		Attachments: []crypto.Attachment{
			{Name: "count.txt", Type: "text/plain", Data: []byte("3 trucks\n")},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(plain))
	// Output:
	// fieldtip/tip/v1
	// {"text":"Copper concentrate leaves the Hyesan mine by truck at 2am \u003c3 nights\u003e.","attachments":[{"name":"count.txt","type":"text/plain","size":9}]}
	// 3 trucks
}

// The sizes a sealed tip is padded to, for 16 KiB frames.
func ExampleBucket() {
	for _, n := range []int64{200, 16384, 16385, 40000, 100000, 150000, 1000000} {
		fmt.Printf("%7d → %7d\n", n, crypto.Bucket(n, 16384))
	}
	// Output:
	//     200 →   16384
	//   16384 →   16384
	//   16385 →   32768
	//   40000 →   49152
	//  100000 →  114688
	//  150000 →  163840
	// 1000000 → 1015808
}

// A short tip to one classic editor fills exactly one frame, header
// included.
func ExampleSeal() {
	_, _, alice := exampleKeys()
	b := &crypto.Bundle{Editors: []crypto.Editor{alice.Public}}
	recipients, err := b.Recipients()
	if err != nil {
		log.Fatal(err)
	}
	ct, err := crypto.Seal(&crypto.Tip{Text: "Trucks at 2am."}, recipients, 16384)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(ct), crypto.CheckCiphertext(ct, b.StanzaType(), len(b.Editors)))
	tip, err := crypto.Open(ct, alice.Identity)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tip.Text)
	// Output:
	// 16384 <nil>
	// Trucks at 2am.
}
