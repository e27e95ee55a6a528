package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A segment file starts with a header, little-endian:
//
//	0   magic     [8]byte  "RCNSPOOL"
//	8   version   uint32   formatVersion
//	12  zero      uint32
//	16  number    uint64   the segment's number; they follow one another from 1
//	24  size      uint64   the file's size
//	32  firstSeq  uint64   the sequence number of its first record
//	40  firstOff  uint64   the stream offset of its first record
//	48  zero      [8]byte
//	56  crc       uint32   CRC-32C of bytes 0 to 56
//	60  zero      uint32
//
// Records follow (record.go). The file is allocated whole when it is made,
// so that writing into its mapping never meets a full disk.

const (
	segHeaderSize = 64
	segPrefix     = "seg-"
)

var segMagic = [8]byte{'R', 'C', 'N', 'S', 'P', 'O', 'O', 'L'}

// segHeader is a decoded segment header.
type segHeader struct {
	num                uint64
	size               uint64
	firstSeq, firstOff uint64
}

func (h segHeader) encode(dst []byte) {
	clear(dst[:segHeaderSize])
	copy(dst, segMagic[:])
	binary.LittleEndian.PutUint32(dst[8:], formatVersion)
	binary.LittleEndian.PutUint64(dst[16:], h.num)
	binary.LittleEndian.PutUint64(dst[24:], h.size)
	binary.LittleEndian.PutUint64(dst[32:], h.firstSeq)
	binary.LittleEndian.PutUint64(dst[40:], h.firstOff)
	binary.LittleEndian.PutUint32(dst[56:], crc32.Checksum(dst[:56], castagnoli))
}

func decodeSegHeader(b []byte) (segHeader, slotState) {
	if len(b) < segHeaderSize || [8]byte(b[:8]) != segMagic {
		return segHeader{}, slotInvalid
	}
	if binary.LittleEndian.Uint32(b[56:]) != crc32.Checksum(b[:56], castagnoli) {
		return segHeader{}, slotInvalid
	}
	if binary.LittleEndian.Uint32(b[8:]) != formatVersion {
		return segHeader{}, slotNewer
	}
	return segHeader{
		num:      binary.LittleEndian.Uint64(b[16:]),
		size:     binary.LittleEndian.Uint64(b[24:]),
		firstSeq: binary.LittleEndian.Uint64(b[32:]),
		firstOff: binary.LittleEndian.Uint64(b[40:]),
	}, slotValid
}

// segment is one segment file, mapped into memory while a cursor is in it.
type segment struct {
	segHeader
	path   string
	f      *os.File
	mapLen int       // what is mapped: the header's size, or less of a file cut short
	sealed bool      // no record goes into it any more: a file cut short
	data   []byte    // the mapping; nil while unmapped
	mh     mapHandle // what unmapping needs besides data (Windows)
	end    int       // the end of its records, once the reading cursor found it; 0 until then
	ready  bool      // a segment that prepare mapped and faulted in
}

func segName(num uint64) string { return fmt.Sprintf("%s%016x", segPrefix, num) }

// segNum returns the number in a segment file's name.
func segNum(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, segPrefix)
	if !ok || len(s) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 16, 64)
	return n, err == nil && n > 0
}

// createSegment makes segment file num in dir, allocated whole, and maps
// it. A partial file is removed.
func createSegment(dir string, h segHeader) (_ *segment, err error) {
	path := filepath.Join(dir, segName(h.num))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	s := &segment{segHeader: h, path: path, f: f, mapLen: int(h.size)}
	defer func() {
		if err != nil {
			s.unmap()
			f.Close()
			os.Remove(path)
		}
	}()
	if err := preallocate(f, int64(h.size)); err != nil {
		return nil, fmt.Errorf("spool: allocating %s: %w", path, err)
	}
	if err := s.mapIn(); err != nil {
		return nil, err
	}
	h.encode(s.data)
	return s, nil
}

// openSegment opens segment file path and reads its header, without
// mapping it. A header of a newer format is an error naming the file; one
// that is damaged returns errBadHeader. A file shorter than its header
// says (cut short) is mapped as far as it goes, and takes no more
// records: reading finds the damage where it is cut.
func openSegment(path string) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	var b [segHeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		f.Close()
		return nil, errBadHeader
	}
	h, st := decodeSegHeader(b[:])
	fi, err := f.Stat()
	switch {
	case st == slotNewer:
		f.Close()
		return nil, fmt.Errorf("spool: %s is of a newer format than this program knows (version %d): %w", path, binary.LittleEndian.Uint32(b[8:]), ErrFormat)
	case st != slotValid, err != nil, fi.Size() < segHeaderSize, h.size < segHeaderSize, h.size > 1<<40:
		f.Close()
		return nil, errBadHeader
	}
	seg := &segment{segHeader: h, path: path, f: f, mapLen: int(min(uint64(fi.Size()), h.size))}
	seg.sealed = uint64(seg.mapLen) < h.size
	return seg, nil
}

var errBadHeader = errors.New("spool: damaged segment header")

// mapIn maps the segment, if it is not mapped.
func (s *segment) mapIn() error {
	if s.data != nil {
		return nil
	}
	data, mh, err := mapFile(s.f, s.mapLen)
	if err != nil {
		return fmt.Errorf("spool: mapping %s: %w", s.path, err)
	}
	s.data, s.mh = data, mh
	return nil
}

// unmap unmaps the segment, if it is mapped.
func (s *segment) unmap() {
	if s.data != nil {
		unmapFile(s.data, s.mh)
		s.data = nil
	}
}

// close unmaps and closes the segment's file.
func (s *segment) close() {
	s.unmap()
	s.f.Close()
}

// remove closes the segment and deletes its file.
func (s *segment) remove() error {
	s.close()
	return os.Remove(s.path)
}
