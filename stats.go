package reconn

import (
	"sync/atomic"
	"time"
)

// Stats reports what a Conn has done since it was dialed.
type Stats struct {
	Dials       int64 // underlying connections made, the first included
	Redials     int64 // connections made to replace a dead one
	DialErrors  int64 // failed redial attempts
	Checks      int64 // liveness checks run before a Write or after a kernel event
	DeadByCheck int64 // dead connections found by a check
	DeadByWrite int64 // dead connections found by a failed write

	// PeerHalfClosed counts connections whose peer closed its sending
	// side (FIN) so early that it was taken for a receiver that
	// half-closes at accept, so that the Conn went on writing to it (see
	// the package documentation). A FIN from a peer that is leaving is
	// counted in DeadByCheck and Redials instead.
	PeerHalfClosed int64

	Messages int64 // Writes accepted
	Bytes    int64 // bytes accepted

	// Pending and PendingBytes count the messages held for replay: written
	// and not yet known to be acknowledged by the peer's kernel. A message
	// leaves this count when an acknowledgement count shows it delivered,
	// which the Conn asks for only now and then, so it may stay counted a
	// while after its acknowledgement. They are zero with replay off.
	Pending      int64
	PendingBytes int64

	// Unsent and UnsentBytes count, with Async, the messages written and
	// not yet sent: those waiting for the writer, or for a connection.
	// They are part of Pending.
	Unsent      int64
	UnsentBytes int64

	// Rejected counts the Writes that failed because the replay buffer
	// was full, with Dialer.FailWhenFull.
	Rejected int64

	// Refused counts the messages that the server application answered
	// with an error, in a protocol with answers (package relp).
	Refused int64

	ResentMessages int64 // messages re-sent after a redial
	ResentBytes    int64 // their bytes

	// Failovers counts the redials that went to a fallback address;
	// Failbacks and Rotations the planned moves back to the first
	// address and at Dialer.ConnMaxLifetime. Address is the address, as
	// given to the Dialer, of the current connection.
	Failovers int64
	Failbacks int64
	Rotations int64
	Address   string

	// SpoolBytes is the disk the spool's files take (see
	// Dialer.SpoolDir), and SpoolDamaged the messages it skipped as
	// damaged, never sent.
	SpoolBytes   int64
	SpoolDamaged int64

	// DownSince is when the current connection was found dead, or, with
	// Async, when the Conn was dialed, until a connection is up; it is
	// zero while one is.
	DownSince time.Time

	LastError error // the last error that ended a connection or failed a dial, or nil
}

type counters struct {
	dials, redials, dialErrors       atomic.Int64
	checks, deadByCheck, deadByWrite atomic.Int64
	peerHalfClosed                   atomic.Int64
	messages, bytes                  atomic.Int64
	confirmed, confirmedBytes        atomic.Int64 // messages that left the replay buffer
	resentMessages, resentBytes      atomic.Int64
	rejected, refused                atomic.Int64
	spoolDamaged                     atomic.Int64
	failovers, failbacks, rotations  atomic.Int64
	lastErr                          atomic.Pointer[error]
}

// Stats returns a snapshot of the Conn's counters. It may be called at any
// time, from any goroutine.
func (c *Conn) Stats() Stats {
	s := c.st.snapshot(c.cfg.replay > 0)
	if c.async() {
		c.rmu.Lock()
		s.Unsent, s.UnsentBytes = int64(c.ring.mn-c.ring.ms), c.ring.end-c.ring.sent
		c.rmu.Unlock()
	}
	if c.spool != nil {
		n, bytes, spilled, spilledBytes := c.spool.Pending()
		s.Pending, s.PendingBytes = int64(n), int64(bytes)
		s.Unsent, s.UnsentBytes = s.Unsent+int64(spilled), s.UnsentBytes+int64(spilledBytes)
		s.SpoolBytes, _ = c.spool.Stats()
		s.SpoolDamaged = c.st.spoolDamaged.Load()
	}
	if ns := c.downSince.Load(); ns != 0 {
		s.DownSince = time.Unix(0, ns)
	}
	s.Address = c.cfg.addrs[c.cur.Load().addr]
	return s
}

func (s *counters) snapshot(replay bool) Stats {
	st := Stats{
		Dials:          s.dials.Load(),
		Redials:        s.redials.Load(),
		DialErrors:     s.dialErrors.Load(),
		Checks:         s.checks.Load(),
		DeadByCheck:    s.deadByCheck.Load(),
		DeadByWrite:    s.deadByWrite.Load(),
		PeerHalfClosed: s.peerHalfClosed.Load(),
		Messages:       s.messages.Load(),
		Bytes:          s.bytes.Load(),
		ResentMessages: s.resentMessages.Load(),
		ResentBytes:    s.resentBytes.Load(),
		Rejected:       s.rejected.Load(),
		Refused:        s.refused.Load(),
		Failovers:      s.failovers.Load(),
		Failbacks:      s.failbacks.Load(),
		Rotations:      s.rotations.Load(),
		LastError:      s.lastError(),
	}
	if replay {
		m, b := s.pending()
		st.Pending, st.PendingBytes = int64(m), b
	}
	return st
}

// pending returns the messages and bytes held for replay. A message is
// counted in messages just before it enters the replay buffer, and in
// confirmed just after it left: reading confirmed on both sides of
// messages, and again if it moved, never counts what left as held.
func (s *counters) pending() (int, int64) {
	for {
		cm, cb := s.confirmed.Load(), s.confirmedBytes.Load()
		m, b := s.messages.Load(), s.bytes.Load()
		if s.confirmed.Load() == cm && s.confirmedBytes.Load() == cb {
			return int(m - cm), b - cb
		}
	}
}

func (s *counters) setLastErr(err error) { s.lastErr.Store(&err) }

func (s *counters) lastError() error {
	if e := s.lastErr.Load(); e != nil {
		return *e
	}
	return nil
}

func (s *counters) resent(messages int, bytes int64) {
	s.resentMessages.Add(int64(messages))
	s.resentBytes.Add(bytes)
}
