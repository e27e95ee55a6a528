package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"sync/atomic"
	"time"
)

// isTerminal reports whether f is a character device, such as a terminal.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress draws a one-line bar on a terminal, redrawn every 100 ms. It does
// nothing unless both stdout and stderr are terminals.
type progress struct {
	w       io.Writer
	on      bool
	runs    int
	run     int
	written atomic.Int64

	label string
	total int
	stop  chan struct{}
	done  chan struct{}
}

func newProgress(w io.Writer, runs int) *progress {
	return &progress{w: w, runs: runs, on: isTerminal(os.Stdout) && isTerminal(os.Stderr)}
}

func (p *progress) begin(label string, total int) {
	p.run++
	p.written.Store(0)
	if !p.on {
		return
	}
	p.label, p.total = label, total
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			p.draw()
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
}

func (p *progress) draw() {
	const width = 30
	n := int(p.written.Load())
	fill := 0
	if p.total > 0 {
		fill = n * width / p.total
	}
	line := fmt.Sprintf("run %d/%d %-24s [%s%s] %d/%d", p.run, p.runs, p.label,
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), n, p.total)
	fmt.Fprintf(p.w, "\r%-90s", line)
}

// end stops the bar, then clears the line (the run's wait for the server
// follows without a bar).
func (p *progress) end() {
	if !p.on {
		return
	}
	close(p.stop)
	<-p.done
	fmt.Fprintf(p.w, "\r%-90s\r", "")
}

func (p *progress) skip(n int) { p.run += n }
