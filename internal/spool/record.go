package spool

import (
	"encoding/binary"
	"hash/crc32"
)

// The on-disk layout of a record, little-endian:
//
//	0   crc  uint32  CRC-32C (Castagnoli) of bytes 4 to the payload's end
//	4   len  uint32  payload length, 1 to maxPayload; 0 marks the end of the records
//	8   seq  uint64  the record's sequence number in the spool's stream
//	16  off  uint64  the stream offset of its first byte
//	24  payload, then zeros up to a multiple of 8
//
// A segment file is a header (segHeaderSize bytes, see segment.go)
// followed by records, each starting at a multiple of 8, and zeros.

const (
	recHeaderSize = 24
	recAlign      = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordSize returns the bytes a record of n payload bytes takes.
func recordSize(n int) int {
	return (recHeaderSize + n + recAlign - 1) &^ (recAlign - 1)
}

// record is a decoded record header.
type record struct {
	n   int    // payload length
	seq uint64 // sequence number
	off uint64 // stream offset of the first payload byte
}

// putRecord writes the record of payload p, numbered seq at stream offset
// off, at the start of dst, which has room for recordSize(len(p)) bytes,
// and returns that size.
func putRecord(dst []byte, p []byte, seq, off uint64) int {
	size := recordSize(len(p))
	copy(dst[recHeaderSize:], p)
	clear(dst[recHeaderSize+len(p) : size])
	binary.LittleEndian.PutUint32(dst[4:], uint32(len(p)))
	binary.LittleEndian.PutUint64(dst[8:], seq)
	binary.LittleEndian.PutUint64(dst[16:], off)
	binary.LittleEndian.PutUint32(dst[0:], recordCRC(dst[:recHeaderSize+len(p)]))
	return size
}

// recordCRC is the checksum of rec, a record's header and payload: one
// pass over the bytes after the crc field.
func recordCRC(rec []byte) uint32 {
	return crc32.Checksum(rec[4:], castagnoli)
}

// readResult says what parseRecord found.
type readResult int

const (
	recOK  readResult = iota // a record whose checksum matches
	recEnd                   // zeros: no record here
	recBad                   // something that is not a valid record
)

// parseRecord decodes the record at the start of b, which holds the rest
// of the segment, and returns it with its payload. It never reads past b,
// never allocates, and returns recOK only for a record whose checksum
// matches and whose length is within maxPayload and b.
func parseRecord(b []byte, maxPayload int) (record, []byte, readResult) {
	if len(b) < recHeaderSize {
		return record{}, nil, recEnd
	}
	n := binary.LittleEndian.Uint32(b[4:])
	if n == 0 {
		if allZero(b[:recHeaderSize]) {
			return record{}, nil, recEnd
		}
		return record{}, nil, recBad
	}
	if uint64(n) > uint64(maxPayload) || uint64(n) > uint64(len(b)-recHeaderSize) {
		return record{}, nil, recBad
	}
	p := b[recHeaderSize : recHeaderSize+int(n)]
	if binary.LittleEndian.Uint32(b[0:]) != recordCRC(b[:recHeaderSize+int(n)]) {
		return record{}, nil, recBad
	}
	return record{
		n:   int(n),
		seq: binary.LittleEndian.Uint64(b[8:]),
		off: binary.LittleEndian.Uint64(b[16:]),
	}, p, recOK
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
