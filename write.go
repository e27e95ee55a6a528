package reconn

import (
	"context"
	"errors"
	"net"
	"os"
	"time"
)

// Write writes b as one message. See the package documentation for what a
// nil error guarantees.
//
// If the connection is found dead, Write redials, re-sends what the old
// peer had not acknowledged, and then writes b, blocking meanwhile. The
// wait ends at the write deadline (a timeout error), at Close
// (net.ErrClosed), when the context given to DialContext is done, or after
// Dialer.RedialTimeout (ErrRedialLimit); the error then wraps the last
// dial or write error. On a timeout, n is the number of bytes of b
// written, and they count as written.
func (c *Conn) Write(b []byte) (int, error) {
	if c.async() {
		return c.writeAsync(b)
	}
	h, ok := c.gate.lockFast()
	if !ok {
		return c.writeSlow(b)
	}
	if c.closed.Load() || len(b) == 0 {
		c.gate.unlockFast()
		if len(b) == 0 && !c.closed.Load() {
			return 0, nil
		}
		return c.writeSlow(b)
	}
	l := c.cur.Load()
	if !(l.quiet && !l.flagged.Load() && (c.cfg.replay <= 0 || c.ring.below(len(b)))) && !c.ready(h, l, len(b)) {
		c.gate.unlockFast()
		return c.writeSlow(b)
	}
	n, err := l.write(h, b)
	if err != nil {
		if c.closed.Load() || errors.Is(err, os.ErrDeadlineExceeded) {
			c.keepPart(h, l, b[:n], err)
			c.gate.unlockFast()
			return n, c.writeError(err)
		}
		// The connection failed. b goes again, whole, on the next one.
		c.died(h, l, err, false)
		c.gate.unlockFast()
		return c.writeSlow(b)
	}
	c.wrote(h, l, b)
	c.gate.unlockFast()
	return n, nil
}

// ready runs the check on l and makes room in the ring for a message of n
// bytes without waiting. It reports whether a Write may go on with l at
// once. Write calls it only when a look at l and the ring does not tell
// already: l needs a check before each Write (it is not watched, or it
// is flagged, or dead), or the ring reached its mark.
func (c *Conn) ready(h hold, l *link, n int) bool {
	c.check(h, l)
	if l.state != healthy {
		return false
	}
	if c.cfg.replay <= 0 {
		return true
	}
	if int64(n)+heldSize > c.ring.max || c.ring.sent != c.ring.end {
		return false
	}
	if c.ring.usage() >= c.ring.mark || !c.ring.fits(n) {
		c.refresh(h, l)
		c.ring.remark()
	}
	if c.ring.fits(n) {
		return l.state == healthy
	}
	if !l.ackable && l.state == healthy {
		// Nothing will ever confirm these: the oldest are assumed
		// delivered (see the package documentation).
		c.count(c.ring.evict(n))
		return true
	}
	return false
}

// writeSlow is Write when something stands in the way: another goroutine
// on the slow path, a dead connection, a full replay buffer, the deadline,
// or Close.
func (c *Conn) writeSlow(b []byte) (int, error) {
	o := c.newOp(c.life, nil, time.Time{}, true)
	defer o.end()
	h, err := o.lock()
	if err != nil {
		return 0, c.writeError(o.fail(err))
	}
	defer c.gate.unlock(h)
	if c.closed.Load() {
		return 0, c.writeError(net.ErrClosed)
	}
	if len(b) == 0 {
		return 0, nil
	}
	if c.cfg.replay > 0 && int64(len(b))+heldSize > c.ring.max {
		return 0, c.writeError(ErrTooLarge)
	}
	for {
		if o.ctx.Err() != nil {
			return 0, c.writeError(o.fail(context.Cause(o.ctx)))
		}
		l := c.cur.Load()
		c.check(h, l)
		if l.state != healthy {
			if err := c.redial(h, o, l, true); err != nil {
				return 0, c.writeError(err)
			}
			continue
		}
		if c.cfg.replay > 0 && c.replayLeft(h) {
			if _, err := c.resend(h, o, l); err != nil {
				if l.state == healthy {
					return 0, c.writeError(o.cutErr(err))
				}
				o.last = err
				continue
			}
		}
		if c.cfg.replay > 0 && !c.ring.fits(len(b)) {
			if c.cfg.onFull != nil {
				c.cfg.onFull()
			}
			if c.cfg.failWhenFull && l.ackable {
				c.st.rejected.Add(1)
				return 0, c.writeError(ErrBufferFull)
			}
			err := c.waitRoom(h, o, l, len(b))
			if err == errLinkDied {
				continue
			}
			if err != nil {
				return 0, c.writeError(err)
			}
		}
		n, err := o.write(h, l, b)
		if err == nil {
			c.wrote(h, l, b)
			return n, nil
		}
		if c.closed.Load() || errors.Is(err, os.ErrDeadlineExceeded) || o.ctx.Err() != nil {
			c.keepPart(h, l, b[:n], err)
			if o.ctx.Err() != nil {
				err = o.fail(context.Cause(o.ctx))
			}
			return n, c.writeError(err)
		}
		c.died(h, l, err, false)
		o.last = err
	}
}

// keepPart records the part of a message written before a write was
// stopped by a deadline or Close: the caller is told n bytes went, so the
// stream must stay what the caller believes it is. A deadline is told
// from the connection timing out (ETIMEDOUT, whose Timeout is also true)
// by os.ErrDeadlineExceeded: the latter ends the connection instead.
func (c *Conn) keepPart(h hold, l *link, part []byte, err error) {
	if len(part) > 0 {
		c.wrote(h, l, part)
	}
	if l.cc != nil {
		// After a failed write a TLS connection only repeats the error:
		// the next Write must redial.
		c.died(h, l, err, false)
	}
}

// wrote records a message written on l.
func (c *Conn) wrote(h hold, l *link, b []byte) {
	c.st.messages.Add(1)
	c.st.bytes.Add(int64(len(b)))
	if c.cfg.replay > 0 {
		c.ring.push(b, l.sentNow())
	}
}

// waitRoom waits until the ring has room for a message of n bytes, which
// acknowledgements make. The op's bound ends the wait; RedialTimeout does
// not, since the connection is up. It returns errLinkDied if l dies
// meanwhile.
func (c *Conn) waitRoom(h hold, o *op, l *link, n int) error {
	if !l.ackable {
		c.count(c.ring.evict(n))
		return nil
	}
	return c.poll(h, o, o.ctx, false, func(h hold) (bool, error) {
		c.refresh(h, l)
		if c.ring.fits(n) {
			return true, nil
		}
		if l.state != healthy {
			return false, errLinkDied
		}
		return false, nil
	})
}

// poll calls step, with a growing pause between calls, until step reports
// done or fails, or ctx, the op's bound or a narrower one, ends the wait.
// The caller holds the right to write. If release is set, poll gives it
// up for each pause and takes it back, within the op's bound, for each
// step, so that Writes go on meanwhile, and returns without it; otherwise
// it returns holding it.
func (c *Conn) poll(h hold, o *op, ctx context.Context, release bool, step func(hold) (bool, error)) error {
	for d := 50 * time.Microsecond; ; d = min(2*d, 10*time.Millisecond) {
		done, err := step(h)
		if done || err != nil {
			if release {
				c.gate.unlock(h)
			}
			return err
		}
		if release {
			c.gate.unlock(h)
		}
		if err := o.pause(ctx, d); err != nil {
			return o.fail(err)
		}
		if release {
			var err error
			if h, err = o.lock(); err != nil {
				return o.fail(err)
			}
		}
	}
}
