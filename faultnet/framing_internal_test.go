package faultnet

import (
	"slices"
	"testing"
)

// TestNextSplit feeds a stream of frames in two pieces, split at every
// position, and checks that the frames come out whole.
func TestNextSplit(t *testing.T) {
	for _, f := range []Framing{Newline, OctetCounting} {
		var stream []byte
		var want []int
		for q := range 12 {
			stream = AppendMessage(stream, f, q, q*3)
			want = append(want, q)
		}
		if f == OctetCounting {
			stream = append(stream, "\nseq=12 lf\n"...)
			want = append(want, 12)
		}
		for cut := range len(stream) + 1 {
			var got []int
			var pending []byte
			for _, piece := range [][]byte{stream[:cut], stream[cut:]} {
				pending = append(pending, piece...)
				for {
					msg, n := f.next(pending)
					if n == 0 {
						break
					}
					pending = pending[n:]
					if q, ok := ParseSeq(msg); ok {
						got = append(got, q)
					}
				}
			}
			if !slices.Equal(got, want) || len(pending) != 0 {
				t.Fatalf("%v split at %d: got %v, %d bytes left; want %v", f, cut, got, len(pending), want)
			}
		}
	}
}
