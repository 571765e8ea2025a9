package main

import (
	"context"

	"fieldtip/crypto"
	"fieldtip/internal/cli"
	"fieldtip/newsdesk"

	"github.com/spf13/pflag"
)

// serverFlags are the flags of every command that talks to the log.
type serverFlags struct {
	editorFlags
	server, newsroom string
}

func (f *serverFlags) declare(fs *pflag.FlagSet) {
	f.editorFlags.declare(fs)
	fs.StringVar(&f.server, "server", "", "the server's URL (required)")
	fs.StringVar(&f.newsroom, "newsroom", "", "newsroom verifier key to pin (default: trust the first bundle seen)")
}

// openRemote checks the flags and opens the cache and the editor's key.
func (f *serverFlags) openRemote(env *cli.Env) (*newsdesk.Cache, *crypto.EditorKey, newsdesk.SyncOptions, error) {
	if f.server == "" {
		return nil, nil, newsdesk.SyncOptions{}, cli.Usagef("--server is required")
	}
	cache, err := f.open(env)
	if err != nil {
		return nil, nil, newsdesk.SyncOptions{}, err
	}
	key, err := loadKey(env, &f.editorFlags)
	if err != nil {
		return nil, nil, newsdesk.SyncOptions{}, err
	}
	return cache, key, newsdesk.SyncOptions{Newsroom: f.newsroom}, nil
}

// view syncs the log with --server, or else loads the cache's replica.
func (c *serverFlags) view(ctx context.Context, env *cli.Env) (*newsdesk.LogView, *crypto.EditorKey, error) {
	if c.server != "" {
		cache, key, opts, err := c.openRemote(env)
		if err != nil {
			return nil, nil, err
		}
		v, err := cache.SyncLog(ctx, c.server, key, opts)
		return v, key, err
	}
	cache, err := c.open(env)
	if err != nil {
		return nil, nil, err
	}
	key, err := loadKey(env, &c.editorFlags)
	if err != nil {
		return nil, nil, err
	}
	v, err := cache.LoadLog(ctx)
	return v, key, err
}
