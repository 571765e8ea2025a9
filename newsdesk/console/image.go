package console

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"
)

// Images are shown only as the console re-encodes them (issue 10): the
// bytes a source sent never reach the browser, whose image decoders are a
// large attack surface, and whatever metadata or trailing data they carry
// stays behind. An attachment is an image if one of these decoders reads
// its header, whatever its name or declared type say.

// maxImagePixels caps what the console decodes (limits before work): 64
// megapixels, 256 MiB as RGBA.
const maxImagePixels = 64 << 20

// ErrNotImage: an attachment the console does not show as an image.
var ErrNotImage = errors.New("not an image the console shows")

type imageFormat struct {
	name   string
	config func(*bytes.Reader) (image.Config, error)
	decode func(*bytes.Reader) (image.Image, error)
	// png: re-encoded losslessly as PNG; otherwise as JPEG.
	png bool
}

var imageFormats = []imageFormat{
	{"jpeg", func(r *bytes.Reader) (image.Config, error) { return jpeg.DecodeConfig(r) }, func(r *bytes.Reader) (image.Image, error) { return jpeg.Decode(r) }, false},
	{"png", func(r *bytes.Reader) (image.Config, error) { return png.DecodeConfig(r) }, func(r *bytes.Reader) (image.Image, error) { return png.Decode(r) }, true},
	{"gif", func(r *bytes.Reader) (image.Config, error) { return gif.DecodeConfig(r) }, func(r *bytes.Reader) (image.Image, error) { return gif.Decode(r) }, true},
	{"webp", func(r *bytes.Reader) (image.Config, error) { return webp.DecodeConfig(r) }, func(r *bytes.Reader) (image.Image, error) { return webp.Decode(r) }, false},
}

// sniffImage returns the format whose decoder reads data's header, with a
// size within the limit.
func sniffImage(data []byte) (*imageFormat, image.Config, error) {
	for i := range imageFormats {
		f := &imageFormats[i]
		cfg, err := f.config(bytes.NewReader(data))
		if err != nil {
			continue
		}
		if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
			return nil, cfg, fmt.Errorf("%w: %dx%d pixels (at most %d)", ErrNotImage, cfg.Width, cfg.Height, maxImagePixels)
		}
		return f, cfg, nil
	}
	return nil, image.Config{}, ErrNotImage
}

// IsImage reports whether the console shows data as an image.
func IsImage(data []byte) bool {
	_, _, err := sniffImage(data)
	return err == nil
}

// Reencode decodes an image in memory and encodes its pixels afresh: PNG
// for PNG and GIF (the first frame), JPEG (quality 90) for JPEG and WebP.
// It returns the bytes and their content type. Nothing is written to
// disk.
func Reencode(data []byte) ([]byte, string, error) {
	f, _, err := sniffImage(data)
	if err != nil {
		return nil, "", err
	}
	img, err := f.decode(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %w", ErrNotImage, f.name, err)
	}
	// Draw onto a fresh RGBA so nothing of the source's encoding (palette,
	// color model, subsampling) is carried over.
	rgba := image.NewRGBA(img.Bounds())
	draw.Draw(rgba, rgba.Bounds(), img, img.Bounds().Min, draw.Src)
	var out bytes.Buffer
	if f.png {
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&out, rgba)
		return out.Bytes(), "image/png", err
	}
	err = jpeg.Encode(&out, rgba, &jpeg.Options{Quality: 90})
	return out.Bytes(), "image/jpeg", err
}
