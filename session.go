package reconn

import (
	"math"
	"time"

	"github.com/reconn/reconn/internal/sock"
)

// A protocol with answers from the server application (package relp,
// through internal/proto) runs on the same ring and redial: each link
// gets a session, which frames the messages the ring holds, at most
// Window unanswered and Limit in all, and whose reader confirms them as
// answers come. A Conn with a protocol always sends from its Async
// writer.

// sendFrames is send in a session: it frames each message not yet written
// on l, as many as the session's window lets wait for their answers, and
// writes them in writes of about maxWrite bytes. Once the session reached
// its limit of messages with more waiting, it retires l (see retire).
func (c *Conn) sendFrames(h hold, o *op, l *link) (int, int64, error) {
	k, bytes := 0, int64(0)
	window, limit := int64(l.sess.Window()), l.sess.Limit()
	if l.kacked {
		window = math.MaxInt64 // the ring bounds what waits
	}
	for {
		// The messages to frame are taken under the ring's lock, and
		// framed without it, so that Writes go on meanwhile: their
		// bytes stay where they are while the right to write is held,
		// since only its holder trims the ring, and Write only appends
		// (into free room, or into a new buffer as it grows).
		c.lockRing()
		ms, mn := c.ring.ms, c.ring.mn
		first := l.sessN + 1
		spans := l.spans[:0]
		var size int64
		for i := ms; i < mn && size < maxWrite; i++ {
			if l.sessN+int64(len(spans))-l.answered.Load() >= window || l.sessN+int64(len(spans)) >= limit {
				break
			}
			a, b := c.ring.message(i)
			spans = append(spans, heldSpan{a, b})
			size += int64(len(a) + len(b))
		}
		c.unlockRing()
		l.spans = spans
		n := len(spans)
		buf := l.wbuf[:0]
		for j, sp := range spans {
			msg := sp.a
			if len(sp.b) > 0 {
				l.scratch = append(append(l.scratch[:0], sp.a...), sp.b...)
				msg = l.scratch
			}
			buf = l.sess.Append(buf, l.sessN+int64(j)+1, msg)
		}
		clear(spans) // hold no buffer the ring has let go
		if n > 0 {
			buf = l.sess.Finish(buf)
		}
		l.wbuf = buf
		if n == 0 {
			if ms < mn && l.sessN >= limit {
				c.retire(h, l)
			}
			return k, bytes, nil
		}
		_, err := o.write(h, l, buf)
		if err != nil {
			// Frames may be cut on l: the session cannot go on.
			c.died(h, l, err, false)
			return k, bytes, err
		}
		l.sessN += int64(n)
		if l.kacked && l.ackable {
			l.frameEnds = append(l.frameEnds, frameEnd{wire: l.wire(), n: l.sessN})
		}
		c.lockRing()
		c.ring.carried(n, first)
		c.unlockRing()
		k += n
		bytes += size
	}
}

// heldSpan is a held message's bytes: a, then b where it wraps in the
// ring.
type heldSpan struct{ a, b []byte }

// frameEnd is where, in the bytes written on a link, the frames of its
// session's messages up to n end.
type frameEnd struct{ wire, n int64 }

// answeredNow returns how many of l's session messages are answered, from
// the first on. The session's reader records that; for a protocol whose
// server answers nothing (proto.KernelAcked), it is what the kernel's
// count of acknowledged bytes covers: messages whose frames' bytes the
// peer's kernel has acknowledged every one of.
func (c *Conn) answeredNow(h hold, l *link) int64 {
	if !l.kacked {
		return l.answered.Load()
	}
	r, ok := l.p.Run(sock.Acks, l.wire())
	if !ok || !r.AckOK {
		return l.answered.Load()
	}
	k := 0
	for k < len(l.frameEnds) && l.frameEnds[k].wire <= r.Acked {
		k++
	}
	if k > 0 {
		l.answered.Store(l.frameEnds[k-1].n)
		l.frameEnds = append(l.frameEnds[:0], l.frameEnds[k:]...)
	}
	return l.answered.Load()
}

// retire ends l, whose session reached its limit: l leaves as a peer that
// sent a FIN does (see Conn.leave), so that the writer's next look
// redials, lets l's answers come while it dials (drain), and replays on
// the new session what l's left unanswered. The redial counts as a
// rotation. The writer does it itself, within its own bound, so that it
// happens during Close's flush too.
func (c *Conn) retire(h hold, l *link) {
	l.kill(h, errSessionFull)
	l.full, l.leaving = true, true
	l.drainBy = time.Now().Add(max(c.cfg.handoff, 0))
}

// startSession starts the reader of l's session: it records the answers,
// counts what the server refused, and marks l dead when the session ends,
// waking the writer each time.
func (c *Conn) startSession(l *link) {
	l.readerDone = make(chan struct{})
	go func() {
		defer close(l.readerDone)
		err := l.sess.Run(l.nc,
			func(n int64) {
				l.answered.Store(n)
				c.w.signal()
			},
			func(n int64, err error) {
				c.st.refused.Add(1)
				c.st.setLastErr(err)
				c.refusal.Store(&err)
			})
		l.ended.Store(&err)
		l.flagged.Store(true)
		c.w.signal()
	}()
}

// reportRefusal returns, once, the error of a message the server refused.
func (c *Conn) reportRefusal() error {
	if c.refusal.Load() == nil {
		return nil // no store: Writes on other cores keep the line shared
	}
	if e := c.refusal.Swap(nil); e != nil {
		return *e
	}
	return nil
}
