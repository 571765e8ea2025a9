package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"fieldtip/internal/cli"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// isTerminal reports whether s (a standard stream) is a terminal:
// progress and prompts are for a person watching, never for a log or a
// test's pipe.
func isTerminal(s any) bool {
	f, ok := s.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// work shows long offline work on a terminal (issue 12: a 30 MB compose
// ran 42 s in silence): one line on stderr naming the stage (key
// derivation, scrubbing, sealing, proof of work), with a count where
// there is one and the seconds elapsed, redrawn a few times a second and
// cleared when the stage ends. Off a terminal it writes nothing.
type work struct {
	w   io.Writer
	tty bool

	mu          sync.Mutex
	name        string
	done, total int
	start       time.Time
	stop        chan struct{}
	stopped     chan struct{}
}

// redraw is how often the line is redrawn.
const redraw = 250 * time.Millisecond

func newWork(env *cli.Env) *work { return &work{w: env.Stderr, tty: isTerminal(env.Stderr)} }

// begin ends the stage in progress, if any, and starts one.
func (p *work) begin(name string) {
	if p == nil || !p.tty {
		return
	}
	p.end()
	p.mu.Lock()
	p.name, p.done, p.total, p.start = name, 0, 0, time.Now()
	p.stop, p.stopped = make(chan struct{}), make(chan struct{})
	p.drawLocked()
	p.mu.Unlock()
	go func(stop, stopped chan struct{}) {
		defer close(stopped)
		t := time.NewTicker(redraw)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.drawLocked()
				p.mu.Unlock()
			}
		}
	}(p.stop, p.stopped)
}

// count records how far the stage is: done of total.
func (p *work) count(done, total int) {
	if p == nil || !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if done > p.done {
		p.done = done
	}
	p.total = total
}

// end clears the line of the stage in progress.
func (p *work) end() {
	if p == nil || !p.tty {
		return
	}
	p.mu.Lock()
	stop, stopped := p.stop, p.stopped
	p.stop = nil
	p.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	<-stopped
	fmt.Fprint(p.w, "\r\033[K")
}

func (p *work) drawLocked() {
	line := "fieldtip: " + p.name
	if p.total > 0 {
		line += fmt.Sprintf(" %d of %d", p.done, p.total)
	}
	line += fmt.Sprintf("… %d s", int(time.Since(p.start).Seconds()))
	fmt.Fprint(p.w, "\r\033[K"+line)
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
	return &progress{env: env, tty: isTerminal(env.Stderr)}
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
