package e2e

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"os"
	"testing"

	"fieldtip/client"
	"fieldtip/internal/testkit/fieldtiptest"
	"fieldtip/internal/testkit/scripttest"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs testdata/*.txt, one scenario each, with the built
// binaries first on PATH, $PORT a free loopback port for the script's
// server, and the commands of internal/testkit/scripttest, plus:
//
//	scrubbed OUT IN           OUT is IN (a PhoneJPEG) properly scrubbed; prints OUT's size
//
// The command-line behaviour of one program is tested in-process by
// cmd/*/testdata; these scripts are the walks across all three programs
// as separately built binaries.
func TestScripts(t *testing.T) {
	scripttest.RunBuilt(t, binDir, testscript.Params{
		Dir: "testdata",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"scrubbed": cmdScrubbed,
		},
	})
}

// cmdScrubbed checks that OUT is what scrubbing must make of IN, a
// PhoneJPEG (orientation 6): IN does carry the EXIF and comment segments
// and the markers (so the check can fail), and OUT has no APPn or COM
// segment and none of the markers, shows IN's picture upright (the
// corners OrientedCorners(6) gives, so portrait for a landscape IN), and is
// at most 1600 px on its long side. It prints "W×H px, N bytes" for OUT.
func cmdScrubbed(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: scrubbed OUT IN")
	}
	in, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	out, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	if err := checkScrubbed(out, in); err != nil {
		ts.Fatalf("%s from %s: %v", args[0], args[1], err)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(out))
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%d×%d px, %d bytes\n", cfg.Width, cfg.Height, len(out))
}

// phoneMarkers are the strings PhoneJPEG hides in its metadata, and the
// EXIF segment's own header.
var phoneMarkers = []string{
	fieldtiptest.MakerNoteMarker, fieldtiptest.CommentMarker, fieldtiptest.MakeMarker,
	fieldtiptest.ModelMarker, fieldtiptest.DateTimeMarker, "Exif\x00\x00",
}

// maxLongSide is the long side, in pixels, that scrubbing scales photos
// down to (issue 4).
const maxLongSide = 1600

// cornerTolerance is how far, per channel, a scrubbed corner's mean colour
// may be from the quadrant's: PhoneJPEG's texture moves it by less than 30
// and re-encoding by a little more; the quadrants differ by at least 130.
const cornerTolerance = 45

// checkScrubbed reports what is wrong with out as the scrubbed form of
// in, a PhoneJPEG with orientation 6.
func checkScrubbed(out, in []byte) error {
	inMarkers, err := fieldtiptest.JPEGMarkers(in)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	if !bytes.Contains(inMarkers, []byte{0xE1}) || !bytes.Contains(inMarkers, []byte{0xFE}) {
		return fmt.Errorf("input has segments % X, want APP1 and COM: the check would prove nothing", inMarkers)
	}
	for _, m := range phoneMarkers {
		if !bytes.Contains(in, []byte(m)) {
			return fmt.Errorf("input lacks %q: the check would prove nothing", m)
		}
	}
	markers, err := fieldtiptest.JPEGMarkers(out)
	if err != nil {
		return err
	}
	for _, m := range markers {
		if m >= 0xE0 && m <= 0xEF || m == 0xFE {
			return fmt.Errorf("segments % X: 0x%02X is a metadata segment (APPn or COM)", markers, m)
		}
	}
	for _, m := range phoneMarkers {
		if bytes.Contains(out, []byte(m)) {
			return fmt.Errorf("holds %q", m)
		}
	}
	img, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		return err
	}
	inCfg, err := jpeg.DecodeConfig(bytes.NewReader(in))
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	b := img.Bounds()
	if max(b.Dx(), b.Dy()) > maxLongSide {
		return fmt.Errorf("%d×%d px, longer than %d px", b.Dx(), b.Dy(), maxLongSide)
	}
	if (b.Dx() > b.Dy()) == (inCfg.Width > inCfg.Height) {
		return fmt.Errorf("%d×%d px from %d×%d px with orientation 6: not turned upright", b.Dx(), b.Dy(), inCfg.Width, inCfg.Height)
	}
	got, want := fieldtiptest.CornerColors(img), fieldtiptest.OrientedCorners(6)
	for c := range want {
		if !fieldtiptest.ColorNear(got[c], want[c], cornerTolerance) {
			return fmt.Errorf("corners (TL, TR, BL, BR) %v, want %v ±%d: not turned per orientation 6", got, want, cornerTolerance)
		}
	}
	return nil
}

// TestCheckScrubbed shows that the scrubbed command can fail: it refuses
// the photo as taken, and a copy re-encoded without its metadata but not
// turned upright, and passes client.ScrubPhoto's output.
func TestCheckScrubbed(t *testing.T) {
	in := fieldtiptest.PhoneJPEG(800, 600)
	img, err := jpeg.Decode(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var bare bytes.Buffer
	if err := jpeg.Encode(&bare, img, &jpeg.Options{Quality: 70}); err != nil {
		t.Fatal(err)
	}
	scrubbed, err := client.ScrubPhoto(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		out  []byte
		ok   bool
	}{
		{"as taken", in, false},
		{"bare but not upright", bare.Bytes(), false},
		{"ScrubPhoto", scrubbed, true},
	} {
		if err := checkScrubbed(tc.out, in); (err == nil) != tc.ok {
			t.Errorf("checkScrubbed(%s) = %v, want ok %t", tc.name, err, tc.ok)
		}
	}
}
