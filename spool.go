package reconn

import (
	"errors"
	"fmt"
	"time"

	"github.com/reconn/reconn/internal/spool"
)

// The spool (Dialer.SpoolDir, internal/spool) extends the ring onto disk.
// A Write copies its message into the spool's files first, then into the
// ring if it has room and nothing waits on disk only; else the message
// waits on disk ("spilled"), and the writer moves it into the ring, in
// order, as acknowledgements make room (loadSpilled). The messages in the
// ring are the spool's oldest unconfirmed ones, in the same order, so a
// message that leaves the ring as confirmed (count) is confirmed in the
// spool too; the writer writes that down now and then (checkpoint), and
// the spool deletes the segments it no longer needs. A new Conn on the
// same directory starts with what the spool holds unconfirmed, as
// spilled messages, before anything new.

// checkpointEvery is how often the writer records in the spool what is
// confirmed, at most, unless Writes wait for room.
const checkpointEvery = 10 * time.Millisecond

// openSpool opens the spool of c's configuration, and counts what a
// previous Conn left in it as written, so that Stats.Pending holds it.
func (c *Conn) openSpool() error {
	cfg := c.cfg
	maxMsg := int(cfg.replay - heldSize)
	if cfg.proto != nil {
		maxMsg = min(maxMsg, cfg.proto.MaxMessage())
	}
	onDamage := cfg.onSpoolDamage
	sp, err := spool.Open(cfg.spoolDir, spool.Options{
		Limit:      cfg.spoolLimit,
		MaxPayload: maxMsg,
		SyncEach:   cfg.spoolSync < 0,
		OnDamage: func(err error) {
			var de *spool.DamageError
			if !errors.As(err, &de) {
				return
			}
			// Their messages left the spool unsent: they count as gone.
			c.st.confirmed.Add(max(int64(de.Records), 1))
			c.st.spoolDamaged.Add(max(int64(de.Records), 1))
			e := &SpoolDamageError{File: de.File, Offset: de.Pos, Messages: int(de.Records)}
			c.st.setLastErr(e)
			if onDamage != nil {
				onDamage(e)
			}
		},
	})
	if errors.Is(err, spool.ErrInUse) {
		return fmt.Errorf("%w: %s (%v)", ErrSpoolInUse, cfg.spoolDir, err)
	}
	if err != nil {
		return err
	}
	n, bytes, _, _ := sp.Pending()
	c.st.messages.Add(int64(n))
	c.st.bytes.Add(int64(bytes))
	c.spool = sp
	return nil
}

// spoolAppend is enqueue with a spool: the message goes into the spool,
// and into the ring too if fits and nothing waits on disk only. c.rmu is
// held.
func (c *Conn) spoolAppend(b []byte, fits bool) (bool, error) {
	loaded, err := c.spool.Append(b, fits)
	if errors.Is(err, spool.ErrFull) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c.st.messages.Add(1)
	c.st.bytes.Add(int64(len(b)))
	if loaded {
		c.ring.add(b, notOnLink)
	}
	return true, nil
}

// loadSpilled moves into the ring, in order, the messages that wait in the
// spool, as many as fit, up to 4*maxWrite bytes at a time so that Writes
// are not held up.
func (c *Conn) loadSpilled(h hold) {
	if c.spool == nil {
		return
	}
	for c.spool.Spilling() {
		c.lockRing()
		moved := c.spool.Load(ringSink{&c.ring}, 4*maxWrite)
		c.unlockRing()
		if moved < 4*maxWrite {
			return
		}
	}
}

// ringSink is the ring as the spool's Load sees it.
type ringSink struct{ r *ring }

func (s ringSink) Fits(n int) bool { return s.r.fits(n) }
func (s ringSink) Put(p []byte)    { s.r.add(p, notOnLink) }

// spilled reports whether messages wait in the spool for room in the ring.
func (c *Conn) spilled() bool { return c.spool != nil && c.spool.Spilling() }

// checkpointDue reports whether the writer should record in the spool
// what is confirmed: every checkpointEvery, and whenever Writes wait for
// room, which the segments it deletes make.
func (w *writer) checkpointDue() bool {
	return w.c.spool != nil && (time.Since(w.lastCheckpoint) >= checkpointEvery || w.roomWait.Load() > 0)
}

// checkpoint records in the spool what is confirmed, if it is due or
// now is set. The writer's goroutine calls it.
func (w *writer) checkpoint(now bool) {
	c := w.c
	if c.spool == nil || !now && !w.checkpointDue() {
		return
	}
	w.lastCheckpoint = time.Now()
	if err := c.spool.Checkpoint(c.cfg.spoolSync != 0); err != nil {
		c.st.setLastErr(err)
	}
}

// syncSpool writes the spool to the disk every interval, until the writer
// stops: Dialer.SpoolSync.
func (w *writer) syncSpool(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := w.c.spool.Sync(); err != nil {
				w.c.st.setLastErr(err)
			}
		case <-w.syncDone:
			return
		}
	}
}

// closeSpool writes a last checkpoint and releases the spool's directory,
// after the writer stopped. If Close confirmed everything, the spool is
// left empty. A link with no acknowledgement count never confirms what it
// carried: once Close has sent everything on it, that counts as
// delivered, as it does without a spool.
func (c *Conn) closeSpool(flushed bool) {
	if c.spool == nil {
		return
	}
	if flushed && !c.cur.Load().ackable {
		c.lockRing()
		if c.ring.sent == c.ring.end {
			c.spool.Confirm(c.ring.mn)
		}
		c.unlockRing()
	}
	if err := c.spool.Close(c.cfg.spoolSync != 0); err != nil {
		c.st.setLastErr(err)
	}
}
