package reconn

import (
	"context"
	"net"
	"time"
)

// Close stops new Writes, wakes pending Reads and Writes, half-closes the
// connection and waits until the peer's kernel has acknowledged
// everything written, redialing and replaying if the peer dies meanwhile.
// The wait is bounded by the write deadline if one is set, else by
// Dialer.FlushTimeout, and ends when the context given to DialContext is
// done. If it gives up, Close returns a *net.OpError wrapping an
// *UnconfirmedError. No goroutine of the Conn is left when Close returns.
//
// Close is safe to call more than once; later calls return an error
// satisfying errors.Is(err, net.ErrClosed).
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opError("close", net.ErrClosed)
	}
	c.mu.Lock()
	if !c.wdl.IsZero() {
		c.flushDL = c.wdl
	} else if c.cfg.flushTimeout > 0 {
		c.flushDL = time.Now().Add(c.cfg.flushTimeout)
	} else if c.cfg.flushTimeout < 0 {
		c.flushDL = aLongTimeAgo
	}
	c.end(net.ErrClosed)
	c.gate.sig.kick()
	for _, l := range [...]*link{c.cur.Load(), c.lingering} {
		if l != nil {
			if c.cfg.proto == nil {
				// In a protocol session, the session reads, until the end.
				l.nc.SetReadDeadline(aLongTimeAgo)
			}
			if !c.async() {
				// A synchronous Write blocked in the socket ends now;
				// the writer goes on sending until the flush ends.
				l.nc.SetWriteDeadline(aLongTimeAgo)
			}
		}
	}
	c.mu.Unlock()

	defer c.bg.Wait() // after the right to write is released: a background recovery may wait for it
	var err error
	if c.cfg.replay > 0 {
		// Without FlushTimeout the limit has passed: one look, no wait,
		// and what is unconfirmed is reported.
		err = c.flushAll()
	}
	c.w.stop()
	c.closeSpool(err == nil)
	if h, lerr := c.gate.lockCtx(c.base); lerr == nil {
		defer c.gate.unlock(h)
		if l := c.cur.Load(); l.sess != nil && l.state == healthy {
			ctx, cancel := context.WithDeadline(c.base, c.flushDL)
			l.sess.Close(ctx, l.nc, l.sessN)
			cancel()
		}
	}
	if err == nil {
		err = c.reportRefusal()
	}
	c.mu.Lock()
	links := [...]*link{c.cur.Load(), c.lingering}
	c.lingering = nil
	c.mu.Unlock()
	for _, l := range links {
		if l != nil {
			// What the flush confirmed is delivered, whatever the close
			// says: a TLS close_notify to a peer that has reset fails.
			l.close()
		}
	}
	if err != nil {
		return c.opError("close", err)
	}
	return nil
}

// flushAll is Close's flush, bounded by the flush limit and by the context
// given to DialContext. In the synchronous mode it keeps the right to
// write to the end; with Async it takes it for each look, as Flush does,
// so that the writer can go on.
func (c *Conn) flushAll() error {
	o := c.newOp(c.base, nil, c.flushDL, false)
	defer o.end()
	var f flushState
	h, err := o.lock()
	if err != nil {
		return c.unconfirmed(o.fail(err), &f)
	}
	if !c.async() {
		defer c.gate.unlock(h)
		c.restoreWriteDeadline(c.cur.Load())
	}
	if err := c.poll(h, o, o.ctx, c.async(), func(h hold) (bool, error) { return c.flushStep(h, o, &f, true) }); err != nil {
		return c.unconfirmed(err, &f)
	}
	return nil
}
