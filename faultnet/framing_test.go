package faultnet_test

import (
	"bytes"
	"math"
	"strconv"
	"testing"

	"github.com/reconn/reconn/faultnet"
)

func TestAppendMessage(t *testing.T) {
	for _, f := range []faultnet.Framing{faultnet.Newline, faultnet.OctetCounting} {
		for _, seq := range []int{0, 7, 12345} {
			min := len(faultnet.AppendMessage(nil, f, seq, 0))
			for size := 0; size < 1200; size++ {
				b := faultnet.AppendMessage([]byte("x"), f, seq, size)[1:]
				want := max(size, min)
				if len(b) != want && !(f == faultnet.OctetCounting && len(b) == want+1) {
					t.Fatalf("AppendMessage(%v, %d, %d) is %d bytes; want %d", f, seq, size, len(b), want)
				}
				msg := b
				if f == faultnet.OctetCounting {
					i := bytes.IndexByte(b, ' ')
					n, err := strconv.Atoi(string(b[:i]))
					if err != nil || n != len(b)-i-1 || b[0] == '0' {
						t.Fatalf("AppendMessage(%v, %d, %d) = %q: bad length prefix", f, seq, size, b)
					}
					msg = b[i+1:]
				} else if b[len(b)-1] != '\n' || bytes.Count(b, []byte("\n")) != 1 {
					t.Fatalf("AppendMessage(%v, %d, %d) = %q: want one newline, at the end", f, seq, size, b)
				}
				if got, ok := faultnet.ParseSeq(msg); !ok || got != seq {
					t.Fatalf("ParseSeq(%q) = %d, %t; want %d", msg, got, ok, seq)
				}
			}
		}
	}
	if got := string(faultnet.AppendMessage(nil, faultnet.Newline, 7, 12)); got != "seq=7 .....\n" {
		t.Errorf("AppendMessage(Newline, 7, 12) = %q", got)
	}
	if got := string(faultnet.AppendMessage(nil, faultnet.OctetCounting, 7, 0)); got != "5 seq=7" {
		t.Errorf("AppendMessage(OctetCounting, 7, 0) = %q", got)
	}
}

func TestParseSeq(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"seq=0", 0, true},
		{"seq=42\n", 42, true},
		{"<13>1 host app - - [x seq=9] body", 9, true},
		{"seq= seq=x seq=5", 5, true},
		{"seq=3seq=4", 3, true},
		{"seq", 0, false},
		{"seq=", 0, false},
		{"no number here", 0, false},
		{"seq=99999999999999999999999", 0, false},
		{"seq=" + strconv.Itoa(math.MaxInt), math.MaxInt, true},
		{"seq=" + strconv.Itoa(math.MaxInt-7), math.MaxInt - 7, true},
		{"seq=" + strconv.FormatUint(math.MaxInt+1, 10), 0, false},
	}
	for _, tt := range tests {
		got, ok := faultnet.ParseSeq([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseSeq(%q) = %d, %t; want %d, %t", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
