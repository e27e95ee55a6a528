package faultnet

import (
	"net"
	"sync"
	"time"
)

// gate holds the state of a reading goroutine that faults change: Pause,
// Stall, Latency, CutAfter and the stop that precedes a close.
type gate struct {
	mu       sync.Mutex
	src      net.Conn // the connection read; nil until it is known
	paused   bool
	stalled  bool
	latency  time.Duration
	cut      int64 // bytes to let through before the cut; negative if none is armed
	stopping bool  // the reader is to stop at once
	stop     chan struct{}
	wake     chan struct{}
}

func newGate(src net.Conn) gate {
	return gate{src: src, cut: -1, stop: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// delay waits for the latency, or until the reader is stopped.
func (g *gate) delay(timer *time.Timer) {
	g.mu.Lock()
	d := g.latency
	g.mu.Unlock()
	if d <= 0 {
		return
	}
	timer.Reset(d)
	select {
	case <-timer.C:
	case <-g.stop:
		timer.Stop()
	}
}

// admit waits, with mu held, while the gate is paused, then takes n
// bytes just read into account for an armed cut. It returns how many of
// them may pass and whether the cut is reached, or ok false if the
// reader is to stop.
func (g *gate) admit(n int) (pass int, cut, ok bool) {
	for g.paused && !g.stopping {
		g.mu.Unlock()
		select {
		case <-g.wake:
		case <-g.stop:
		}
		g.mu.Lock()
	}
	if g.stopping {
		return 0, false, false
	}
	if g.cut >= 0 && n > 0 {
		if int64(n) >= g.cut {
			return int(g.cut), true, true
		}
		g.cut -= int64(n)
	}
	return n, false, true
}

// halt tells the reader to stop, with mu held, and wakes it.
func (g *gate) halt() {
	if g.stopping {
		return
	}
	g.stopping = true
	close(g.stop)
	if g.src != nil {
		g.src.SetReadDeadline(time.Unix(1, 0)) // wake a blocked Read
	}
}

// pause stops the reader, with mu held, until resume.
func (g *gate) pause() {
	g.paused = true
	if !g.stopping && g.src != nil {
		g.src.SetReadDeadline(time.Unix(1, 0)) // wake a blocked Read
	}
}

// resume undoes pause, with mu held.
func (g *gate) resume() {
	g.paused = false
	if !g.stopping && g.src != nil {
		g.src.SetReadDeadline(time.Time{})
	}
	select {
	case g.wake <- struct{}{}:
	default:
	}
}
