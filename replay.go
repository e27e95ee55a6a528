package reconn

import (
	"errors"
	"os"
)

// Replay: the ring (ring.go) holds every message written and not known to
// be acknowledged; a new link gets them all again, in order, before
// anything new (replay), and a replay that a deadline or Close stopped
// goes on, on the same link, at the next Write, Flush or Close (resend).

// replay writes every held message on the new link l, in order: those an
// earlier link carried, then, with Async, those never sent. It returns
// how many of the former it re-sent.
func (c *Conn) replay(h hold, o *op, l *link) (int, error) {
	c.lockRing()
	if c.ring.mn == 0 {
		c.unlockRing()
		return 0, nil
	}
	// Every held message goes, whatever the link before carried: a
	// replay cut short leaves messages that no link carries now.
	c.ring.unlink()
	c.unlockRing()
	return c.resend(h, o, l)
}

// resend writes on l what the ring holds beyond what l carried, and
// counts as re-sent the messages among them that an earlier link
// carried. It serves replay, and in the synchronous mode it finishes on
// the same link a replay that a deadline or Close stopped.
func (c *Conn) resend(h hold, o *op, l *link) (int, error) {
	c.lockRing()
	done, doneBytes := c.ring.upTo(c.ring.sent)
	was, wasBytes := c.ring.upTo(c.ring.hw)
	c.unlockRing()
	k, n, err := c.send(h, o, l)
	k, n = min(k, was-done), min(n, wasBytes-doneBytes)
	c.st.resent(k, n)
	return k, err
}

// replayLeft reports whether the ring holds bytes not written on the
// current link: in the synchronous mode, a replay that a deadline or
// Close stopped.
func (c *Conn) replayLeft(h hold) bool {
	c.lockRing()
	defer c.unlockRing()
	return c.ring.sent != c.ring.end
}

// maxWrite bounds one write of held messages: with Async, the largest
// batch of messages one system call carries.
const maxWrite = 64 << 10

// send writes what the ring holds and has not written on l, and returns
// the number of messages it completed and their bytes.
func (c *Conn) send(h hold, o *op, l *link) (int, int64, error) {
	if l.sess != nil {
		return c.sendFrames(h, o, l)
	}
	k, from := 0, int64(-1)
	for {
		c.lockRing()
		if from < 0 {
			from = c.ring.sent
		}
		s := c.ring.toWrite(maxWrite)
		ms, sent := c.ring.ms, c.ring.sent
		c.unlockRing()
		if len(s) == 0 {
			return k, sent - from, nil
		}
		before := l.sentNow()
		n, err := o.write(h, l, s)
		c.lockRing()
		c.ring.advance(n, before, l.sentNow(), l.cc == nil)
		k += c.ring.ms - ms
		sent = c.ring.sent
		c.unlockRing()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && l.cc == nil {
				// A deadline or Close stopped the write: the connection
				// is sound and the ring records how far the stream went
				// on it, so the next write on l goes on from there.
				return k, sent - from, err
			}
			// A message may be cut on l: l cannot carry the stream on.
			c.died(h, l, err, false)
			return k, sent - from, err
		}
	}
}
