package spool

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/reconn/reconn/internal/platformtest"
)

// FuzzRecord: whatever the bytes, parseRecord neither panics nor reads
// past them, and a record it accepts has the checksum it carries and
// encodes back to the same bytes.
func FuzzRecord(f *testing.F) {
	var b [256]byte
	n := putRecord(b[:], []byte("hello, spool"), 7, 1000)
	f.Add(b[:n])
	f.Add(b[:n-1])
	f.Add(make([]byte, 40))
	bad := bytes.Clone(b[:n])
	bad[30] ^= 1
	f.Add(bad)
	f.Fuzz(func(t *testing.T, in []byte) {
		r, p, res := parseRecord(in, 1<<10)
		if res != recOK {
			return
		}
		if len(p) != r.n || r.n == 0 || recHeaderSize+r.n > len(in) {
			t.Fatalf("accepted a record of %d bytes in %d", r.n, len(in))
		}
		if got := binary.LittleEndian.Uint32(in[0:]); got != recordCRC(in[:recHeaderSize+len(p)]) {
			t.Fatal("accepted a record whose checksum does not match")
		}
		out := make([]byte, recordSize(r.n))
		putRecord(out, p, r.seq, r.off)
		if !bytes.Equal(out[:recHeaderSize+r.n], in[:recHeaderSize+r.n]) {
			t.Fatal("an accepted record does not encode back to its bytes")
		}
	})
}

// FuzzCheckpoint: whatever the bytes, decoding a checkpoint slot never
// panics, and a slot it accepts encodes back to the same bytes.
func FuzzCheckpoint(f *testing.F) {
	var b [checkpointSize]byte
	checkpoint{gen: 3, seg: 2, pos: 64, seq: 10, off: 999}.encode(b[:])
	f.Add(b[:])
	f.Add(b[:30])
	f.Fuzz(func(t *testing.T, in []byte) {
		c, st := decodeCheckpoint(in)
		if st != slotValid {
			return
		}
		var out [checkpointSize]byte
		c.encode(out[:])
		if !bytes.Equal(out[:60], in[:60]) {
			t.Fatal("an accepted checkpoint does not encode back to its bytes")
		}
	})
}

// FuzzSegment: a segment file of any content, with a valid header, opens
// and reads without a panic, and every record handed out is one whose
// checksum matches.
func FuzzSegment(f *testing.F) {
	needFuzzSpools(f)
	seed := make([]byte, 4096)
	pos := segHeaderSize
	for i := range 20 {
		pos += putRecord(seed[pos:], msg(i), uint64(i), uint64(i*30))
	}
	f.Add(seed[segHeaderSize:])
	torn := bytes.Clone(seed[segHeaderSize:])
	torn[500] ^= 0xff
	f.Add(torn)
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := platformtest.TempDir(t)
		data := make([]byte, 16<<10)
		h := segHeader{num: 1, size: uint64(len(data))}
		h.encode(data)
		copy(data[segHeaderSize:], body)
		if err := writeFile(dir, segName(1), data); err != nil {
			t.Fatal(err)
		}
		opt := testOptions()
		opt.SegSize = len(data)
		opt.OnDamage = func(error) {}
		s, err := Open(dir, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(false)
		s.Load(sinkFunc(func(p []byte) {
			// p lies in the mapping just after its header.
			seg := s.segs[0]
			start := s.ldPos - recordSize(len(p))
			if !bytes.Equal(seg.data[start+recHeaderSize:start+recHeaderSize+len(p)], p) ||
				binary.LittleEndian.Uint32(seg.data[start:]) != recordCRC(seg.data[start:start+recHeaderSize+len(p)]) {
				t.Fatal("handed out a record whose checksum does not match")
			}
		}), math.MaxInt)
	})
}

func needFuzzSpools(f *testing.F) {
	if !Supported {
		f.Skip("spools need shared file mappings, which this platform lacks")
	}
}
