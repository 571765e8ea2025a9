package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"fieldtip/client"
	"fieldtip/internal/cli"

	"github.com/spf13/pflag"
)

// outboxList is fieldtip outbox: what waits, numbered as drop takes it.
type outboxList struct {
	configFlag
	outboxFlags
}

func (*outboxList) Name() string  { return "outbox" }
func (*outboxList) Usage() string { return "[--codename-file F] [--config DIR]" }
func (*outboxList) Summary() string {
	return "List what waits in the outbox, one tip a line: its number, size in bytes, age in days, and state (waiting, or refused with the reason and what to do)."
}
func (c *outboxList) Flags(fs *pflag.FlagSet) {
	c.configFlag.declare(fs)
	c.outboxFlags.declareCodename(fs)
}

func (c *outboxList) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 0 {
		return cli.Usagef("no arguments (fieldtip outbox drop N removes tip N)")
	}
	ob, err := c.openExisting(env, &c.configFlag)
	if err != nil {
		return err
	}
	if ob == nil || len(ob.Items) == 0 {
		fmt.Fprintln(env.Stderr, "fieldtip: the outbox is empty")
		return nil
	}
	now := time.Now()
	if isTerminal(env.Stdout) {
		fmt.Fprintln(env.Stdout, "#\tBYTES\tDAYS\tSTATE")
	}
	refused := 0
	for i, it := range ob.Items {
		age := "-"
		if d := it.AgeDays(now); d >= 0 {
			age = strconv.Itoa(d)
		}
		state := "waiting"
		if it.Refused != "" {
			refused++
			state = "refused: " + refusalAdvice(it.Refused, i+1)
		}
		fmt.Fprintf(env.Stdout, "%d\t%d\t%s\t%s\n", i+1, len(it.Ciphertext), age, state)
	}
	fmt.Fprintf(env.Stderr, "fieldtip: %d tips in the outbox, %d of them refused; %d of %d bytes free\n", len(ob.Items), refused, ob.Free(), ob.Size())
	return nil
}

// outboxDrop is fieldtip outbox drop N.
type outboxDrop struct {
	configFlag
	outboxFlags
}

func (*outboxDrop) Name() string  { return "outbox drop" }
func (*outboxDrop) Usage() string { return "N [--codename-file F] [--config DIR]" }
func (*outboxDrop) Summary() string {
	return "Remove tip N (as fieldtip outbox numbers it) from the outbox, unsent; the outbox is rewritten whole."
}
func (c *outboxDrop) Flags(fs *pflag.FlagSet) {
	c.configFlag.declare(fs)
	c.outboxFlags.declareCodename(fs)
}

func (c *outboxDrop) Run(ctx context.Context, env *cli.Env, args []string) error {
	if len(args) != 1 {
		return cli.Usagef("want the number of the tip to drop, as fieldtip outbox lists it")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return cli.Usagef("%q is not a tip number (1, 2, …, as fieldtip outbox lists them)", args[0])
	}
	ob, err := c.openExisting(env, &c.configFlag)
	if err != nil {
		return err
	}
	if ob == nil || n > len(ob.Items) {
		have := 0
		if ob != nil {
			have = len(ob.Items)
		}
		return fmt.Errorf("there is no tip %d: the outbox holds %d", n, have)
	}
	it := ob.Items[n-1]
	if err := ob.Remove(it.UploadID); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "fieldtip: dropped tip %d (%d bytes, composed %s); %d tips in the outbox\n", n, len(it.Ciphertext), dayPhrase(it.Day), len(ob.Items))
	return nil
}

// openExisting opens the outbox of the config dir, or returns nil if there
// is none: looking must not create one.
func (f *outboxFlags) openExisting(env *cli.Env, cf *configFlag) (*client.Outbox, error) {
	dir, err := cf.path()
	if err != nil {
		return nil, err
	}
	exists, err := client.OutboxExists(dir)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, nil
	}
	return f.openOutbox(env, dir, newWork(env))
}
