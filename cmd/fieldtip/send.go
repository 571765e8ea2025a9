package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"fieldtip/client"
	"fieldtip/internal/cli"
	"fieldtip/protocol"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

type send struct {
	configFlag
	netFlags
	outboxFlags
	tipFlags
	budget time.Duration
}

func (*send) Name() string { return "send" }
func (*send) Usage() string {
	return "[--budget 30s] [--proxy socks5h://HOST:PORT] [--codename-file F] [--config DIR] [--text TEXT [--attach FILE]...]"
}
func (*send) Summary() string {
	return "Send what waits in the outbox, in one short session, until the budget of connected time is spent; with --text or --attach, compose that tip first. Prints each sent tip's id; exits 3 while items remain in the outbox."
}
func (c *send) Flags(fs *pflag.FlagSet) {
	c.configFlag.declare(fs)
	c.netFlags.declare(fs)
	c.outboxFlags.declare(fs)
	c.tipFlags.declare(fs, "compose a tip with this text first, then send")
	fs.DurationVar(&c.budget, "budget", client.DefaultBudget, "most time to stay connected; a hard stop, the rest resumes next time (FIELD.md: about 30 s, never more than 60 s under direction finding)")
}

func (c *send) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("no arguments")
	}
	if c.budget <= 0 {
		return cli.Usagef("--budget must be positive")
	}
	if err := c.netFlags.check(); err != nil {
		return err
	}
	dir, err := c.path()
	if err != nil {
		return err
	}
	cfg, err := client.LoadConfig(dir)
	if err != nil {
		return err
	}
	if err := c.netFlags.apply(cfg); err != nil {
		return err
	}
	var ob *client.Outbox
	if c.text != "" || len(c.attach) > 0 {
		if ob, err = composeInto(ctx, env, cfg, &c.outboxFlags, &c.tipFlags, false); err != nil {
			return err
		}
	} else {
		exists, err := client.OutboxExists(dir)
		if err != nil {
			return err
		}
		if !exists {
			fmt.Fprintln(env.Stderr, "fieldtip: the outbox is empty")
			return nil
		}
		if ob, err = c.openOutbox(env, dir); err != nil {
			return err
		}
	}
	if len(ob.Items) == 0 {
		fmt.Fprintln(env.Stderr, "fieldtip: the outbox is empty")
		return nil
	}
	bopts := client.SendOptions{Budget: c.budget}
	show := newProgress(env)
	bopts.Item, bopts.Progress = show.item, show.progress
	rep, err := client.SendOutbox(ctx, cfg, ob, bopts)
	show.done()
	if rep == nil {
		return err
	}
	for _, r := range rep.Sent {
		fmt.Fprintln(env.Stdout, r.Receipt.TipIDString())
	}
	for _, d := range rep.Dropped {
		fmt.Fprintf(env.Stderr, "fieldtip: a tip was refused for good and left the outbox (%v); compose it again\n", d.Reason)
	}
	for _, d := range rep.Held {
		fmt.Fprintf(env.Stderr, "fieldtip: the server refused a tip (%v); it stays in the outbox\n", d.Reason)
	}
	fmt.Fprintf(env.Stderr, "fieldtip: sent %d tips; %d bytes sent in %.1f s connected (%d connections)\n",
		len(rep.Sent), rep.BytesSent, rep.Connected.Seconds(), rep.Sessions)
	if rep.Remaining > 0 {
		why := "stopped"
		if err != nil {
			why = oneReason(err)
		}
		return &cli.ExitError{Code: 3, Msg: fmt.Sprintf("%s; %d tips (%d bytes) wait in the outbox: run fieldtip send again later", why, rep.Remaining, rep.RemainingBytes)}
	}
	if len(rep.Dropped) > 0 {
		return fmt.Errorf("%d tips could not be delivered", len(rep.Dropped))
	}
	return nil
}

func oneReason(err error) string {
	var perr *protocol.Error
	switch {
	case errors.Is(err, client.ErrBudgetSpent):
		return "the time budget is spent"
	case errors.As(err, &perr):
		return "the server refused: " + perr.Error()
	}
	return err.Error()
}

// progress shows upload progress: a bar on a terminal, plain lines
// otherwise (a log, a test).
type progress struct {
	env  *cli.Env
	tty  bool
	bar  *progressbar.ProgressBar
	i, n int
	last int64
}

func newProgress(env *cli.Env) *progress {
	p := &progress{env: env}
	if f, ok := env.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

func (p *progress) item(i, n int) {
	p.done()
	p.i, p.n, p.last = i, n, -1
}

func (p *progress) progress(acked, total int64) {
	if p.tty {
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(p.env.Stderr),
				progressbar.OptionSetDescription(fmt.Sprintf("tip %d of %d", p.i+1, p.n)),
				progressbar.OptionShowBytes(true),
				progressbar.OptionClearOnFinish(),
				progressbar.OptionThrottle(200*time.Millisecond))
		}
		p.bar.Set64(acked)
		return
	}
	if acked != p.last {
		fmt.Fprintf(p.env.Stderr, "fieldtip: tip %d of %d: %d of %d bytes acknowledged\n", p.i+1, p.n, acked, total)
		p.last = acked
	}
}

func (p *progress) done() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
}
