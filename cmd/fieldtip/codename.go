package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"fieldtip/client"
	"fieldtip/crypto"
	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

// outboxFlags are the flags of commands that open the outbox.
type outboxFlags struct {
	codenameFile string
	outboxSize   int
	// used is the codename the last openOutbox or replyKeys read, so that
	// one run asks for it once.
	used string
}

func (f *outboxFlags) declare(fs *pflag.FlagSet) {
	f.declareCodename(fs)
	f.declareSize(fs)
}

func (f *outboxFlags) declareCodename(fs *pflag.FlagSet) {
	fs.StringVar(&f.codenameFile, "codename-file", "", "read the codename from this file's first line; on first use, created (mode 0600) with a new codename if it does not exist (default: ask on the terminal)")
}

func (f *outboxFlags) declareSize(fs *pflag.FlagSet) {
	fs.IntVar(&f.outboxSize, "outbox-size", 0, fmt.Sprintf("size in bytes of the outbox container, a multiple of 65536 up to 67108864: a new one's (default %d), or an existing one is rewritten at that size", client.DefaultOutboxSize))
}

// openOutbox opens the outbox in dir with the source's codename, creating
// both on first use, and resizes it to --outbox-size if given. The
// codename comes from --codename-file or the terminal; a new one is shown
// once, on the terminal or in the new file. The key derivation shows on a
// terminal (w).
func (f *outboxFlags) openOutbox(env *cli.Env, dir string, w *work) (*client.Outbox, error) {
	exists, err := client.OutboxExists(dir)
	if err != nil {
		return nil, err
	}
	codename, err := f.codename(env, !exists)
	if err != nil {
		return nil, err
	}
	f.used = codename
	w.begin("opening the outbox (deriving its key from the codename)")
	defer w.end()
	if !exists {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		return client.CreateOutbox(client.OutboxPath(dir), codename, f.outboxSize, crypto.DefaultCodenameKDF)
	}
	ob, err := client.OpenOutbox(client.OutboxPath(dir), codename, crypto.DefaultCodenameKDF)
	if err != nil {
		return nil, err
	}
	if f.outboxSize != 0 && f.outboxSize != ob.Size() {
		if err := ob.Resize(f.outboxSize); err != nil {
			return nil, err
		}
		fmt.Fprintf(env.Stderr, "fieldtip: the outbox is now %d bytes\n", ob.Size())
	}
	return ob, nil
}

func (f *outboxFlags) codename(env *cli.Env, firstUse bool) (string, error) {
	if f.codenameFile != "" {
		b, err := os.ReadFile(f.codenameFile)
		if errors.Is(err, fs.ErrNotExist) {
			if !firstUse {
				// A mistyped path must not mint a codename that cannot
				// open the outbox that exists.
				return "", fmt.Errorf("codename file %s does not exist, and the outbox exists already: give the file that holds its codename", f.codenameFile)
			}
			return newCodenameFile(env, f.codenameFile)
		}
		if err != nil {
			return "", fmt.Errorf("codename file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		c, err := crypto.ParseCodename(line)
		if err != nil {
			return "", fmt.Errorf("codename file %s: %w", f.codenameFile, err)
		}
		return c, nil
	}
	if firstUse {
		return newCodenameOnTerminal()
	}
	p, err := env.Passphrase("", "Codename", false)
	if err != nil {
		return "", fmt.Errorf("%w (or use --codename-file)", err)
	}
	return crypto.ParseCodename(p)
}

func newCodenameFile(env *cli.Env, path string) (string, error) {
	c, err := crypto.GenerateCodename()
	if err != nil {
		return "", err
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("codename file: %w", err)
	}
	if _, err := io.WriteString(fh, c+"\n"); err != nil {
		fh.Close()
		return "", fmt.Errorf("codename file: %w", err)
	}
	if err := errors.Join(fh.Sync(), fh.Close()); err != nil {
		return "", fmt.Errorf("codename file: %w", err)
	}
	fmt.Fprintf(env.Stderr, "fieldtip: a new codename is in %s: memorise it; it opens the outbox, and nothing else can\n", path)
	return c, nil
}

// newCodenameOnTerminal shows a new codename once, on the terminal only
// (never on standard output, which may be a file), and waits for Enter.
func newCodenameOnTerminal() (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", errors.New("no terminal to show a new codename on: use --codename-file")
	}
	defer tty.Close()
	c, err := crypto.GenerateCodename()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(tty, "Your codename, shown this once:\n\n    %s\n\nMemorise it: it opens your outbox, and it is stored nowhere.\nPress Enter when you have it. ", c)
	var line [1]byte
	for {
		if _, err := tty.Read(line[:]); err != nil || line[0] == '\n' {
			break
		}
	}
	// Clear the screen so the codename does not stay on it.
	fmt.Fprint(tty, "\033[H\033[2J\033[3J")
	return c, nil
}

// replyKeys derives the source's reply keys (docs/replies.md) from the
// codename this run already read, or asks for it (never making a new
// one: a reply goes to the codename the tips were sent under).
func (f *outboxFlags) replyKeys(env *cli.Env, cfg *client.Config, w *work) (*crypto.ReplyKeys, error) {
	if f.used == "" {
		if f.codenameFile != "" {
			if _, err := os.Stat(f.codenameFile); errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("codename file %s does not exist: give the file of the codename your tips were sent under", f.codenameFile)
			}
		}
		c, err := f.codename(env, false)
		if err != nil {
			return nil, err
		}
		f.used = c
	}
	w.begin("deriving the reply key from the codename")
	defer w.end()
	return client.DeriveReplyKeys(cfg, f.used)
}
