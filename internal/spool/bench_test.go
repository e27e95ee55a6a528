package spool

import "testing"

// BenchmarkAppend appends records of 100 bytes to one spool, confirming
// and checkpointing every 1,000, as a Conn whose peer keeps up does: the
// segments go round through the spares. It is the spool's share of an
// Async Write with a SpoolDir.
func BenchmarkAppend(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Limit: 1 << 30, MaxPayload: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(false)
	msg := make([]byte, 100)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for i := 0; b.Loop(); i++ {
		if _, err := s.Append(msg, true); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			s.Confirm(1000)
			if err := s.Checkpoint(false); err != nil {
				b.Fatal(err)
			}
		}
	}
}
