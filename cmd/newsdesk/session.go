package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// sessionFlags are the flags of every command that opens an editor's
// session: the key, the cache, and the server.
type sessionFlags struct {
	editorFlags
	server, newsroom string
}

// declare declares the flags; serverHelp says what --server does for the
// command.
func (f *sessionFlags) declare(fs *pflag.FlagSet, serverHelp string) {
	f.editorFlags.declare(fs)
	fs.StringVar(&f.server, "server", "", serverHelp)
	fs.StringVar(&f.newsroom, "newsroom", "", "newsroom verifier key to pin (default: trust the first bundle seen)")
}

// openSession unlocks the key, once, and opens the session on the cache,
// with the server if --server was given (required when needServer).
func (f *sessionFlags) openSession(ctx context.Context, env *cli.Env, needServer bool) (*newsdesk.Session, error) {
	if needServer && f.server == "" {
		return nil, cli.Usagef("--server is required")
	}
	return f.editorFlags.openSession(ctx, env, f.server, f.newsroom)
}

// openSession unlocks the key and opens a session on the cache (offline
// when server is empty).
func (f *editorFlags) openSession(ctx context.Context, env *cli.Env, server, newsroom string) (*newsdesk.Session, error) {
	dir, err := f.cacheDir()
	if err != nil {
		return nil, err
	}
	key, err := loadKey(env, f)
	if err != nil {
		return nil, err
	}
	return newsdesk.OpenSession(ctx, newsdesk.SessionConfig{Cache: dir, Server: server, Key: key, Newsroom: newsroom})
}

// closeSession closes s, keeping the first error.
func closeSession(s *newsdesk.Session, err *error) {
	if cerr := s.Close(); *err == nil {
		*err = cerr
	}
}

// openReader opens the session of a command that reads (inbox, log,
// claims): offline, from the cache, or synced first with --server (what
// the sync found reported).
func (f *sessionFlags) openReader(ctx context.Context, env *cli.Env) (*newsdesk.Session, error) {
	s, err := f.openSession(ctx, env, false)
	if err != nil || !s.Online() {
		return s, err
	}
	rep, err := s.Sync(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	reportSync(env, s, rep)
	return s, nil
}

// errNoLog: a command that reads the log, offline, before any sync.
var errNoLog = errors.New("the cache holds no log yet: run with --server")

// reportSync writes to stderr, one line each, the tips the sync dropped
// and the warnings it found.
func reportSync(env *cli.Env, s *newsdesk.Session, rep *newsdesk.SyncReport) {
	for _, id := range rep.Dropped {
		fmt.Fprintf(env.Stderr, "newsdesk: removed tip %s from the cache: the log deletes it\n", cli.TerminalSafe(id))
	}
	for _, w := range s.Warnings() {
		fmt.Fprintf(env.Stderr, "newsdesk: warning: %s\n", cli.TerminalSafe(w))
	}
}

// reportNotSealed writes one line to stderr when some tips were not
// sealed to the session's key, saying why, instead of one error a tip.
func reportNotSealed(env *cli.Env, s *newsdesk.Session, tips []newsdesk.TipSummary) {
	n := 0
	for _, t := range tips {
		if t.Unreadable == newsdesk.UnreadableNotSealed {
			n++
		}
	}
	if n == 0 {
		return
	}
	label := s.Key().Label
	why := "they were sent before this key was in the bundle (added or re-keyed since): another editor can read them"
	if b := s.Bundle(); b != nil {
		if e := b.Editor(label); e == nil {
			why = fmt.Sprintf("bundle version %d no longer lists %s", b.Version, label)
		} else if e.Recipient != s.Key().Public.Recipient {
			why = fmt.Sprintf("bundle version %d lists another key for %s: use that key file", b.Version, label)
		}
	}
	fmt.Fprintf(env.Stderr, "newsdesk: %d tip(s) were not sealed to %s's key: %s\n", n, label, why)
}

// isTerminal reports whether w is a terminal: tables then get a header
// line and aligned columns; otherwise tab-separated lines, for scripts.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
