// Command fieldtipd is the fieldtip server: it takes tips from sources as
// ciphertext over WebSocket, stores them durably in SQLite, hands back
// signed receipts, and serves them to the newsroom's editors. It never sees
// plaintext and never records a client address. See fieldtipd --help.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"fieldtip/audit"
	"fieldtip/internal/cli"
	"fieldtip/server"

	"github.com/spf13/pflag"
)

func main() {
	os.Exit(cli.Main("fieldtipd", commands(), true, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func commands() []cli.Command { return []cli.Command{&serve{}, &backup{}, &uploads{}} }

type serve struct {
	cfg         server.Config
	dev         bool
	printLogKey bool
	recoverLog  string
	logLevel    string
	fs          *pflag.FlagSet
}

func (*serve) Name() string { return "serve" }
func (*serve) Usage() string {
	return "[--data DIR] [--listen ADDR] [--bundle FILE] [flags] | --dev | --print-log-key"
}
func (*serve) Summary() string {
	return "Serve the sources' WebSocket endpoint and the editors' endpoint over one SQLite store."
}

func (c *serve) Flags(fs *pflag.FlagSet) {
	d := server.DefaultConfig()
	c.fs = fs
	fs.BoolVar(&c.dev, "dev", false, "try it out: throwaway keys and a bundle under the data dir, plain HTTP on 127.0.0.1:8080")
	fs.BoolVar(&c.printLogKey, "print-log-key", false, "create the log key if needed, print its verifier key and exit")
	fs.StringVar(&c.recoverLog, "recover-log", "", "with the server stopped: rebuild the editorial log of --data from an editor's replica (a directory, or an http(s) URL serving the log), print what was recovered and exit (docs/log.md, \"Recovery\")")
	fs.StringVar(&c.cfg.DataDir, "data", d.DataDir, "data directory: fieldtip.db and log.key")
	fs.StringVar(&c.cfg.Listen, "listen", d.Listen, "address of the sources' endpoint (and of everything else without --public-listen)")
	fs.StringVar(&c.cfg.PublicListen, "public-listen", "", "serve the bundle, health and editors' endpoints on this second address instead")
	fs.StringVar(&c.cfg.BundleFile, "bundle", "", "signed bundle to put in force if newer than the stored one (required on first start)")
	fs.StringVar(&c.cfg.SourcePath, "source-path", d.SourcePath, "path of the sources' WebSocket endpoint (a secret path is wise)")
	fs.StringVar(&c.cfg.TLSCert, "tls-cert", "", "TLS certificate file (with --tls-key)")
	fs.StringVar(&c.cfg.TLSKey, "tls-key", "", "TLS private key file (with --tls-cert)")
	fs.StringVar(&c.cfg.Origin, "origin", "", "origin editors log in to, scheme://host[:port] (default: the editors' listener address)")
	fs.StringVar(&c.cfg.PublicOrigin, "public-origin", "", "origin readers reach the public claim pages at, scheme://host[:port], when not --origin (a CDN's or onion service's name); used in the pages' links, the feed and the URL newsdesk publish prints (default: --origin)")
	fs.IntVar(&c.cfg.MaxConns, "max-conns", d.MaxConns, "concurrent source WebSocket connections; at the cap a new one closes the one idle longest")
	fs.IntVar(&c.cfg.MaxHTTPConns, "max-http-conns", d.MaxHTTPConns, "plain HTTP connections on each listener, source WebSockets not counted; at the cap a new one closes the one idle longest")
	fs.DurationVar(&c.cfg.FirstMessageTimeout, "first-message-timeout", d.FirstMessageTimeout, "close a source connection that sends no message this long after it opened, or after the server's last answer while no upload frame is due")
	fs.DurationVar(&c.cfg.MaxSessionTime, "max-session-time", d.MaxSessionTime, "longest source connection")
	fs.Int64Var(&c.cfg.MaxUploadSize, "max-upload-size", d.MaxUploadSize, "largest upload in bytes")
	fs.Int64Var(&c.cfg.MaxStagingBytes, "max-staging-bytes", d.MaxStagingBytes, "bytes the unfinished uploads kept on disk may have received, in all")
	fs.IntVar(&c.cfg.MaxUnfinishedUploads, "max-unfinished-uploads", d.MaxUnfinishedUploads, "uploads open or waiting to be resumed, in all")
	fs.IntVar(&c.cfg.MaxUploadsPerConn, "max-uploads-per-conn", d.MaxUploadsPerConn, "uploads on one connection")
	fs.DurationVar(&c.cfg.UploadExpiry, "upload-expiry", d.UploadExpiry, "keep an unfinished upload that had 64 KiB acknowledged this long for its source to resume (plus a random spread of up to a quarter, in whole days), then delete it")
	fs.DurationVar(&c.cfg.StallTimeout, "stall-timeout", d.StallTimeout, "keep an unfinished upload that had no byte acknowledged this long after it opened; one with bytes acknowledged is kept longer after its last progress, in proportion, up to --upload-expiry at 64 KiB; at --max-unfinished-uploads a new upload evicts the stalled one with the least progress")
	fs.DurationVar(&c.cfg.BundleGrace, "bundle-grace", d.BundleGrace, "accept uploads encrypted to the previous bundle this long after a new one is put in force, unless the new one revokes, removes or re-keys an editor (negative: never)")
	fs.Uint32Var(&c.cfg.PoWParams.MemoryKiB, "pow-memory", d.PoWParams.MemoryKiB, "proof of work: Argon2id memory in KiB (the cost flags take effect with the next epoch's seed)")
	fs.Uint32Var(&c.cfg.PoWParams.Time, "pow-time", d.PoWParams.Time, "proof of work: Argon2id passes")
	fs.IntVar(&c.cfg.PoWParams.Bits, "pow-bits", d.PoWParams.Bits, "proof of work: leading zero bits per proof (2^bits expected tries)")
	fs.DurationVar(&c.cfg.PoWEpoch, "pow-epoch", d.PoWEpoch, "proof-of-work epoch: one signed seed per epoch, at least 24h; changing it renumbers epochs, so proofs computed before are refused as stale")
	fs.IntVar(&c.cfg.ReceiptsPeriodDays, "receipts-period-days", defaultOr(d.ReceiptsPeriodDays, 1), fmt.Sprintf("days per receipts-tree period (UTC days, 1 to %d; 7: a week): the log gets one receipts root per finished period, and a published tip's blinded handle reveals its period; a change takes effect at the next period", audit.MaxPeriodDays))
	fs.Int64Var(&c.cfg.ReceiptsTreeSize, "receipts-tree-size", defaultOr(d.ReceiptsTreeSize, audit.DefaultReceiptsTreeSize), fmt.Sprintf("leaves every receipts tree is padded to with dummies, a power of two up to %d (a period with more tips grows to the next power of two), so the count of tips does not show", audit.MaxReceiptsTreeSize))
	fs.Int64Var(&c.cfg.MaxMailboxBytes, "max-mailbox-bytes", d.MaxMailboxBytes, "unread replies one source's mailbox may hold, in bytes of ciphertext (docs/replies.md)")
	fs.DurationVar(&c.cfg.ReplyExpiry, "reply-expiry", d.ReplyExpiry, "delete a reply its source has not read after this long")
	fs.DurationVar(&c.cfg.RejectedRetention, "rejected-retention", d.RejectedRetention, "delete the ciphertext of a tip an editor marked rejected or spam once this long has passed since the day of the mark (for example 720h; the server keeps the day only) and its receipts period is logged; 0: keep it until an editor deletes it")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
}

func (c *serve) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return cli.Usagef("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	// The server never hands its logger a client address, user agent or
	// request detail; and log lines carry the day, not the time, so a line
	// about a failed commit cannot be matched to a phone seen transmitting
	// (DESIGN.md §2: day-precision dates only).
	c.cfg.Logger = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.String("day", a.Value.Time().UTC().Format(time.DateOnly))
			}
			return a
		},
	}))
	if c.recoverLog != "" {
		return c.runRecoverLog(ctx, env)
	}
	if c.printLogKey {
		k, err := server.LoadOrCreateLogKey(c.cfg.DataDir)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, k.Verifier)
		return nil
	}
	var newsroom string
	if c.dev {
		if c.cfg.BundleFile != "" {
			return cli.Usagef("--dev makes its own bundle; drop --bundle")
		}
		var err error
		if c.cfg.BundleFile, newsroom, err = server.DevSetup(c.cfg.DataDir); err != nil {
			return err
		}
	}
	return server.Run(ctx, c.cfg, func(s *server.Server, l *server.Listeners) {
		if c.dev {
			server.PrintDevBanner(env.Stdout, c.cfg.DataDir, "http://"+l.Main.Addr().String(), newsroom)
		}
	})
}

// defaultOr is the flag default of a Config field whose zero value means
// "the server's default", which is documented as def.
func defaultOr[T int | int64](v, def T) T {
	if v != 0 {
		return v
	}
	return def
}

// recoverFlags are the flags --recover-log takes; every other flag is about
// serving and makes no sense with it.
var recoverFlags = map[string]bool{"recover-log": true, "data": true, "log-level": true}

// runRecoverLog is fieldtipd --data DIR --recover-log REPLICA.
func (c *serve) runRecoverLog(ctx context.Context, env *cli.Env) error {
	var extra []string
	c.fs.Visit(func(f *pflag.Flag) {
		if !recoverFlags[f.Name] {
			extra = append(extra, "--"+f.Name)
		}
	})
	if len(extra) > 0 {
		return cli.Usagef("--recover-log takes only --data: it rebuilds the log and exits without serving; drop %s", strings.Join(extra, " "))
	}
	// The server package's errors name the operation ("server: recover
	// log: …", "server: replica: …").
	replica, err := server.OpenReplica(c.recoverLog)
	if err != nil {
		return err
	}
	rc, err := server.RecoverLog(ctx, c.cfg.DataDir, replica)
	if err != nil {
		return err
	}
	printRecovery(env.Stdout, c.cfg.DataDir, c.recoverLog, rc)
	return nil
}

// printRecovery says what RecoverLog did.
func printRecovery(w io.Writer, dataDir, replica string, rc *server.LogRecovery) {
	pinned := "no pinned checkpoint"
	if rc.Pinned >= 0 {
		pinned = fmt.Sprintf("the pinned checkpoint %d", rc.Pinned)
	}
	fmt.Fprintf(w, "recovered the log of %s from %s: %d entries (the database held %d, %s)\n", dataDir, replica, rc.Recovered, rc.Database, pinned)
	fmt.Fprintf(w, "event bodies: %d\n", rc.Bodies)
	if len(rc.MissingBodies) == 0 {
		fmt.Fprintln(w, "missing event bodies: none")
		return
	}
	idx := make([]string, len(rc.MissingBodies))
	for i, x := range rc.MissingBodies {
		idx[i] = strconv.FormatInt(x, 10)
	}
	fmt.Fprintf(w, "missing event bodies: %d, at indexes %s (the log is whole; an editor who has a body can hand it over)\n", len(idx), strings.Join(idx, " "))
}
