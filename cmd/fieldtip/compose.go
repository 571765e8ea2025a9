package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"fieldtip/client"
	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/protocol"

	"github.com/spf13/pflag"
)

// tipFlags are the flags that make a tip.
type tipFlags struct {
	text         string
	attach       []string
	keepOriginal bool
	lowBandwidth bool
}

func (f *tipFlags) declare(fs *pflag.FlagSet, textHelp string) {
	fs.StringVar(&f.text, "text", "", textHelp+"; a shell keeps command lines in its history, so standard input is safer")
	fs.StringArrayVar(&f.attach, "attach", nil, "attach a file (repeatable); photos are re-encoded without metadata, other files are refused")
	fs.BoolVar(&f.keepOriginal, "keep-original", false, "send attachments that cannot be re-encoded (PDF, video…) unchanged, metadata and all")
	fs.BoolVar(&f.lowBandwidth, "low-bandwidth", false, "8 KiB frames instead of 16 KiB, for the worst links")
}

func (f *tipFlags) frameSize() int {
	if f.lowBandwidth {
		return protocol.LowBandwidthFrameSz
	}
	return protocol.FrameSize
}

// tip builds the tip from the flags, reading the text from stdin when
// readStdin is set and --text is not.
func (f *tipFlags) tip(env *cli.Env, readStdin bool) (*crypto.Tip, error) {
	tip := &crypto.Tip{Text: f.text}
	if f.text == "" && readStdin {
		b, err := io.ReadAll(io.LimitReader(env.Stdin, crypto.MaxManifestSize))
		if err != nil {
			return nil, fmt.Errorf("read text: %w", err)
		}
		tip.Text = strings.TrimRight(string(b), "\n")
	}
	for i, p := range f.attach {
		data, err := readAttachment(p)
		if err != nil {
			return nil, err
		}
		a, warning, err := client.Attach(i+1, p, data, f.keepOriginal)
		if err != nil {
			return nil, fmt.Errorf("attach %w", err)
		}
		if warning != "" {
			fmt.Fprintf(env.Stderr, "fieldtip: warning: %s\n", warning)
		}
		tip.Attachments = append(tip.Attachments, a)
	}
	if tip.Text == "" && len(tip.Attachments) == 0 {
		return nil, cli.Usagef("nothing to compose: give --text, standard input or --attach")
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
	return "[--text TEXT] [--attach FILE]... [--keep-original] [--low-bandwidth] [--codename-file F] [--config DIR]"
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
	_, err = composeInto(ctx, env, cfg, &c.outboxFlags, &c.tipFlags, true)
	return err
}

// composeInto composes a tip from the flags into the outbox in cfg's dir,
// which it returns open.
func composeInto(ctx context.Context, env *cli.Env, cfg *client.Config, of *outboxFlags, tf *tipFlags, readStdin bool) (*client.Outbox, error) {
	tip, err := tf.tip(env, readStdin)
	if err != nil {
		return nil, err
	}
	warn := func(m string) { fmt.Fprintf(env.Stderr, "fieldtip: warning: %s\n", m) }
	it, err := client.Compose(ctx, cfg, tip, client.ComposeOptions{FrameSize: tf.frameSize(), Warn: warn})
	if err != nil {
		return nil, err
	}
	ob, err := of.openOutbox(env, cfg.Dir())
	if err != nil {
		return nil, err
	}
	if err := ob.Add(it); err != nil {
		return nil, err
	}
	fmt.Fprintf(env.Stderr, "fieldtip: composed a tip of %d bytes (%d frames); the outbox holds %d waiting, %d of %d bytes free\n",
		len(it.Ciphertext), len(it.Ciphertext)/it.FrameSize, len(ob.Items), ob.Free(), ob.Size())
	return ob, nil
}
