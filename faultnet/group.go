package faultnet

// ReportAll accounts for the messages a client sent to several servers in
// turn, as one stream: the stream of a client that fails over between
// them. A message processed by more than one server counts as duplicated,
// as one processed twice by the same server does; a message is
// unavoidably lost if some server found it unread or stalled and none
// processed it. Conns lists the connections of each server in the order
// the servers are given, and OutOfOrder sums each server's count. Call
// WaitEOF on each server first for final counts.
func ReportAll(sent int, servers ...*Server) Report {
	type snapshot struct {
		processed, unread, stalled seqSet
		conns                      []ConnReport
	}
	snaps := make([]snapshot, len(servers))
	r := Report{Sent: max(sent, 0), Exact: true}
	for i, s := range servers {
		one := s.Report(sent)
		r.Conns = append(r.Conns, one.Conns...)
		r.Duplicated += one.Duplicated
		r.OutOfOrder += one.OutOfOrder
		r.Invalid += one.Invalid
		r.Exact = r.Exact && one.Exact
		s.acctMu.Lock()
		snaps[i] = snapshot{processed: s.ledger.processed.clone(), unread: s.ledger.unread.clone(), stalled: s.ledger.stalled.clone()}
		s.acctMu.Unlock()
	}
	for q := range r.Sent {
		seen, unread, stalled := 0, false, false
		for i := range snaps {
			if snaps[i].processed.has(q) {
				seen++
			}
			unread = unread || snaps[i].unread.has(q)
			stalled = stalled || snaps[i].stalled.has(q)
		}
		if unread {
			r.Unread++
		}
		if stalled {
			r.Stalled++
		}
		switch {
		case seen > 0:
			r.Received++
			r.Duplicated += seen - 1
		case unread || stalled:
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

// clone returns a copy of s.
func (s *seqSet) clone() seqSet {
	c := seqSet{bits: append([]uint64(nil), s.bits...), n: s.n}
	if len(s.big) > 0 {
		c.big = make(map[int]struct{}, len(s.big))
		for q := range s.big {
			c.big[q] = struct{}{}
		}
	}
	return c
}
