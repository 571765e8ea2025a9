package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fieldtip/client"
	"fieldtip/internal/cli"
	"fieldtip/protocol"

	"github.com/spf13/pflag"
)

type send struct {
	configFlag
	netFlags
	outboxFlags
	tipFlags
	budget  time.Duration
	replies bool
}

// budgetWarn is the budget above which send and replies warn: the hard
// stop under direction finding (docs/field.md).
const budgetWarn = 60 * time.Second

// warnBudget warns of a budget over budgetWarn, naming the repository's
// doc that says why (issue 12: the warning, and no pointer outside it).
func warnBudget(env *cli.Env, budget time.Duration) {
	if budget > budgetWarn {
		fmt.Fprintf(env.Stderr, "fieldtip: warning: a budget of %s is over %s: direction finders locate a phone that transmits for about a minute (docs/field.md); 30s is safer\n", budget, budgetWarn)
	}
}

func (*send) Name() string { return "send" }
func (*send) Usage() string {
	return "[--budget 30s] [--replies] [--proxy socks5h://HOST:PORT | --no-proxy] [--codename-file F] [--config DIR] [--text TEXT [--attach FILE]...]"
}
func (*send) Summary() string {
	return "Send what waits in the outbox, in one short session, until the budget of connected time is spent; with --text or --attach, compose that tip first. Prints each sent tip's id; exits 3 while items remain in the outbox."
}
func (c *send) Flags(fs *pflag.FlagSet) {
	c.configFlag.declare(fs)
	c.netFlags.declare(fs)
	c.outboxFlags.declare(fs)
	c.tipFlags.declare(fs, "compose a tip with this text first, then send")
	fs.DurationVar(&c.budget, "budget", client.DefaultBudget, "most time to stay connected; a hard stop, the rest resumes next time (docs/field.md: about 30 s, never more than 60 s under direction finding)")
	fs.BoolVar(&c.replies, "replies", false, "then fetch the newsroom's replies in the same budget, on a separate connection (as fieldtip replies)")
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
	warnBudget(env, c.budget)
	if err := c.netFlags.apply(cfg); err != nil {
		return err
	}
	var ob *client.Outbox
	var mine *composed
	if c.given() {
		if ob, mine, err = composeInto(ctx, env, cfg, &c.outboxFlags, &c.tipFlags, false); err != nil {
			return err
		}
	} else {
		exists, err := client.OutboxExists(dir)
		if err != nil {
			return err
		}
		if !exists {
			fmt.Fprintln(env.Stderr, "fieldtip: the outbox is empty")
			return c.fetchReplies(ctx, env, cfg, 0)
		}
		if ob, err = c.openOutbox(env, dir, newWork(env)); err != nil {
			return err
		}
	}
	if len(ob.Items) == 0 {
		fmt.Fprintln(env.Stderr, "fieldtip: the outbox is empty")
		return c.fetchReplies(ctx, env, cfg, 0)
	}

	w := newWork(env)
	show := newProgress(env)
	opts := client.SendOptions{
		Budget:        c.budget,
		Item:          show.item,
		Progress:      show.progress,
		Renew:         func() { show.done(); w.begin("proof of work") },
		RenewProgress: w.count,
	}
	rep, err := client.SendOutbox(ctx, cfg, ob, opts)
	w.end()
	show.done()
	if mine != nil && ctx.Err() == nil && dropped(rep, mine.item.UploadID) {
		// The tip this run composed was sealed to a bundle the server no
		// longer accepts, and the newer bundle is now in cfg: seal it again
		// from memory rather than ask the source to type it again (issue
		// 12). The proof of work runs with the radio off.
		fmt.Fprintf(env.Stderr, "fieldtip: the newsroom's bundle is now version %d: sealing the tip again to it\n", cfg.HighestBundleVersion)
		it, serr := sealTip(ctx, env, cfg, ob, mine.tip, mine.frameSize, mine.reply, w)
		if serr == nil {
			serr = ob.Add(it)
		}
		if serr != nil {
			printReport(env, ob, rep)
			return fmt.Errorf("seal the tip again: %w", serr)
		}
		rep.Dropped = withoutItem(rep.Dropped, mine.item.UploadID)
		if left := c.budget - rep.Connected; left > 0 {
			opts.Budget = left
			var rep2 *client.SendReport
			rep2, err = client.SendOutbox(ctx, cfg, ob, opts)
			w.end()
			show.done()
			rep = merge(rep, rep2)
		} else {
			err = fmt.Errorf("the budget of %s is spent: %w", c.budget, client.ErrBudgetSpent)
		}
	}
	if rep == nil {
		return err
	}
	printReport(env, ob, rep)
	// The tips' outcome decides the exit status below; a failed fetch
	// is said, and fails the run only when nothing else does.
	ferr := c.fetchReplies(ctx, env, cfg, rep.Connected)
	if ferr != nil {
		fmt.Fprintf(env.Stderr, "fieldtip: replies: %v\n", ferr)
	}
	waiting, refused, waitingBytes := 0, 0, int64(0)
	for _, it := range ob.Items {
		if it.Refused != "" {
			refused++
			continue
		}
		waiting++
		waitingBytes += int64(len(it.Ciphertext))
	}
	switch {
	case waiting > 0:
		why := "stopped"
		if err != nil {
			why = oneReason(err)
		}
		return &cli.ExitError{Code: 3, Msg: fmt.Sprintf("%s; %d tips (%d bytes) wait in the outbox: run fieldtip send again later", why, waiting, waitingBytes)}
	case refused > 0:
		return fmt.Errorf("%d tips in the outbox are refused for good (see above; fieldtip outbox lists them)", refused)
	case len(rep.Dropped) > 0:
		return fmt.Errorf("%d tips could not be delivered: compose them again with fieldtip compose", len(rep.Dropped))
	}
	if ferr != nil {
		return fmt.Errorf("replies: %w", ferr)
	}
	return nil
}

// printReport prints the sent tips' ids on stdout and, on stderr, what
// became of the others, each with what to do, then the totals.
func printReport(env *cli.Env, ob *client.Outbox, rep *client.SendReport) {
	for _, r := range rep.Sent {
		fmt.Fprintln(env.Stdout, r.Receipt.TipIDString())
	}
	for _, d := range rep.Dropped {
		fmt.Fprintf(env.Stderr, "fieldtip: a tip composed %s was refused for good and left the outbox (%v): compose it again with fieldtip compose\n",
			dayPhrase(d.Day), cli.TerminalSafe(fmt.Sprint(d.Reason)))
	}
	for _, d := range rep.Held {
		n := number(ob, d.UploadID)
		if d.Code == protocol.CodeTooLarge || d.Code == protocol.CodeBadCiphertext {
			fmt.Fprintf(env.Stderr, "fieldtip: tip %d is refused for good: %s\n", n, refusalAdvice(d.Code, n))
			continue
		}
		fmt.Fprintf(env.Stderr, "fieldtip: tip %d waits: %s; run fieldtip send again later, or fieldtip init if the newsroom says its bundle changed\n", n, cli.TerminalSafe(fmt.Sprint(d.Reason)))
	}
	fmt.Fprintf(env.Stderr, "fieldtip: sent %d tips; %d bytes sent in %.1f s connected (%d connections)\n",
		len(rep.Sent), rep.BytesSent, rep.Connected.Seconds(), rep.Sessions)
}

// refusalAdvice says what a refusal for good means and what to do about
// tip n.
func refusalAdvice(code protocol.Code, n int) string {
	var what, then string
	switch code {
	case protocol.CodeTooLarge:
		what, then = "the server accepts no tip this large", "compose it again with fewer or smaller attachments"
	case protocol.CodeBadCiphertext:
		what, then = "the server cannot check it as a tip sealed to the newsroom's editors", "compose it again"
	default:
		what, then = "the server refused it", "compose it again"
	}
	return fmt.Sprintf("%s (%s); it stays in the outbox and is not sent again: remove it with fieldtip outbox drop %d, then %s", what, code, n, then)
}

// dayPhrase says when a tip was composed: "today", "3 days ago", or
// "before fieldtip kept the day".
func dayPhrase(day int) string {
	if day == 0 {
		return "before fieldtip kept the day"
	}
	switch n := client.DayOf(time.Now()) - day; {
	case n <= 0:
		return "today"
	case n == 1:
		return "1 day ago"
	default:
		return fmt.Sprintf("%d days ago", n)
	}
}

// number returns the place of the item with id in the outbox, from 1, as
// fieldtip outbox numbers it; 0 if it is not there.
func number(ob *client.Outbox, id [16]byte) int {
	for i, it := range ob.Items {
		if it.UploadID == id {
			return i + 1
		}
	}
	return 0
}

func dropped(rep *client.SendReport, id [16]byte) bool {
	return rep != nil && len(withoutItem(rep.Dropped, id)) != len(rep.Dropped)
}

func withoutItem(ds []client.DroppedItem, id [16]byte) []client.DroppedItem {
	var out []client.DroppedItem
	for _, d := range ds {
		if d.UploadID != id {
			out = append(out, d)
		}
	}
	return out
}

// merge adds a second SendOutbox's report to the first's. The second's
// Held lists again the items refused before it, so each item is kept once.
func merge(a, b *client.SendReport) *client.SendReport {
	if b == nil {
		return a
	}
	out := *b
	out.Sent = append(append([]*client.Result(nil), a.Sent...), b.Sent...)
	out.Dropped = append(append([]client.DroppedItem(nil), a.Dropped...), b.Dropped...)
	seen := map[[16]byte]bool{}
	out.Held = nil
	for _, d := range append(append([]client.DroppedItem(nil), a.Held...), b.Held...) {
		if !seen[d.UploadID] {
			seen[d.UploadID] = true
			out.Held = append(out.Held, d)
		}
	}
	out.BytesSent += a.BytesSent
	out.Connected += a.Connected
	out.Sessions += a.Sessions
	return &out
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

// fetchReplies fetches the replies (--replies) on a connection of its own,
// within what the budget has left after spent.
func (c *send) fetchReplies(ctx context.Context, env *cli.Env, cfg *client.Config, spent time.Duration) error {
	if !c.replies {
		return nil
	}
	left := c.budget - spent
	if left <= 0 {
		return fmt.Errorf("the budget of %s is spent: no time left to fetch replies", c.budget)
	}
	return fetchReplies(ctx, env, cfg, &c.outboxFlags, left)
}
