package reconn

import (
	"context"
	"math"
	"net"
	"time"
)

// Flush waits until the peer's kernel has acknowledged every message
// written before the call, redialing and replaying if the peer dies
// meanwhile. Writes go on while Flush waits. If ctx ends first, or the
// Conn is closed, or a redial gives up (see Dialer.RedialTimeout), Flush
// returns a *net.OpError wrapping an *UnconfirmedError.
//
// Where the platform has no acknowledgement count (see the package
// documentation), and with replay off, Flush returns at once.
func (c *Conn) Flush(ctx context.Context) error {
	return c.flush(ctx, time.Time{}, false)
}

// Sync is Flush bounded as Close is: by the write deadline if one is set
// (a *net.OpError wrapping an *UnconfirmedError and os.ErrDeadlineExceeded
// when it passes), else by Dialer.FlushTimeout (15 seconds by default;
// with a negative one, Sync does not wait and returns nil on an open
// Conn). It is what logging libraries call at shutdown and on demand:
// zap's WriteSyncer, for one, whose Sync a *Conn thus serves without
// zap.AddSync (which makes it a no-op).
func (c *Conn) Sync() error {
	if c.wdlNano.Load() != 0 {
		return c.flush(nil, time.Time{}, true)
	}
	switch {
	case c.cfg.flushTimeout > 0:
		return c.flush(nil, time.Now().Add(c.cfg.flushTimeout), true)
	case c.cfg.flushTimeout < 0:
		if c.closed.Load() {
			return c.opError("flush", net.ErrClosed)
		}
		return nil
	}
	return c.flush(nil, time.Time{}, true)
}

// flush is Flush and Sync: one op bounded by ctx (if not nil), limit (if
// not zero) and, if writeDL is set, the write deadline.
func (c *Conn) flush(ctx context.Context, limit time.Time, writeDL bool) error {
	if c.closed.Load() {
		return c.opError("flush", net.ErrClosed)
	}
	if err := c.reportRefusal(); err != nil {
		return c.opError("flush", err)
	}
	o := c.newOp(c.life, ctx, limit, writeDL)
	defer o.end()
	var f flushState
	h, err := o.lock()
	if err == nil {
		err = c.poll(h, o, o.ctx, true, func(h hold) (bool, error) { return c.flushStep(h, o, &f, false) })
	} else {
		err = o.fail(err)
	}
	if err != nil {
		return c.opError("flush", c.unconfirmed(err, &f))
	}
	// An answer that came while Flush waited may have refused a message.
	if err := c.reportRefusal(); err != nil {
		return c.opError("flush", err)
	}
	return nil
}

// flushState follows one Flush or Close.
type flushState struct {
	target   int64 // stream offset to see acknowledged; -1 until known
	known    bool  // target is set
	messages int   // unconfirmed before target at the last look
	bytes    int64

	// With a spool, the target is the spool's mark instead: messages
	// that wait in the spool are in no ring offset yet.
	spoolSeq, spoolOff uint64
}

// flushStep looks once at what is confirmed up to the flush's target,
// redialing and replaying if the link is dead (with Async, the writer
// does that: flushStep waits for it). It reports whether everything is
// confirmed, or, with an error, why it gave up. If final is set (Close),
// the link is half-closed once everything is written on it, since nothing
// more will be.
func (c *Conn) flushStep(h hold, o *op, f *flushState, final bool) (bool, error) {
	c.lockRing()
	if !f.known {
		f.target, f.known = c.ring.end, true
		if c.spool != nil {
			f.spoolSeq, f.spoolOff = c.spool.Mark()
		}
	}
	c.unlockRing()
	for {
		l := c.cur.Load()
		c.check(h, l)
		if l.state == healthy {
			if !c.async() && c.replayLeft(h) {
				// A replay that a deadline or Close stopped goes on.
				if _, err := c.resend(h, o, l); err != nil && l.state == healthy {
					return false, o.cutErr(err)
				}
				continue
			}
			if !l.ackable && c.sentUpTo(f.target) && (c.spool == nil || c.spool.LoadedBefore(f.spoolSeq)) {
				return true, nil // nothing can confirm it
			}
			c.refresh(h, l)
		}
		if c.unconfirmedUpTo(f) == 0 {
			return true, nil
		}
		if l.state == healthy {
			if final && c.sentUpTo(math.MaxInt64) && !c.spilled() {
				l.closeWrite(h)
			}
			return false, nil
		}
		// A link that ended after both sides closed (Close half-closed
		// it) reads as closed but counts what its peer acknowledged, and
		// a peer that is leaving may still take what it was given:
		// redial only for what is left.
		c.settle(h, l)
		if c.async() {
			c.w.signal() // the writer redials
			return false, c.w.err()
		}
		c.drain(h, o, l)
		if c.unconfirmedUpTo(f) == 0 {
			return true, nil
		}
		if err := c.redial(h, o, l, false); err != nil {
			return false, err
		}
	}
}

// unconfirmedUpTo records and returns the number of held messages that
// end before the flush's target.
func (c *Conn) unconfirmedUpTo(f *flushState) int {
	if c.spool != nil {
		n, bytes := c.spool.UnconfirmedBefore(f.spoolSeq, f.spoolOff)
		f.messages, f.bytes = int(n), int64(bytes)
		return f.messages
	}
	c.lockRing()
	f.messages, f.bytes = c.ring.upTo(f.target)
	c.unlockRing()
	return f.messages
}

// sentUpTo reports whether everything held up to stream offset off is
// written on the current link.
func (c *Conn) sentUpTo(off int64) bool {
	c.lockRing()
	defer c.unlockRing()
	return c.ring.sent >= min(off, c.ring.end)
}

// unconfirmed wraps err, why a Flush or Close gave up, with what was still
// unconfirmed at its last look.
func (c *Conn) unconfirmed(err error, f *flushState) error {
	if !f.known {
		f.messages, f.bytes = c.st.pending()
	}
	return &UnconfirmedError{Messages: f.messages, Bytes: f.bytes, Err: err}
}
