package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"fieldtip/client"
	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/protocol"

	"github.com/spf13/pflag"
)

// optString is a string flag that knows whether it was given, so that
// an empty --text is an empty tip, not no tip.
type optString struct {
	s   string
	set bool
}

func (o *optString) String() string     { return o.s }
func (o *optString) Set(v string) error { o.s, o.set = v, true; return nil }
func (o *optString) Type() string       { return "string" }

// tipFlags are the flags that make a tip.
type tipFlags struct {
	text         optString
	attach       []string
	keepOriginal bool
	lowBandwidth bool
}

func (f *tipFlags) declare(fs *pflag.FlagSet, textHelp string) {
	fs.Var(&f.text, "text", textHelp+"; a shell keeps command lines in its history, so standard input is safer")
	fs.StringArrayVar(&f.attach, "attach", nil, "attach a file (repeatable); photos are re-encoded without metadata, other files are refused")
	fs.BoolVar(&f.keepOriginal, "keep-original", false, "send attachments that cannot be re-encoded (PDF, video…) unchanged, metadata and all")
	fs.BoolVar(&f.lowBandwidth, "low-bandwidth", false, "8 KiB frames instead of 16 KiB, for the worst links")
}

// given reports whether the flags ask for a tip.
func (f *tipFlags) given() bool { return f.text.set || len(f.attach) > 0 }

func (f *tipFlags) frameSize() int {
	if f.lowBandwidth {
		return protocol.LowBandwidthFrameSz
	}
	return protocol.FrameSize
}

// draft is a tip read from the flags, its attachments checked but not yet
// scrubbed.
type draft struct {
	text  string
	files []draftFile
}

type draftFile struct {
	path  string
	data  []byte
	photo bool
}

// read reads the tip's text (from standard input when readStdin is set
// and --text is not) and attachments, and makes every cheap check: an
// empty tip, a file that cannot be sent. Nothing long runs here.
func (f *tipFlags) read(env *cli.Env, readStdin bool) (*draft, error) {
	d := &draft{text: f.text.s}
	if !f.text.set && readStdin {
		if isTerminal(env.Stdin) {
			// Without this, compose on a terminal looks hung (issue 12).
			fmt.Fprintln(env.Stderr, "fieldtip: reading the tip from standard input: type it, then press Ctrl-D on a line of its own")
		}
		b, err := io.ReadAll(io.LimitReader(env.Stdin, crypto.MaxManifestSize))
		if err != nil {
			return nil, fmt.Errorf("read text: %w", err)
		}
		d.text = strings.TrimRight(string(b), "\n")
	}
	for _, p := range f.attach {
		data, err := readAttachment(p)
		if err != nil {
			return nil, err
		}
		photo, err := client.CheckAttachment(p, data, f.keepOriginal)
		if err != nil {
			return nil, fmt.Errorf("attach %w", err)
		}
		d.files = append(d.files, draftFile{path: p, data: data, photo: photo})
	}
	if strings.TrimSpace(d.text) == "" && len(d.files) == 0 {
		return nil, cli.Usagef("the tip is empty: give its text with --text or on standard input, or --attach a file")
	}
	return d, nil
}

// leastSize is a lower bound of the tip's plaintext: its text and the
// files that go unchanged (photos shrink when scrubbed). Its size bucket
// (crypto.Bucket) bounds the sealed tip from below.
func (d *draft) leastSize() int {
	n := len(d.text)
	for _, f := range d.files {
		if !f.photo {
			n += len(f.data)
		}
	}
	return n
}

// tip scrubs the photos and returns the tip.
func (d *draft) tip(env *cli.Env, w *work) (*crypto.Tip, error) {
	tip := &crypto.Tip{Text: d.text}
	for _, f := range d.files {
		if f.photo {
			w.begin(fmt.Sprintf("scrubbing %s", filepath.Base(f.path)))
		}
		a, warning, err := client.Attach(f.path, f.data, !f.photo)
		w.end()
		if err != nil {
			return nil, fmt.Errorf("attach %w", err)
		}
		if warning != "" {
			fmt.Fprintf(env.Stderr, "fieldtip: warning: %s\n", warning)
		}
		tip.Attachments = append(tip.Attachments, a)
	}
	return tip, nil
}

func readAttachment(p string) ([]byte, error) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, client.MaxPhotoInput+1))
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	if len(data) > client.MaxPhotoInput {
		return nil, fmt.Errorf("attach %s: larger than %d bytes", p, client.MaxPhotoInput)
	}
	return data, nil
}

type compose struct {
	configFlag
	outboxFlags
	tipFlags
}

func (*compose) Name() string { return "compose" }
func (*compose) Usage() string {
	return "[--text TEXT] [--attach FILE]... [--keep-original] [--low-bandwidth] [--codename-file F] [--outbox-size N] [--config DIR]"
}
func (*compose) Summary() string {
	return "Compose a tip with no network: scrub photos, pad, encrypt to the stored bundle, compute the proof of work, and put it in the outbox for fieldtip send. Text comes from --text or standard input."
}
func (c *compose) Flags(fs *pflag.FlagSet) {
	c.configFlag.declare(fs)
	c.outboxFlags.declare(fs)
	c.tipFlags.declare(fs, "the tip's text (default: read standard input)")
}

func (c *compose) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("no arguments; the text goes in --text or on standard input")
	}
	dir, err := c.path()
	if err != nil {
		return err
	}
	cfg, err := client.LoadConfig(dir)
	if err != nil {
		return err
	}
	_, _, err = composeInto(ctx, env, cfg, &c.outboxFlags, &c.tipFlags, true)
	return err
}

// composed is a tip composed into the outbox, kept in memory so that send
// can seal it again if the bundle changed before it went.
type composed struct {
	tip       *crypto.Tip
	frameSize int
	item      *client.OutboxItem
	// reply are the source's reply keys, so the tip carries its reply
	// address whenever it is sealed.
	reply *crypto.ReplyKeys
}

// composeInto composes a tip from the flags into the outbox in cfg's dir,
// which it returns open. Cheap refusals come first (an empty tip, a file
// that cannot go, a tip bigger than the outbox holds), then the long work,
// shown on a terminal: opening the outbox, scrubbing, sealing, the proof
// of work.
func composeInto(ctx context.Context, env *cli.Env, cfg *client.Config, of *outboxFlags, tf *tipFlags, readStdin bool) (*client.Outbox, *composed, error) {
	d, err := tf.read(env, readStdin)
	if err != nil {
		return nil, nil, err
	}
	w := newWork(env)
	defer w.end()
	ob, err := of.openOutbox(env, cfg.Dir(), w)
	if err != nil {
		return nil, nil, err
	}
	// Before any long work: the text and the files sent unchanged
	// already say whether the outbox can hold the tip.
	least := crypto.Bucket(int64(d.leastSize()), int64(tf.frameSize()))
	if err := roomFor(ob.Room(int(least))); err != nil {
		return nil, nil, err
	}
	tip, err := d.tip(env, w)
	if err != nil {
		return nil, nil, err
	}
	// The tip carries its source's reply address (docs/replies.md): one
	// more key derivation from the codename, offline.
	reply, err := of.replyKeys(env, cfg, w)
	if err != nil {
		return nil, nil, err
	}
	it, err := sealTip(ctx, env, cfg, ob, tip, tf.frameSize(), reply, w)
	if err != nil {
		return nil, nil, err
	}
	if err := ob.Add(it); err != nil {
		return nil, nil, roomFor(err)
	}
	fmt.Fprintf(env.Stderr, "fieldtip: composed a tip of %d bytes (%d frames); the outbox holds %d waiting, %d of %d bytes free\n",
		len(it.Ciphertext), len(it.Ciphertext)/it.FrameSize, len(ob.Items), ob.Free(), ob.Size())
	return ob, &composed{tip: tip, frameSize: tf.frameSize(), item: it, reply: reply}, nil
}

// sealTip seals tip to cfg's bundle and computes its proofs of work,
// showing both on a terminal; a tip the outbox cannot hold is refused
// after sealing, before the proof of work.
func sealTip(ctx context.Context, env *cli.Env, cfg *client.Config, ob *client.Outbox, tip *crypto.Tip, frameSize int, reply *crypto.ReplyKeys, w *work) (*client.OutboxItem, error) {
	defer w.end()
	warn := func(m string) { fmt.Fprintf(env.Stderr, "fieldtip: warning: %s\n", m) }
	return client.Compose(ctx, cfg, tip, client.ComposeOptions{
		FrameSize: frameSize,
		Warn:      warn,
		Reply:     reply,
		Room:      func(n int) error { return roomFor(ob.Room(n)) },
		Stage: func(s string) {
			if s == "seal" {
				s = "sealing the tip to the newsroom's editors"
			}
			w.begin(s)
		},
		Progress: w.count,
	})
}

// roomFor turns an outbox that cannot hold an item into what to do about
// it: the size that would hold it, and the flag.
func roomFor(err error) error {
	var full *client.OutboxFullError
	if !errors.As(err, &full) {
		return err
	}
	free := full.Body - full.Used
	if size := full.SizeFor(); size > 0 {
		return fmt.Errorf("the tip needs %d bytes in the outbox, which has %d of its %d bytes free: run again with --outbox-size %d to make room (or send what waits first)",
			full.Need, free, full.Size, size)
	}
	return fmt.Errorf("the tip needs %d bytes in the outbox, which has %d of its %d bytes free, and even the largest outbox (%d bytes) cannot hold it with what waits: send what waits first, or make the tip smaller",
		full.Need, free, full.Size, 64<<20)
}
