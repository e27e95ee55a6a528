package faultnet

import (
	"fmt"
	"net"
	"strings"
)

// A Report accounts for the messages a client sent to a Server. Messages
// are identified by their sequence numbers (see AppendMessage); the
// client is taken to have sent the numbers 0 to Sent-1.
//
// Each message ends in one of four ways: processed by the server
// (Received), found unread in the server's socket when the server closed
// it (Unread: the server's kernel had acknowledged it, the server never
// processed it), read and thrown away by a stalled server (Stalled), or
// never reached the server at all. Only the last is the client's fault.
type Report struct {
	Sent       int // the number of messages the client sent
	Received   int // distinct sequence numbers in [0, Sent) that the server processed
	Lost       int // Sent - Received
	Duplicated int // messages processed again after their sequence number had been processed
	OutOfOrder int // messages processed after a higher sequence number, duplicates excluded

	// Unread counts the distinct sequence numbers found unread in a
	// socket when the server closed it (see Server.RST).
	Unread int
	// Unavoidable counts the lost messages that were found unread at a
	// close or were thrown away by Stall. The server's kernel had
	// acknowledged them, so no client without acknowledgements from the
	// application could have saved them.
	Unavoidable int
	// ClientLost is Lost - Unavoidable: the messages the client lost on
	// its own, such as those written into a connection that the server
	// had already closed.
	ClientLost int
	// Stalled counts the distinct sequence numbers read and thrown away
	// by Stall.
	Stalled int
	// Invalid counts the frames processed without a sequence number.
	Invalid int
	// Exact is true if every abrupt close was measured with a frozen
	// socket, so that Unread is complete. It is false if a connection was
	// reset without the drop filter (see Server.RST) or by RSTUnread.
	Exact bool
	// LostSeqs holds the smallest lost sequence numbers (at most 100)
	// that are not counted in Unavoidable, for debugging.
	LostSeqs []int
	// Conns holds one entry per accepted connection, oldest first.
	Conns []ConnReport
}

// A ConnReport accounts for the messages of one connection.
type ConnReport struct {
	ID         int
	Client     net.Addr // the client's end of the connection
	Received   int      // messages processed, duplicates included
	Duplicated int      // messages whose sequence number had already been processed, on any connection
	OutOfOrder int      // messages processed after a higher sequence number on this connection, duplicates excluded
	Unread     int      // messages found unread when the server closed the connection
	Stalled    int      // messages read and thrown away by Stall
	Invalid    int      // frames processed without a sequence number

	Bytes       int64 // bytes of processed and stalled frames
	UnreadBytes int64 // bytes found unread when the server closed the connection

	// End is the event that ended the connection, such as EventPeerClosed
	// or EventRST; it is EventBlackhole for a blackholed connection whose
	// socket is still open, and its String is "open" while the connection
	// is still being read.
	End EventKind
	// Exact is false if the connection was reset without its unread
	// data being measured completely.
	Exact bool
}

// String formats r as a summary line, then a line per connection, then
// the lost sequence numbers that the client is to blame for, if any.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent=%d received=%d lost=%d unavoidable=%d client-lost=%d duplicated=%d out-of-order=%d unread=%d stalled=%d invalid=%d exact=%t",
		r.Sent, r.Received, r.Lost, r.Unavoidable, r.ClientLost, r.Duplicated, r.OutOfOrder, r.Unread, r.Stalled, r.Invalid, r.Exact)
	for _, c := range r.Conns {
		fmt.Fprintf(&b, "\n  conn %d: received=%d duplicated=%d out-of-order=%d unread=%d stalled=%d invalid=%d bytes=%d unread-bytes=%d end=%s",
			c.ID, c.Received, c.Duplicated, c.OutOfOrder, c.Unread, c.Stalled, c.Invalid, c.Bytes, c.UnreadBytes, c.End)
		if !c.Exact {
			b.WriteString(" inexact")
		}
	}
	if len(r.LostSeqs) > 0 {
		fmt.Fprintf(&b, "\n  client-lost seqs: %v", r.LostSeqs)
		if len(r.LostSeqs) < r.ClientLost {
			b.WriteString(" ...")
		}
	}
	return b.String()
}

// seqSet is a set of sequence numbers: a bitmap for the small ones that
// tests use, a map beyond.
type seqSet struct {
	bits []uint64
	big  map[int]struct{}
	n    int
}

const bitmapLimit = 1 << 26

// add adds q and reports whether it was new.
func (s *seqSet) add(q int) bool {
	if q >= bitmapLimit {
		if _, ok := s.big[q]; ok {
			return false
		}
		if s.big == nil {
			s.big = make(map[int]struct{})
		}
		s.big[q] = struct{}{}
		s.n++
		return true
	}
	w := q / 64
	if w >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, max(w+1-len(s.bits), len(s.bits)))...)
	}
	if s.bits[w]&(1<<(q%64)) != 0 {
		return false
	}
	s.bits[w] |= 1 << (q % 64)
	s.n++
	return true
}

func (s *seqSet) has(q int) bool {
	if q >= bitmapLimit {
		_, ok := s.big[q]
		return ok
	}
	w := q / 64
	return w < len(s.bits) && s.bits[w]&(1<<(q%64)) != 0
}

// ledger is the accounting shared by all connections of a server.
type ledger struct {
	processed, unread, stalled seqSet
	maxSeq                     int
	duplicated, outOfOrder     int
	invalid                    int
	inexact                    bool
}

// disposition tells how a frame is recorded.
type disposition int

const (
	processed disposition = iota
	stalled
	unread
)

// record accounts for one frame of connection c.
func (l *ledger) record(c *ConnReport, st *connSeq, d disposition, seq int, ok bool) {
	if !ok {
		if d == processed {
			c.Invalid++
			l.invalid++
		}
		return
	}
	switch d {
	case stalled:
		c.Stalled++
		l.stalled.add(seq)
		return
	case unread:
		c.Unread++
		l.unread.add(seq)
		return
	}
	c.Received++
	if !l.processed.add(seq) {
		c.Duplicated++
		l.duplicated++
		return
	}
	if seq < st.maxSeq {
		c.OutOfOrder++
	}
	if seq < l.maxSeq {
		l.outOfOrder++
	}
	st.maxSeq = max(st.maxSeq, seq)
	l.maxSeq = max(l.maxSeq, seq)
}

// connSeq is the per-connection ordering state.
type connSeq struct{ maxSeq int }

// report builds a Report for sent messages.
func (l *ledger) report(sent int, conns []ConnReport) Report {
	r := Report{
		Sent:       max(sent, 0),
		Duplicated: l.duplicated,
		OutOfOrder: l.outOfOrder,
		Unread:     l.unread.n,
		Stalled:    l.stalled.n,
		Invalid:    l.invalid,
		Exact:      !l.inexact,
		Conns:      conns,
	}
	for q := range r.Sent {
		switch {
		case l.processed.has(q):
			r.Received++
		case l.unread.has(q) || l.stalled.has(q):
			r.Unavoidable++
		default:
			if len(r.LostSeqs) < 100 {
				r.LostSeqs = append(r.LostSeqs, q)
			}
		}
	}
	r.Lost = r.Sent - r.Received
	r.ClientLost = r.Lost - r.Unavoidable
	return r
}
