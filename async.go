package reconn

import (
	"context"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// writer is the one goroutine of an Async Conn that sends what Write
// buffered. Write appends each message to the ring and wakes the writer,
// which takes the right to write and sends everything not yet sent in
// writes of up to maxWrite bytes, so that under load one system call
// carries many messages. It checks the link after a kernel event, redials
// with backoff and replays, as a synchronous Write would, with the same
// functions; it never gives up, but once the connection has been down for
// RedialTimeout it records an error that Write, Flush and Close report
// until a connection is up again.
type writer struct {
	c     *Conn
	o     *op // the writer's own op: the drain context, no limit
	stopW context.CancelCauseFunc
	wake  chan struct{} // a buffered token: there is something to do
	done  chan struct{} // closed when the goroutine has returned

	connected chan struct{} // closed once the first connection is up
	gotConn   atomic.Bool
	roomWait  atomic.Int32 // Writes waiting for room: the writer polls acknowledgements
	stopping  atomic.Bool  // Close ends the writer: every link's writes end at once

	failed atomic.Pointer[error] // set after RedialTimeout down, cleared when up

	lastCheckpoint time.Time     // of the spool; the writer's goroutine's own
	syncDone       chan struct{} // closed to stop the spool's sync goroutine; nil if none
	syncWG         sync.WaitGroup
}

// startWriter makes c asynchronous: it starts the writer, which dials the
// first connection at once.
func (c *Conn) startWriter() {
	drain, stop := context.WithCancelCause(c.base)
	w := &writer{
		c:         c,
		stopW:     stop,
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		connected: make(chan struct{}),
	}
	w.o = c.newOp(drain, nil, time.Time{}, false)
	w.o.writer = true
	c.w = w
	if every := c.cfg.spoolSync; c.spool != nil && every > 0 {
		w.syncDone = make(chan struct{})
		w.syncWG.Go(func() { w.syncSpool(every) })
	}
	w.signal()
	go w.run()
}

// signal wakes the writer. It never blocks and never allocates. In the
// synchronous mode (w is nil) it does nothing.
func (w *writer) signal() {
	if w == nil {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// err returns the error the writer records while the connection has been
// down for longer than RedialTimeout, or nil.
func (w *writer) err() error {
	if e := w.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// down is called after each failed dial attempt of the writer's redial
// loop, which began at start: once RedialTimeout has passed since the
// connection went down, it records the error.
func (w *writer) down(o *op, start time.Time) {
	t := w.c.cfg.redialTimeout
	since := start
	if ns := w.c.downSince.Load(); ns != 0 {
		since = time.Unix(0, ns)
	}
	if t > 0 && time.Since(since) >= t {
		var err error = &redialError{cause: ErrRedialLimit, last: o.last, attempts: o.attempts}
		w.failed.Store(&err)
	}
}

// up is called when a new link is installed.
func (w *writer) up() {
	if w == nil {
		return
	}
	w.failed.Store(nil)
	if w.gotConn.CompareAndSwap(false, true) {
		close(w.connected)
	}
}

// stop ends the writer and waits for it: a write it is blocked in ends at
// once.
func (w *writer) stop() {
	if w == nil {
		return
	}
	w.stopping.Store(true)
	w.stopW(net.ErrClosed)
	w.c.mu.Lock()
	w.c.cur.Load().nc.SetWriteDeadline(aLongTimeAgo)
	w.c.mu.Unlock()
	<-w.done
	if w.syncDone != nil {
		close(w.syncDone)
		w.syncWG.Wait()
	}
	w.o.end()
}

// roomMade is called after a trim made room in the ring: it wakes the
// Writes waiting for room.
func (w *writer) roomMade() {
	if w != nil && w.roomWait.Load() > 0 {
		w.c.gate.sig.kick()
	}
}

func (w *writer) run() {
	defer close(w.done)
	o := w.o
	// again wakes the writer to look once more while messages wait in
	// the spool for room in the ring, which only acknowledgements make.
	again := time.NewTimer(time.Hour)
	again.Stop()
	defer again.Stop()
	d := 50 * time.Microsecond
	for {
		select {
		case <-w.wake:
		case <-again.C:
		case <-o.ctx.Done():
			return
		}
		more, ok := w.pump()
		if !ok {
			return
		}
		// OnRedial runs without the right to write held.
		if len(o.events) > 0 && w.c.cfg.onRedial != nil {
			for _, ev := range o.events {
				w.c.cfg.onRedial(ev)
			}
		}
		o.events = o.events[:0]
		w.checkpoint(false)
		if more {
			again.Reset(d)
			d = min(2*d, 10*time.Millisecond)
		} else {
			d = 50 * time.Microsecond
		}
	}
}

// pump sends everything not yet sent, redialing as needed. It reports
// whether messages wait in the spool for room in the ring, and false for
// ok when the writer must stop.
func (w *writer) pump() (more, ok bool) {
	c, o := w.c, w.o
	h, err := c.gate.lockCtx(o.ctx)
	if err != nil {
		return false, false
	}
	defer c.gate.unlock(h)
	for {
		l := c.cur.Load()
		c.check(h, l)
		if l.state != healthy {
			c.settle(h, l)
			// What the dead link's peer took is confirmed now: record
			// it before a redial that may last as long as the outage.
			w.checkpoint(true)
			if c.held() == 0 && !c.spilled() && w.gotConn.Load() {
				// Nothing to deliver: redial when a Write needs it.
				return false, true
			}
			o.attempts, o.last = 0, nil
			if err := c.redial(h, o, l, !w.gotConn.Load() || c.spilled()); err != nil {
				return false, o.ctx.Err() == nil
			}
			continue
		}
		c.loadSpilled(h)
		confirmed := c.st.confirmed.Load()
		if _, _, err := c.send(h, o, l); err != nil {
			if l.state == healthy {
				return false, false // Close stopped the write
			}
			continue // l is dead: redial
		}
		spilled := c.spilled()
		c.lockRing()
		// With a spool, acknowledgements are also counted when a
		// checkpoint is due, so that it records them.
		trim := c.ring.usage() >= c.ring.mark || w.roomWait.Load() > 0 || l.sess != nil || spilled || w.checkpointDue()
		k := 0
		if !l.ackable {
			// Nothing will confirm what l carried: keep an eighth of
			// the ring free by assuming the oldest of it delivered, as
			// acknowledgements would free it on another link, so that
			// Write finds room without waiting for the writer.
			var n int64
			k, n = c.ring.evict(int(c.ring.max / 8))
			c.count(k, n)
		}
		c.unlockRing()
		if k > 0 {
			w.roomMade()
		}
		if trim {
			c.refresh(h, l)
			c.lockRing()
			c.ring.remark()
			c.unlockRing()
		}
		if spilled && c.st.confirmed.Load() != confirmed && o.ctx.Err() == nil {
			// Acknowledgements made room for what waits in the spool:
			// load and send it now rather than after a pause.
			w.checkpoint(false)
			continue
		}
		return spilled, true
	}
}

// writeAsync is Write with Async: it appends b to the ring and wakes the
// writer.
func (c *Conn) writeAsync(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.writeError(net.ErrClosed)
	}
	if len(b) == 0 {
		return 0, nil
	}
	if int64(len(b))+heldSize > c.ring.max || (c.cfg.proto != nil && len(b) > c.cfg.proto.MaxMessage()) {
		return 0, c.writeError(ErrTooLarge)
	}
	if err := c.w.err(); err != nil && c.spool == nil {
		// With a spool, Writes go on through the outage.
		return 0, c.writeError(err)
	}
	if err := c.reportRefusal(); err != nil {
		return 0, c.writeError(err)
	}
	if c.deadlinePassed() {
		return 0, c.writeError(os.ErrDeadlineExceeded)
	}
	c.rmu.Lock()
	if c.closed.Load() {
		// Close began after the first look: its flush takes its target
		// under rmu, so b would be neither flushed nor counted.
		c.rmu.Unlock()
		return 0, c.writeError(net.ErrClosed)
	}
	took, err := c.enqueue(b)
	c.rmu.Unlock()
	if err != nil {
		return 0, c.writeError(err)
	}
	if !took {
		return c.writeFull(b)
	}
	c.w.signal()
	return len(b), nil
}

// enqueue takes b as a message not yet sent: into the ring, and with a
// spool into its files first. It reports false if there is no room (in
// the ring, or in a spool at its limit), and the error of a spool that
// could not take it (a full disk, say). c.rmu is held.
func (c *Conn) enqueue(b []byte) (bool, error) {
	fits := c.ring.fits(len(b))
	if c.spool != nil {
		return c.spoolAppend(b, fits)
	}
	if !fits {
		return false, nil
	}
	c.st.messages.Add(1)
	c.st.bytes.Add(int64(len(b)))
	c.ring.add(b, notOnLink)
	return true, nil
}

// writeFull is writeAsync when the ring is full: it fails at once with
// FailWhenFull, and otherwise waits for room until the write deadline or
// Close.
func (c *Conn) writeFull(b []byte) (int, error) {
	if c.cfg.onFull != nil {
		c.cfg.onFull()
	}
	if c.cfg.failWhenFull {
		c.st.rejected.Add(1)
		return 0, c.writeError(ErrBufferFull)
	}
	o := c.newOp(c.life, nil, time.Time{}, true)
	defer o.end()
	c.w.roomWait.Add(1)
	defer c.w.roomWait.Add(-1)
	c.gate.sig.enter()
	defer c.gate.sig.leave()
	d := 50 * time.Microsecond
	for {
		ch := c.gate.sig.wait()
		c.rmu.Lock()
		if c.closed.Load() {
			c.rmu.Unlock()
			return 0, c.writeError(net.ErrClosed)
		}
		took, err := c.enqueue(b)
		if err != nil {
			c.rmu.Unlock()
			return 0, c.writeError(err)
		}
		if took {
			c.rmu.Unlock()
			c.w.signal()
			return len(b), nil
		}
		// A link that counts no acknowledgements never frees room:
		// the oldest messages it carried are assumed delivered. Only
		// what the writer has sent can go; when it has sent none of
		// what is held, wait for it like any other Write, rather than
		// taking the right to write from it again at once (where
		// goroutines are not preempted, js/wasm, it would never run).
		l := c.cur.Load()
		evict := !l.ackable && l.state == healthy
		c.rmu.Unlock()
		if evict {
			if h, err := c.gate.lockCtx(o.ctx); err == nil {
				c.lockRing()
				k, n := c.ring.evict(len(b))
				c.count(k, n)
				c.unlockRing()
				c.gate.unlock(h)
				if k > 0 {
					c.w.roomMade()
					continue
				}
			}
		}
		if err := c.w.err(); err != nil && c.spool == nil {
			return 0, c.writeError(err)
		}
		// The writer asks for the acknowledgements that make room: wake
		// it now and then; a trim wakes this Write.
		c.w.signal()
		if err := o.pauseOr(o.ctx, ch, d); err != nil {
			return 0, c.writeError(o.fail(err))
		}
		d = min(2*d, 10*time.Millisecond)
	}
}
