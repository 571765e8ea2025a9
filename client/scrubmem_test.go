package client

import (
	"bytes"
	"encoding/binary"
	"image/png"
	"runtime"
	"sync"
	"testing"

	"fieldtip/internal/testkit/fieldtiptest"

	"github.com/disintegration/imaging"
)

// allocated returns the bytes f allocates, all of them (runtime.MemStats
// TotalAlloc): a bound on the most it holds at once, which is what a
// phone's memory must fit. Garbage collection does not change the count.
func allocated(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// memoryInputs are photos at and near the sizes a phone makes.
var memoryInputs = sync.OnceValue(func() []struct {
	name string
	data []byte
} {
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, quadrants(4000, 3000)); err != nil {
		panic(err)
	}
	return []struct {
		name string
		data []byte
	}{
		{"JPEG 12 MP turned (orientation 6)", fieldtiptest.PhoneJPEG(4000, 3000)},
		{"JPEG 12 MP as stored", fieldtiptest.PhoneJPEGOrientation(4000, 3000, 1)},
		{"PNG 12 MP", pngBuf.Bytes()},
	}
})

func TestScrubMemory(t *testing.T) {
	// Issue 12: scrubbing stays within MaxPhotoMemory, counting every
	// byte allocated (decoding, downscaling, turning, encoding), and the
	// estimate made from the header before decoding is not below what
	// decoding and downscaling take.
	if testing.Short() {
		t.Skip("encodes 12-megapixel pictures")
	}
	for _, in := range memoryInputs() {
		t.Run(in.name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = ScrubPhoto(in.data) })
			if err != nil {
				t.Fatal(err)
			}
			kind, format := sniffPhoto(in.data)
			cfg, err := checkPhotoHeader(kind, format, in.data)
			if err != nil {
				t.Fatal(err)
			}
			est := scrubMemory(format, cfg, in.data)
			t.Logf("%s: %d MiB allocated in all; estimated %d MiB held at once", in.name, n>>20, est>>20)
			if n > MaxPhotoMemory {
				t.Errorf("scrubbing %s allocated %d MiB, more than MaxPhotoMemory (%d MiB)", in.name, n>>20, MaxPhotoMemory>>20)
			}
		})
	}
	// Refused from the header: it costs next to nothing.
	var err error
	n := allocated(func() { _, err = ScrubPhoto(pngHeader(8000, 8000)) })
	if err == nil || n > 1<<20 {
		t.Errorf("an 8000×8000 PNG: %v after %d bytes allocated, want a refusal from its header", err, n)
	}
}

// scrubBaseline is ScrubPhoto as it was before issue 12, for the
// benchmark's baseline: the EXIF orientation applied to the full picture
// by imaging.Decode, then the downscaling.
func scrubBaseline(data []byte) ([]byte, error) {
	img, err := imaging.Decode(bytes.NewReader(data), imaging.AutoOrientation(true))
	if err != nil {
		return nil, err
	}
	img = flatten(shrink(img))
	var buf bytes.Buffer
	err = imaging.Encode(&buf, img, imaging.JPEG, imaging.JPEGQuality(PhotoQuality))
	return buf.Bytes(), err
}

// BenchmarkScrubMemory reports the bytes ScrubPhoto allocates per photo
// and their ratio to the baseline (the pipeline before issue 12), measured
// in the same run.
func BenchmarkScrubMemory(b *testing.B) {
	for _, in := range memoryInputs() {
		b.Run(in.name, func(b *testing.B) {
			base := allocated(func() {
				if _, err := scrubBaseline(in.data); err != nil {
					b.Fatal(err)
				}
			})
			var n uint64
			for b.Loop() {
				n = allocated(func() {
					if _, err := ScrubPhoto(in.data); err != nil {
						b.Fatal(err)
					}
				})
			}
			b.ReportMetric(float64(n)/(1<<20), "MiB")
			b.ReportMetric(float64(base)/(1<<20), "baseline-MiB")
			b.ReportMetric(float64(n)/float64(base), "ratio")
		})
	}
}

func TestExifOrientation(t *testing.T) {
	for o := 1; o <= 8; o++ {
		if got := exifOrientation(fieldtiptest.PhoneJPEGOrientation(16, 8, o)); got != o {
			t.Errorf("exifOrientation(a photo of orientation %d) = %d", o, got)
		}
	}
	app1 := func(tiff []byte) []byte {
		payload := append([]byte("Exif\x00\x00"), tiff...)
		seg := []byte{0xFF, 0xE1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}
		return append(append([]byte{0xFF, 0xD8}, seg...), payload...)
	}
	entry := func(order binary.AppendByteOrder, tag, typ uint16, count uint32, value uint16) []byte {
		e := order.AppendUint16(nil, tag)
		e = order.AppendUint16(e, typ)
		e = order.AppendUint32(e, count)
		e = order.AppendUint16(e, value)
		return append(e, 0, 0)
	}
	tiff := func(order binary.AppendByteOrder, head string, entries ...[]byte) []byte {
		t := append([]byte(head), order.AppendUint32(nil, 8)...)
		t = order.AppendUint16(t, uint16(len(entries)))
		for _, e := range entries {
			t = append(t, e...)
		}
		return t
	}
	le, be := binary.AppendByteOrder(binary.LittleEndian), binary.AppendByteOrder(binary.BigEndian)
	for _, tc := range []struct {
		name string
		in   []byte
		want int
	}{
		{"little-endian 6", app1(tiff(le, "II*\x00", entry(le, 0x0112, 3, 1, 6))), 6},
		{"big-endian 8", app1(tiff(be, "MM\x00*", entry(be, 0x0112, 3, 1, 8))), 8},
		{"after another tag", app1(tiff(le, "II*\x00", entry(le, 0x010F, 3, 1, 2), entry(le, 0x0112, 3, 1, 3))), 3},
		{"orientation 0", app1(tiff(le, "II*\x00", entry(le, 0x0112, 3, 1, 0))), 1},
		{"orientation 9", app1(tiff(le, "II*\x00", entry(le, 0x0112, 3, 1, 9))), 1},
		{"a LONG, not a SHORT", app1(tiff(le, "II*\x00", entry(le, 0x0112, 4, 1, 6))), 1},
		{"two values", app1(tiff(le, "II*\x00", entry(le, 0x0112, 3, 2, 6))), 1},
		{"byte order unknown", app1(tiff(le, "XX*\x00", entry(le, 0x0112, 3, 1, 6))), 1},
		{"entries cut short", app1(tiff(le, "II*\x00", entry(le, 0x0112, 3, 1, 6)))[:30], 1},
		{"IFD offset past the end", app1(append([]byte("II*\x00"), 0xff, 0xff, 0, 0)), 1},
		{"IFD offset inside the header", app1(append([]byte("II*\x00"), 2, 0, 0, 0, 0, 0)), 1},
		{"entry count past the end", app1(append(tiff(le, "II*\x00"), 0)[:14]), 1},
		{"no EXIF", []byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 2}, 1},
		{"nothing", nil, 1},
		{"segment length past the end", []byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 'E'}, 1},
	} {
		if got := exifOrientation(tc.in); got != tc.want {
			t.Errorf("%s: exifOrientation = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func FuzzExifOrientation(f *testing.F) {
	// The property: any bytes give an orientation from 1 to 8, and a
	// photo's own EXIF gives its orientation.
	for o := 1; o <= 8; o++ {
		f.Add(fieldtiptest.PhoneJPEGOrientation(8, 8, o))
	}
	f.Add([]byte{0xFF, 0xD8})
	f.Fuzz(func(t *testing.T, data []byte) {
		if o := exifOrientation(data); o < 1 || o > 8 {
			t.Fatalf("exifOrientation = %d", o)
		}
		jpegDecodeBytesPerPixel(data) // must not panic
	})
}

func TestJPEGDecodeBytesPerPixel(t *testing.T) {
	// PhoneJPEG is baseline 4:2:0 (image/jpeg's encoder): 1.5 bytes a
	// pixel. A progressive header counts its coefficients; an unreadable
	// one counts the most.
	if got := jpegDecodeBytesPerPixel(fieldtiptest.PhoneJPEGOrientation(64, 48, 1)); got != 1.5 {
		t.Errorf("baseline 4:2:0: %v bytes a pixel, want 1.5", got)
	}
	sof := func(marker byte, comps ...byte) []byte {
		seg := []byte{8, 0, 16, 0, 16, byte(len(comps))}
		for i, hv := range comps {
			seg = append(seg, byte(i+1), hv, 0)
		}
		return append([]byte{0xFF, 0xD8, 0xFF, marker, 0, byte(len(seg) + 2)}, seg...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want float64
	}{
		{"baseline 4:4:4", sof(0xC0, 0x11, 0x11, 0x11), 3},
		{"baseline 4:2:0", sof(0xC0, 0x22, 0x11, 0x11), 1.5},
		{"progressive 4:2:0", sof(0xC2, 0x22, 0x11, 0x11), 7.5},
		{"gray", sof(0xC0, 0x11), 1},
		{"CMYK", sof(0xC0, 0x11, 0x11, 0x11, 0x11), 8},
		{"no frame header", []byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 2}, 15},
		{"cut short", sof(0xC0, 0x22, 0x11, 0x11)[:10], 15},
	} {
		if got := jpegDecodeBytesPerPixel(tc.in); got != tc.want {
			t.Errorf("%s: %v bytes a pixel, want %v", tc.name, got, tc.want)
		}
	}
}
