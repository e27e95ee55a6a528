package reconn

import (
	"sync/atomic"
)

// Stats reports what a Conn has done since it was dialed.
type Stats struct {
	Dials       int64 // underlying connections made, the first included
	Redials     int64 // connections made to replace a dead one
	DialErrors  int64 // failed redial attempts
	Checks      int64 // liveness checks run before a Write
	DeadByCheck int64 // dead connections found by the check
	DeadByWrite int64 // dead connections found by a failed write
	Handoffs    int64 // peers that closed gracefully and were given time to acknowledge

	Messages int64 // Writes accepted
	Bytes    int64 // bytes accepted

	ResentMessages int64 // messages re-sent after a redial
	ResentBytes    int64 // their bytes

	LastError error // the last error that ended a connection or failed a dial, or nil
}

// Stats returns a snapshot of the Conn's counters. It may be called at any
// time, from any goroutine.
func (c *Conn) Stats() Stats {
	s := Stats{
		Dials:          c.st.dials.Load(),
		Redials:        c.st.redials.Load(),
		DialErrors:     c.st.dialErrors.Load(),
		Checks:         c.st.checks.Load(),
		DeadByCheck:    c.st.deadByCheck.Load(),
		DeadByWrite:    c.st.deadByWrite.Load(),
		Handoffs:       c.st.handoffs.Load(),
		Messages:       c.st.messages.Load(),
		Bytes:          c.st.bytes.Load(),
		ResentMessages: c.st.resentMessages.Load(),
		ResentBytes:    c.st.resentBytes.Load(),
	}
	if e := c.st.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

type counters struct {
	dials, redials, dialErrors       atomic.Int64
	checks, deadByCheck, deadByWrite atomic.Int64
	handoffs                         atomic.Int64
	messages, bytes                  atomic.Int64
	resentMessages, resentBytes      atomic.Int64
	lastErr                          atomic.Pointer[error]
}

func (s *counters) setLastErr(err error) { s.lastErr.Store(&err) }

func (s *counters) resent(messages int, bytes int64) {
	s.resentMessages.Add(int64(messages))
	s.resentBytes.Add(bytes)
}
