package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fieldtip/client"
	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/protocol"

	"github.com/spf13/pflag"
)

type send struct {
	configFlag
	text    string
	attach  []string
	timeout time.Duration
}

func (*send) Name() string  { return "send" }
func (*send) Usage() string { return "[--config DIR] [--text TEXT] [--attach FILE]..." }
func (*send) Summary() string {
	return "Encrypt a tip to the newsroom's editors and send it; prints the verified receipt, the tip id last. Text comes from --text or standard input."
}
func (c *send) Flags(fs *pflag.FlagSet) {
	c.configFlag.declare(fs)
	fs.StringVar(&c.text, "text", "", "the tip's text (default: read standard input)")
	fs.StringArrayVar(&c.attach, "attach", nil, "attach a file (repeatable)")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "give up after this long connected")
}

func (c *send) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("no arguments; the text goes in --text or on standard input")
	}
	dir, err := c.path()
	if err != nil {
		return err
	}
	tip := &crypto.Tip{Text: c.text}
	if c.text == "" {
		b, err := io.ReadAll(io.LimitReader(env.Stdin, crypto.MaxManifestSize))
		if err != nil {
			return fmt.Errorf("read text: %w", err)
		}
		tip.Text = strings.TrimRight(string(b), "\n")
	}
	for _, p := range c.attach {
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("attach: %w", err)
		}
		typ := mime.TypeByExtension(strings.ToLower(filepath.Ext(p)))
		if typ == "" {
			typ = "application/octet-stream"
		}
		tip.Attachments = append(tip.Attachments, crypto.Attachment{Name: filepath.Base(p), Type: typ, Data: data})
	}
	if tip.Text == "" && len(tip.Attachments) == 0 {
		return cli.Usagef("nothing to send: give --text, standard input or --attach")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := client.Send(ctx, dir, tip, client.SendOptions{})
	if err != nil {
		var perr *protocol.Error
		if errors.As(err, &perr) {
			return fmt.Errorf("the server refused the tip: %w", err)
		}
		return fmt.Errorf("not sent: %w", err)
	}
	fmt.Fprintf(env.Stderr, "fieldtip: sent %d bytes; the server holds the tip (receipt verified)\n", res.BytesSent)
	fmt.Fprintf(env.Stdout, "%s%s\n", res.ReceiptNote, res.Receipt.TipIDString())
	return nil
}
