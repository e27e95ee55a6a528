package spool

import (
	"encoding/binary"
	"hash/crc32"
)

// The checkpoint file holds two slots of checkpointSize bytes, written in
// turn, so that a write torn by a crash leaves the other slot whole. A
// slot, little-endian:
//
//	0   magic    [8]byte  "RCNCKPT\x00"
//	8   version  uint32   formatVersion
//	12  zero     uint32
//	16  gen      uint64   one more than the slot written before it
//	24  seg      uint64   the segment of the first unconfirmed record
//	32  pos      uint64   its position in that segment
//	40  seq      uint64   its sequence number
//	48  off      uint64   its stream offset
//	56  crc      uint32   CRC-32C of bytes 0 to 56
//	60  zero     uint32
//
// Everything before (seg, pos) is confirmed. With no segment left, seq
// and off are those of the next record written.

const (
	checkpointSize = 64
	checkpointFile = "checkpoint"
	formatVersion  = 1
)

var checkpointMagic = [8]byte{'R', 'C', 'N', 'C', 'K', 'P', 'T', 0}

// checkpoint is one decoded slot.
type checkpoint struct {
	gen      uint64
	seg, pos uint64
	seq, off uint64
}

func (c checkpoint) encode(dst []byte) {
	clear(dst[:checkpointSize])
	copy(dst, checkpointMagic[:])
	binary.LittleEndian.PutUint32(dst[8:], formatVersion)
	binary.LittleEndian.PutUint64(dst[16:], c.gen)
	binary.LittleEndian.PutUint64(dst[24:], c.seg)
	binary.LittleEndian.PutUint64(dst[32:], c.pos)
	binary.LittleEndian.PutUint64(dst[40:], c.seq)
	binary.LittleEndian.PutUint64(dst[48:], c.off)
	binary.LittleEndian.PutUint32(dst[56:], crc32.Checksum(dst[:56], castagnoli))
}

// slotState says what decodeCheckpoint found in a slot.
type slotState int

const (
	slotValid   slotState = iota
	slotInvalid           // torn, damaged or never written
	slotNewer             // whole, but of a format this code does not know
)

// decodeCheckpoint decodes a slot. A slot whose checksum fails is
// invalid; one that is whole but of a later version is slotNewer.
func decodeCheckpoint(b []byte) (checkpoint, slotState) {
	if len(b) < checkpointSize || [8]byte(b[:8]) != checkpointMagic {
		return checkpoint{}, slotInvalid
	}
	if binary.LittleEndian.Uint32(b[56:]) != crc32.Checksum(b[:56], castagnoli) {
		return checkpoint{}, slotInvalid
	}
	if binary.LittleEndian.Uint32(b[8:]) != formatVersion {
		return checkpoint{}, slotNewer
	}
	return checkpoint{
		gen: binary.LittleEndian.Uint64(b[16:]),
		seg: binary.LittleEndian.Uint64(b[24:]),
		pos: binary.LittleEndian.Uint64(b[32:]),
		seq: binary.LittleEndian.Uint64(b[40:]),
		off: binary.LittleEndian.Uint64(b[48:]),
	}, slotValid
}

// latest returns the valid slot of the higher generation among two, and
// whether there is one. A slot of a newer format makes newer true.
func latest(a, b []byte) (c checkpoint, ok, newer bool) {
	ca, sa := decodeCheckpoint(a)
	cb, sb := decodeCheckpoint(b)
	newer = sa == slotNewer || sb == slotNewer
	switch {
	case sa == slotValid && sb == slotValid:
		if cb.gen > ca.gen {
			return cb, true, newer
		}
		return ca, true, newer
	case sa == slotValid:
		return ca, true, newer
	case sb == slotValid:
		return cb, true, newer
	}
	return checkpoint{}, false, newer
}
