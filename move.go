package reconn

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/reconn/reconn/internal/sock"
)

// Moves: the stream leaves a link that still works. A planned move (back
// to the first address from a fallback, FailbackInterval; a rotation at
// ConnMaxLifetime) dials in the background without the right to write,
// then takes it and hands the stream over (move). A peer that sent a FIN
// and is leaving, and a protocol session that reached its limit
// (session.go), are moved away from by a redial (recover.go) that drains
// the old link meanwhile. All end the old link with drain: half-close,
// wait for its peer to take what it was given, then re-send only what it
// did not.

// planMoves arms the planned moves of the new current link l: its end of
// life (ConnMaxLifetime), and, on a fallback, the failback probe. c.mu is
// held.
func (c *Conn) planMoves(l *link) {
	if c.closed.Load() {
		return
	}
	if t := c.cfg.lifetime; t > 0 {
		life := t - rand.N(t/10+1)
		l.expire = time.AfterFunc(life, func() { c.plan(l, RedialRotation) })
	}
	if c.cfg.failback > 0 && l.addr != 0 {
		c.startMove(l, RedialFailback)
	}
}

// plan starts a planned move of l, if l is still the current link.
func (c *Conn) plan(l *link, reason RedialReason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed.Load() && c.cur.Load() == l {
		c.startMove(l, reason)
	}
}

// startMove starts the goroutine of a planned move. c.mu is held.
func (c *Conn) startMove(l *link, reason RedialReason) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		c.moveOff(l, reason)
	}()
}

// moveOff moves the stream off l, a working link, to a new connection:
// for a failback, to the first address, probed after FailbackInterval
// and then after waits that double, up to ten times FailbackInterval;
// for a rotation, to the first address that answers, at once and then
// with backoff. Dials run without the right to write; it ends when l is
// no longer current or the Conn is closed.
func (c *Conn) moveOff(l *link, reason RedialReason) {
	wait, limit := time.Duration(0), c.cfg.maxBackoff
	if reason == RedialFailback {
		wait, limit = c.cfg.failback, 10*c.cfg.failback
	}
	for n := 1; ; n++ {
		if wait > 0 && sleepCtx(c.life, wait) != nil {
			return
		}
		if c.cur.Load() != l || l.retired.Load() {
			return
		}
		var nl *link
		var err error
		if reason == RedialFailback {
			nl, err = c.dialLink(c.life, 0)
		} else {
			nl, err = c.dialFirst(c.life)
		}
		if err == nil {
			if !c.move(nl, l, reason) {
				nl.close()
			}
			return
		}
		if c.life.Err() != nil {
			return
		}
		if reason == RedialFailback {
			wait = min(2*wait, limit)
		} else {
			wait = c.backoff(n)
		}
	}
}

// move puts the stream on nl in place of old, a working link, with the
// graceful handoff: no message is lost, and none is sent twice unless the
// old peer did not acknowledge within HandoffTimeout. It reports false if
// old is no longer the current working link.
func (c *Conn) move(nl, old *link, reason RedialReason) bool {
	o := c.newOp(c.life, nil, time.Time{}, false)
	defer o.end()
	h, err := o.lock()
	if err != nil {
		return false
	}
	defer c.gate.unlock(h)
	if c.closed.Load() || c.cur.Load() != old || old.state != healthy {
		return false
	}
	start := time.Now()
	c.handoff(h, o, old)
	c.install(h, nl, old)
	k, _ := c.replay(h, o, nl) // if nl died meanwhile, the next Write redials
	if reason == RedialFailback {
		c.st.failbacks.Add(1)
	} else {
		c.st.rotations.Add(1)
	}
	o.events = append(o.events, RedialEvent{
		Reason:   reason,
		From:     c.cfg.addrs[old.addr],
		To:       c.cfg.addrs[nl.addr],
		Attempts: 1,
		Downtime: time.Since(start),
		Replayed: k,
	})
	return true
}

// handoff ends the stream on old, a working link, before a planned move:
// it drains old (see drain) for up to HandoffTimeout.
func (c *Conn) handoff(h hold, o *op, old *link) {
	c.refresh(h, old)
	if c.onLink() == 0 {
		return
	}
	old.drainBy = time.Now().Add(max(c.cfg.handoff, 0))
	c.drain(h, o, old)
}

// drain ends the stream on old, a link that carries no new message any
// more, once: it half-closes old, so that nothing more goes on it and a
// server that reads until the client's EOF gets it, and waits until the
// drain is over (drained), old.drainBy passes or the op's bound ends. If
// messages are left that old's peer has not acknowledged, they go again
// on the next link, and old closes with a reset, so that it cannot
// deliver them after the next link did. Where nothing counts
// acknowledgements, or HandoffTimeout is negative, it does not wait.
func (c *Conn) drain(h hold, o *op, old *link) {
	if old.drained || old.state != healthy && !old.leaving {
		return // a dead link is settled when found dead
	}
	if !c.drained(h, old) && c.cfg.handoff >= 0 && old.ackable {
		old.closeWrite(h)
		ctx, cancel := context.WithDeadline(o.ctx, old.drainBy)
		c.poll(h, o, ctx, false, func(h hold) (bool, error) { return c.drained(h, old), nil })
		cancel()
	}
	c.endDrain(h, old)
}

// drained trims what old's peer acknowledged, and reports whether old's
// drain is over: every message it carried is confirmed, or its socket has
// ended (a reset, or both sides closed), so that no acknowledgement is to
// come.
func (c *Conn) drained(h hold, old *link) bool {
	if old.sess != nil {
		c.trimTo(h, c.answeredNow(h, old))
		return c.onLink() == 0 || old.flagged.Load()
	}
	r, ok := old.probe(h, sock.Acks|sock.State)
	if ok && r.AckOK {
		c.trimTo(h, r.Acked)
	}
	return c.onLink() == 0 || !ok || r.Health == sock.Broken
}

// endDrain records that old's drain is over, and resets old if it leaves
// messages for the next link.
func (c *Conn) endDrain(h hold, old *link) {
	old.drained = true
	if c.onLink() > 0 {
		old.abort(h)
	}
}

// backoffWait waits d before the next dial of a redial that replaces old,
// or until ctx ends. While old drains, it looks at old now and then, so
// that its peer's acknowledgements are counted before its socket ends
// (a unix socket forgets them then), and ends the drain at old.drainBy.
func (c *Conn) backoffWait(h hold, o *op, ctx context.Context, d time.Duration, old *link) error {
	until := time.Now().Add(d)
	for step := time.Millisecond; old.leaving && !old.drained; step = min(2*step, 10*time.Millisecond) {
		if c.drained(h, old) || !time.Now().Before(old.drainBy) {
			c.endDrain(h, old)
			break
		}
		left := time.Until(until)
		if left <= 0 {
			return nil
		}
		if err := o.pause(ctx, min(step, left)); err != nil {
			return err
		}
	}
	if left := time.Until(until); left > 0 {
		return o.pause(ctx, left)
	}
	return nil
}
