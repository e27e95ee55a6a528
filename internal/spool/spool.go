// Package spool keeps a Conn's messages in files until they are
// confirmed: a log of checksummed records in segment files of a fixed
// size, mapped into memory, with a checkpoint of what is confirmed.
//
// A record copied into a segment's shared mapping is in the page cache
// when Append returns, so the process may die at once without losing it;
// whether it survives the machine's death depends on when the caller asks
// for Sync. Reading it back needs no system call either.
//
// Three cursors walk the records in order: confirm (the first record not
// yet confirmed), load (the first one not yet handed to the caller's
// memory buffer) and the end (where the next record goes). Records between
// confirm and load are in the caller's buffer, in the same order; those
// between load and the end wait on disk only ("spilled"). A segment is
// deleted once the confirm cursor has left it and a checkpoint says so.
//
// All methods may be called from several goroutines; they take the
// spool's lock, which the caller may hold its own locks around.
package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
)

// Errors that Open and Append return, wrapped; test with errors.Is.
var (
	// ErrInUse: another spool, in this process or another, has the
	// directory.
	ErrInUse = errors.New("spool: the directory is in use by another spool")
	// ErrFull: the segments reached the limit; confirmations free them.
	ErrFull = errors.New("spool: full")
	// ErrFormat: a file of the spool is of a format this code does not
	// know.
	ErrFormat = errors.New("spool: unknown format")

	errUnsupported = errors.New("spool: not supported on this platform (no shared file mappings)")
)

// DamageError describes damaged records that a spool skipped: a record
// whose checksum failed, or a segment whose header did.
type DamageError struct {
	File    string // the segment file
	Pos     int64  // where the damage begins in it
	Records uint64 // how many records were skipped, as their sequence numbers tell; 0 if unknown
}

func (e *DamageError) Error() string {
	s := fmt.Sprintf("spool: damaged data in %s at %d skipped", e.File, e.Pos)
	if e.Records > 0 {
		s += fmt.Sprintf(" (%d records)", e.Records)
	}
	return s
}

// Options configure Open.
type Options struct {
	Limit      int64       // the most bytes of segment files; at least two segments
	SegSize    int         // bytes of one segment file; raised to fit a record of MaxPayload
	MaxPayload int         // the largest record
	SyncEach   bool        // Append writes its record to the disk before it returns
	OnDamage   func(error) // called with a *DamageError for what is skipped; must not block
}

// DefaultSegSize is the size of a segment file unless Options say
// otherwise.
const DefaultSegSize = 8 << 20

// A Spool is an open spool directory.
type Spool struct {
	dir  string
	abs  string
	opt  Options
	lock *os.File
	ckf  *os.File

	// mapMu is held to unmap a segment, and shared by Sync while it
	// writes one out, so that Sync need not hold mu meanwhile. Lock
	// order: mu, then mapMu.
	mapMu sync.RWMutex

	mu      sync.Mutex
	segs    []*segment // by number; the last is where records go
	nextNum uint64     // the number of the next segment to make
	endPos  int        // where the next record goes in the last segment
	nextSeq uint64     // the sequence number of the next record
	nextOff uint64     // its stream offset

	// The load cursor: the next record to hand out, in segment ld.
	// spilling is set while records wait on disk only; it is written
	// under mu and read without it by Spilling.
	spilling atomic.Bool
	ld       uint64
	ldPos    int
	ldSeq    uint64 // the sequence number expected there
	ldOff    uint64 // and its stream offset

	// Records handed out and not yet confirmed, oldest first.
	out []entry
	oh  int
	on  int

	// The confirm cursor: everything before it is confirmed.
	cSeg       uint64
	cPos       int
	cSeq, cOff uint64

	saved   checkpoint // the last checkpoint written
	damaged uint64     // records skipped as damaged, since Open
	closed  bool

	// spares are segment files kept to be the next segments: files that
	// held only confirmed records, or that prepare made ahead. Their
	// disk is allocated and their pages are in the page cache; the one
	// prepare readied is also mapped and faulted in. Reusing one costs
	// a rename, where making a segment anew in Append would cost
	// allocating it and faulting in fresh pages (4 ms for 8 MiB here).
	// What one held stays until records overwrite it: every record is
	// followed by a zero header, so no reader goes past the last one,
	// and an old record's sequence number is below any a reader
	// expects.
	spares    []*segment
	preparing bool // prepare works on a spare that is in no list

	// The preparer's goroutine (prepare) runs from Open to Close: wake
	// asks it to look, stop ends it, and it closes stopped.
	wake, stop, stopped chan struct{}
	stopOnce            sync.Once
}

// maxSpares is how many spare segment files a spool keeps.
const maxSpares = 4

// spareName is the name of spare segment file i.
func spareName(i int) string { return fmt.Sprintf("spare-%d", i) }

// entry is a record handed out: where it ends, and the sequence number
// and stream offset after it.
type entry struct {
	seg      uint64
	end      int
	seq, off uint64
}

// open holds the directories of the spools open in this process, so that
// a second one fails even where the file lock belongs to the process.
var open struct {
	mu   sync.Mutex
	dirs map[string]bool
}

// Open opens the spool in dir, making the directory if it is missing,
// and takes it for this spool alone. It reads the checkpoint and the last
// segment, not the others: what they hold is read as Next reaches it.
func Open(dir string, opt Options) (*Spool, error) {
	if !Supported {
		return nil, errUnsupported
	}
	if opt.SegSize <= 0 {
		opt.SegSize = DefaultSegSize
	}
	opt.SegSize = max(opt.SegSize, segHeaderSize+recordSize(opt.MaxPayload))
	opt.SegSize = (opt.SegSize + 4095) &^ 4095
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("spool: %s is not a directory", dir)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("spool: making %s: %w", dir, err)
	}
	open.mu.Lock()
	if open.dirs == nil {
		open.dirs = make(map[string]bool)
	}
	if open.dirs[abs] {
		open.mu.Unlock()
		return nil, fmt.Errorf("spool: %s: %w (in this process)", dir, ErrInUse)
	}
	open.dirs[abs] = true
	open.mu.Unlock()
	s := &Spool{dir: dir, abs: abs, opt: opt}
	if err := s.open(); err != nil {
		s.release()
		return nil, err
	}
	s.wake = make(chan struct{}, 1)
	s.stop = make(chan struct{})
	s.stopped = make(chan struct{})
	s.wake <- struct{}{}
	go s.preparer()
	return s, nil
}

func (s *Spool) open() error {
	lock, err := os.OpenFile(filepath.Join(s.abs, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.lock = lock
	if err := lockFile(lock); err != nil {
		return fmt.Errorf("spool: %s: %w (%v)", s.dir, ErrInUse, err)
	}
	ckPath := filepath.Join(s.abs, checkpointFile)
	s.ckf, err = os.OpenFile(ckPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var slots [2 * checkpointSize]byte
	s.ckf.ReadAt(slots[:], 0) // a short or missing file reads as no checkpoint
	ck, haveCk, newer := latest(slots[:checkpointSize], slots[checkpointSize:])
	if newer && !haveCk {
		return fmt.Errorf("spool: %s is of a newer format than this program knows: %w", ckPath, ErrFormat)
	}
	s.saved = ck
	if err := s.openSegments(ck, haveCk); err != nil {
		return err
	}
	s.openSpare()
	return nil
}

// openSpare takes the spare segment files that an earlier spool left, if
// they have the size of a segment.
func (s *Spool) openSpare() {
	for i := range maxSpares {
		path := filepath.Join(s.abs, spareName(i))
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != int64(s.opt.SegSize) {
			f.Close()
			os.Remove(path)
			continue
		}
		s.spares = append(s.spares, &segment{path: path, f: f, mapLen: s.opt.SegSize})
	}
}

// freeSpare returns the name of a spare file no spare has, or "".
func (s *Spool) freeSpare() string {
	for i := range maxSpares {
		path := filepath.Join(s.abs, spareName(i))
		if !slices.ContainsFunc(s.spares, func(sp *segment) bool { return sp.path == path }) {
			return path
		}
	}
	return ""
}

// recycle keeps seg, which holds nothing unconfirmed any more, as a
// spare, or deletes it if there are enough or it is not of the current
// size. mu is held; seg is in no list of the spool.
func (s *Spool) recycle(seg *segment) {
	path := s.freeSpare()
	if path == "" || seg.mapLen != s.opt.SegSize || seg.sealed || s.closed || !s.filesRoom() {
		s.mapMu.Lock()
		seg.remove()
		s.mapMu.Unlock()
		return
	}
	// The mapping stays where a mapped file can be renamed: under a
	// hypervisor a new mapping's pages cost a trap each on their first
	// write (about 8 µs a page measured in a Firecracker guest, with no
	// fault in the guest's kernel), even once prefault made them present.
	seg.ready = false
	if !renameWhileOpen {
		s.unmap(seg)
		seg.f.Close()
		seg.f = nil
	}
	if err := os.Rename(seg.path, path); err != nil {
		s.mapMu.Lock()
		if seg.f != nil {
			seg.close()
		}
		s.mapMu.Unlock()
		os.Remove(seg.path)
		return
	}
	seg.path = path
	s.spares = append(s.spares, seg)
}

// reuse makes a spare the segment of header h. mu is held.
func (s *Spool) reuse(h segHeader) (*segment, error) {
	i := slices.IndexFunc(s.spares, func(sp *segment) bool { return sp.ready })
	if i < 0 {
		i = len(s.spares) - 1
	}
	seg := s.spares[i]
	s.spares = slices.Delete(s.spares, i, i+1)
	if !renameWhileOpen && seg.f != nil {
		s.unmap(seg)
		seg.f.Close()
		seg.f, seg.ready = nil, false
	}
	path := filepath.Join(s.abs, segName(h.num))
	if err := os.Rename(seg.path, path); err != nil {
		if seg.f != nil {
			seg.close()
		}
		return nil, err
	}
	seg.path = path
	if seg.f == nil {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			os.Remove(path)
			return nil, err
		}
		seg.f = f
	}
	if err := s.mapIn(seg); err != nil {
		seg.close()
		os.Remove(path)
		return nil, err
	}
	h.encode(seg.data)
	clear(seg.data[segHeaderSize : segHeaderSize+recHeaderSize])
	seg.segHeader, seg.mapLen, seg.sealed, seg.end = h, int(h.size), false, 0
	return seg, nil
}

// openSegments opens the segment files, drops those that the checkpoint
// says are confirmed, and finds the cursors.
func (s *Spool) openSegments(ck checkpoint, haveCk bool) error {
	names, err := filepath.Glob(filepath.Join(s.abs, segPrefix+"*"))
	if err != nil {
		return err
	}
	var nums []uint64
	for _, p := range names {
		if n, ok := segNum(filepath.Base(p)); ok {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	for _, n := range nums {
		path := filepath.Join(s.abs, segName(n))
		if haveCk && n < ck.seg {
			os.Remove(path) // confirmed; a crash came between the checkpoint and the removal
			continue
		}
		seg, err := openSegment(path)
		if errors.Is(err, errBadHeader) {
			// A segment whose header is damaged cannot be trusted: its
			// records are skipped, and what they held is lost.
			s.damage(&DamageError{File: path})
			os.Remove(path)
			continue
		}
		if err != nil {
			return err
		}
		if seg.num != n {
			seg.close()
			s.damage(&DamageError{File: path})
			os.Remove(path)
			continue
		}
		s.segs = append(s.segs, seg)
	}
	s.nextSeq, s.nextOff, s.nextNum = ck.seq, ck.off, max(ck.seg, 1)
	if len(s.segs) == 0 {
		s.cSeq, s.cOff = ck.seq, ck.off
		s.ldSeq, s.ldOff = ck.seq, ck.off
		return nil
	}
	first := s.segs[0]
	// The confirm cursor: the checkpoint's position, if its segment is
	// still there, else the start of the first segment.
	s.cSeg, s.cPos, s.cSeq, s.cOff = first.num, segHeaderSize, first.firstSeq, first.firstOff
	if haveCk && ck.seg == first.num && ck.pos >= segHeaderSize && ck.pos <= first.size {
		s.cPos, s.cSeq, s.cOff = int(ck.pos), ck.seq, ck.off
	}
	last := s.segs[len(s.segs)-1]
	s.nextNum = last.num + 1
	if err := s.mapIn(last); err != nil {
		return err
	}
	from, seq, off := segHeaderSize, last.firstSeq, last.firstOff
	if last.num == s.cSeg {
		from, seq, off = s.cPos, s.cSeq, s.cOff
	}
	s.endPos, s.nextSeq, s.nextOff = s.scanTail(last, from, seq, off)
	s.ld, s.ldPos, s.ldSeq, s.ldOff = s.cSeg, s.cPos, s.cSeq, s.cOff
	s.spilling.Store(s.ld != last.num || s.ldPos != s.endPos)
	return nil
}

// scanTail finds the end of the records of the last segment, reading from
// pos, where the record numbered seq at stream offset off is expected. A
// record torn by the process's death ends them: it and what follows are
// zeroed. Damage with valid records after it is skipped and reported.
func (s *Spool) scanTail(seg *segment, pos int, seq, off uint64) (int, uint64, uint64) {
	for pos < len(seg.data) {
		r, _, res := parseRecord(seg.data[pos:], s.opt.MaxPayload)
		switch res {
		case recOK:
			if r.seq < seq {
				res = recBad // an old record: not part of this stream
				break
			}
			pos += recordSize(r.n)
			seq, off = r.seq+1, r.off+uint64(r.n)
			continue
		case recEnd:
			clear(seg.data[pos:])
			return pos, seq, off
		}
		next, r, ok := resync(seg.data, pos, seq, s.opt.MaxPayload)
		if !ok {
			clear(seg.data[pos:]) // a torn tail
			return pos, seq, off
		}
		s.damage(&DamageError{File: seg.path, Pos: int64(pos), Records: r.seq - seq})
		pos = next
		seq = r.seq
	}
	return pos, seq, off
}

// resync looks for the first valid record after pos, at a multiple of 8,
// whose sequence number is at least seq.
func resync(data []byte, pos int, seq uint64, maxPayload int) (int, record, bool) {
	for p := (pos + recAlign) &^ (recAlign - 1); p+recHeaderSize <= len(data); p += recAlign {
		if r, _, res := parseRecord(data[p:], maxPayload); res == recOK && r.seq >= seq {
			return p, r, true
		}
	}
	return 0, record{}, false
}

func (s *Spool) damage(err *DamageError) {
	s.damaged += err.Records
	if err.Records == 0 {
		s.damaged++
	}
	if s.opt.OnDamage != nil {
		s.opt.OnDamage(err)
	}
}

// release closes what Open opened and forgets the directory.
func (s *Spool) release() {
	for _, seg := range s.segs {
		seg.close()
	}
	s.segs = nil
	for _, sp := range s.spares {
		if sp.f != nil {
			sp.close()
		}
	}
	s.spares = nil
	if s.ckf != nil {
		s.ckf.Close()
	}
	if s.lock != nil {
		s.lock.Close() // releases the lock
	}
	open.mu.Lock()
	delete(open.dirs, s.abs)
	open.mu.Unlock()
}

// segment returns segment num, or nil.
func (s *Spool) segment(num uint64) *segment {
	for _, seg := range s.segs {
		if seg.num == num {
			return seg
		}
	}
	return nil
}

// Append writes the record p at the end. If ring is set and nothing
// waits on disk only, the record counts as handed out (loaded reports
// true), and the caller puts it in its memory buffer, after those handed
// out before; otherwise it waits on disk for Next. It returns ErrFull at
// the limit, or the error of making a segment (a full disk, say); the
// record is then not written.
func (s *Spool) Append(p []byte, ring bool) (loaded bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, os.ErrClosed
	}
	size := recordSize(len(p))
	last := s.last()
	if last == nil || last.sealed || s.endPos+size > len(last.data) {
		if last, err = s.roll(); err != nil {
			return false, err
		}
	}
	start := s.endPos
	putRecord(last.data[start:], p, s.nextSeq, s.nextOff)
	if next := start + size; next+recHeaderSize <= len(last.data) {
		clear(last.data[next : next+recHeaderSize]) // the end, over what a reused segment held
	}
	if s.opt.SyncEach {
		if err := syncFile(last.data, last.mh, last.f); err != nil {
			// Not known to be on disk: the caller refuses the message,
			// so it must not be sent later.
			clear(last.data[start : start+size])
			return false, err
		}
	}
	s.endPos += size
	s.nextSeq++
	s.nextOff += uint64(len(p))
	if ring && !s.spilling.Load() {
		s.handOut(entry{last.num, s.endPos, s.nextSeq, s.nextOff})
		s.ld, s.ldPos, s.ldSeq, s.ldOff = last.num, s.endPos, s.nextSeq, s.nextOff
		return true, nil
	}
	if !s.spilling.Load() {
		s.spilling.Store(true)
	}
	return false, nil
}

func (s *Spool) last() *segment {
	if len(s.segs) == 0 {
		return nil
	}
	return s.segs[len(s.segs)-1]
}

// roll makes the next segment, within the limit, and maps it.
func (s *Spool) roll() (*segment, error) {
	if int64(len(s.segs)+1)*int64(s.opt.SegSize) > s.maxBytes() {
		return nil, ErrFull
	}
	h := segHeader{num: s.nextNum, size: uint64(s.opt.SegSize), firstSeq: s.nextSeq, firstOff: s.nextOff}
	var seg *segment
	var err error
	if len(s.spares) > 0 {
		seg, err = s.reuse(h)
	}
	if seg == nil {
		if seg, err = createSegment(s.abs, h); err != nil {
			return nil, err
		}
	}
	if prev := s.last(); prev != nil && prev.num != s.ld {
		s.retire(prev)
	}
	s.segs = append(s.segs, seg)
	s.nextNum++
	s.endPos = segHeaderSize
	select {
	case s.wake <- struct{}{}: // ready the next one
	default:
	}
	if len(s.segs) == 1 && s.on == 0 {
		s.cSeg, s.cPos, s.cSeq, s.cOff = seg.num, segHeaderSize, s.nextSeq, s.nextOff
		s.ld, s.ldPos, s.ldSeq, s.ldOff = seg.num, segHeaderSize, s.nextSeq, s.nextOff
	}
	return seg, nil
}

// handOut records a record handed out to the caller.
func (s *Spool) handOut(e entry) {
	if s.on == len(s.out) {
		n := max(64, 2*len(s.out))
		out := make([]entry, n)
		for i := range s.on {
			out[i] = s.out[(s.oh+i)%len(s.out)]
		}
		s.out, s.oh = out, 0
	}
	s.out[(s.oh+s.on)%len(s.out)] = e
	s.on++
}

// A Sink takes the records that Load hands out.
type Sink interface {
	// Fits reports whether a payload of n bytes can go in now.
	Fits(n int) bool
	// Put takes the payload p, which is valid only during the call.
	Put(p []byte)
}

// Load hands out to dst, in order, the records that wait on disk only,
// as long as dst has room, until it handed out limit bytes of payload,
// which it returns. Damaged records are skipped and reported.
func (s *Spool) Load(dst Sink, limit int) (moved int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for moved < limit {
		p, ok := s.next(dst)
		if !ok {
			break
		}
		dst.Put(p)
		moved += len(p)
	}
	return moved
}

// Spilling reports whether records wait on disk only, without taking
// the spool's lock.
func (s *Spool) Spilling() bool { return s.spilling.Load() }

// next returns the next record that waits on disk only, if dst has room
// for it. mu is held.
func (s *Spool) next(dst Sink) ([]byte, bool) {
	for s.spilling.Load() && !s.closed {
		last := s.last()
		if s.ld == last.num && s.ldPos >= s.endPos {
			s.spilling.Store(false)
			return nil, false
		}
		seg := s.segment(s.ld)
		if seg == nil || seg.data == nil && s.mapIn(seg) != nil {
			s.nextSegment(seg, "")
			continue
		}
		r, p, res := parseRecord(seg.data[s.ldPos:min(len(seg.data), s.limitIn(seg))], s.opt.MaxPayload)
		switch {
		case res == recOK && r.seq >= s.ldSeq:
			if !dst.Fits(r.n) {
				return nil, false
			}
			if r.seq > s.ldSeq {
				s.damage(&DamageError{File: seg.path, Pos: int64(s.ldPos), Records: r.seq - s.ldSeq})
			}
			s.ldPos += recordSize(r.n)
			s.ldSeq, s.ldOff = r.seq+1, r.off+uint64(r.n)
			s.handOut(entry{seg.num, s.ldPos, r.seq + 1, r.off + uint64(r.n)})
			return p, true
		case res == recEnd:
			seg.end = s.ldPos
			s.nextSegment(seg, "")
		default:
			next, rr, ok := resync(seg.data[:s.limitIn(seg)], s.ldPos, s.ldSeq, s.opt.MaxPayload)
			if !ok {
				s.nextSegment(seg, seg.path)
				continue
			}
			s.damage(&DamageError{File: seg.path, Pos: int64(s.ldPos), Records: rr.seq - s.ldSeq})
			s.ldPos, s.ldSeq = next, rr.seq
		}
	}
	return nil, false
}

// limitIn returns how far records go in seg: to the end of the records
// in the last segment, to its end in the others.
func (s *Spool) limitIn(seg *segment) int {
	if seg == s.last() {
		return s.endPos
	}
	return len(seg.data)
}

// nextSegment moves the load cursor to the start of the segment after
// seg, unmapping seg. If damaged names seg's file, what was left of it is
// reported as damaged.
func (s *Spool) nextSegment(seg *segment, damaged string) {
	i := 0
	for i < len(s.segs) && s.segs[i].num <= s.ld {
		i++
	}
	if i == len(s.segs) {
		s.spilling.Store(false)
		return
	}
	next := s.segs[i]
	if damaged != "" {
		var n uint64
		if next.firstSeq > s.ldSeq {
			n = next.firstSeq - s.ldSeq
		}
		s.damage(&DamageError{File: damaged, Pos: int64(s.ldPos), Records: n})
	}
	if seg != nil && seg != s.last() {
		s.retire(seg)
	}
	s.ld, s.ldPos = next.num, segHeaderSize
	s.ldSeq, s.ldOff = max(s.ldSeq, next.firstSeq), max(s.ldOff, next.firstOff)
}

// mapIn maps seg. mu is held.
func (s *Spool) mapIn(seg *segment) error {
	s.mapMu.Lock()
	defer s.mapMu.Unlock()
	return seg.mapIn()
}

// unmap unmaps seg once no Sync writes it out. mu is held.
func (s *Spool) unmap(seg *segment) {
	s.mapMu.Lock()
	seg.unmap()
	s.mapMu.Unlock()
}

// Confirm records that the k oldest records handed out are confirmed.
func (s *Spool) Confirm(k int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k = min(k, s.on)
	if k <= 0 {
		return
	}
	e := s.out[(s.oh+k-1)%len(s.out)]
	s.oh = (s.oh + k) % len(s.out)
	s.on -= k
	s.cSeg, s.cPos, s.cSeq, s.cOff = e.seg, e.end, e.seq, e.off
}

// Pending returns the records, and their payload bytes, not yet
// confirmed, and of them those that wait on disk only.
func (s *Spool) Pending() (n, bytes, spilled, spilledBytes uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, bytes = s.nextSeq-s.cSeq, s.nextOff-s.cOff
	if s.spilling.Load() {
		spilled, spilledBytes = s.nextSeq-s.ldSeq, s.nextOff-s.ldOff
	}
	return n, bytes, spilled, spilledBytes
}

// Mark returns the sequence number and the stream offset of the next
// record: a flush waits until UnconfirmedBefore(Mark()) is 0.
func (s *Spool) Mark() (seq, off uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextSeq, s.nextOff
}

// UnconfirmedBefore returns the records, and their payload bytes, before
// the mark (seq, off) not yet confirmed.
func (s *Spool) UnconfirmedBefore(seq, off uint64) (n, bytes uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq <= s.cSeq {
		return 0, 0
	}
	return seq - s.cSeq, off - min(off, s.cOff)
}

// LoadedBefore reports whether every record before sequence number seq
// has been handed out.
func (s *Spool) LoadedBefore(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.spilling.Load() || s.ldSeq >= seq
}

// Stats returns what the spool holds on disk, and the records skipped as
// damaged since Open.
func (s *Spool) Stats() (diskBytes int64, damaged uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.segs)) * int64(s.opt.SegSize), s.damaged
}

// Checkpoint records what is confirmed and deletes the segments that
// holds no unconfirmed record any more. If sync is set, the checkpoint is
// written to the disk first.
func (s *Spool) Checkpoint(sync bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return os.ErrClosed
	}
	ck := checkpoint{gen: s.saved.gen + 1, seg: s.cSeg, pos: uint64(s.cPos), seq: s.cSeq, off: s.cOff}
	if len(s.segs) == 0 {
		ck.seg, ck.pos, ck.seq, ck.off = s.nextNum, segHeaderSize, s.nextSeq, s.nextOff
	}
	if ck.seg == s.saved.seg && ck.pos == s.saved.pos && ck.seq == s.saved.seq && s.saved.gen > 0 {
		s.mu.Unlock()
		return nil
	}
	var drop []*segment
	for len(s.segs) > 1 && s.segs[0].num < ck.seg {
		drop = append(drop, s.segs[0])
		s.segs = s.segs[1:]
	}
	s.saved = ck
	s.mu.Unlock()
	if err := s.writeCheckpoint(ck, sync); err != nil {
		return err
	}
	if len(drop) > 0 {
		s.mu.Lock()
		for _, seg := range drop {
			s.recycle(seg)
		}
		s.mu.Unlock()
	}
	return nil
}

func (s *Spool) writeCheckpoint(ck checkpoint, sync bool) error {
	var b [checkpointSize]byte
	ck.encode(b[:])
	if _, err := s.ckf.WriteAt(b[:], int64(ck.gen%2)*checkpointSize); err != nil {
		return fmt.Errorf("spool: writing the checkpoint: %w", err)
	}
	if sync {
		return s.ckf.Sync()
	}
	return nil
}

// preparer runs prepare whenever Append moved to another segment, from
// Open until Close.
func (s *Spool) preparer() {
	defer close(s.stopped)
	for {
		select {
		case <-s.wake:
			s.prepare()
		case <-s.stop:
			return
		}
	}
}

// prepare readies the segment file that records go into next, so that
// the Append that needs it finds it mapped and its pages in: it makes a
// spare file if there is none and the limit allows one, maps it, and
// faults its pages in for writing; and it faults in the rest of the
// last segment if Append had to take it unprepared. Without it, the
// first write to each page of a segment's mapping traps into the kernel
// on the path of Append (where the file is new, to allocate and zero the
// page: about 2 µs a page here, 60 ns a record of 100 bytes). It holds
// no lock while it works. Only Linux (5.14 and later) faults pages in on
// request; elsewhere it makes and maps the file, and the pages fault in
// as they are written.
func (s *Spool) prepare() {
	s.mu.Lock()
	if last := s.last(); last != nil && !last.ready && last.data != nil && !s.closed {
		// A segment that Append made or took unprepared: fault in
		// what it has not written yet, ahead of it.
		last.ready = true
		from := s.endPos &^ (pageSize - 1)
		s.mu.Unlock()
		s.mapMu.RLock()
		if last.data != nil {
			prefault(last.data[from:])
		}
		s.mapMu.RUnlock()
		s.mu.Lock()
	}
	if s.closed || s.preparing || slices.ContainsFunc(s.spares, func(sp *segment) bool { return sp.ready }) {
		s.mu.Unlock()
		return
	}
	var sp *segment
	if n := len(s.spares); n > 0 {
		sp = s.spares[n-1]
		s.spares = s.spares[:n-1]
	} else if path := s.freeSpare(); path != "" && s.filesRoom() {
		sp = &segment{path: path, mapLen: s.opt.SegSize}
	} else {
		s.mu.Unlock()
		return
	}
	s.preparing = true
	s.mu.Unlock()

	err := s.readySpare(sp)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.preparing = false
	switch {
	case err != nil:
		if sp.f != nil {
			sp.remove()
		}
	case s.closed:
		sp.close()
	default:
		sp.ready = true
		s.spares = append(s.spares, sp)
	}
}

// readySpare opens (or makes) the spare file sp, maps it and faults its
// pages in. No one else sees sp meanwhile.
func (s *Spool) readySpare(sp *segment) error {
	if sp.f == nil {
		f, err := os.OpenFile(sp.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		sp.f = f
		if fi, err := f.Stat(); err != nil {
			return err
		} else if fi.Size() != int64(s.opt.SegSize) {
			if err := preallocate(f, int64(s.opt.SegSize)); err != nil {
				return err
			}
		}
	}
	if err := sp.mapIn(); err != nil {
		return err
	}
	prefault(sp.data)
	return nil
}

// keepMapped is how many segments stay mapped when no cursor reads them.
const keepMapped = 3

// retire unmaps seg, which no cursor reads any more, unless few segments
// are mapped: while confirmations keep up, a segment then goes round
// (written, confirmed, spare, written again) in one mapping, and a long
// outage still maps only a few. mu is held.
func (s *Spool) retire(seg *segment) {
	mapped := 0
	for _, g := range s.segs {
		if g.data != nil {
			mapped++
		}
	}
	if mapped > keepMapped {
		s.unmap(seg)
	}
}

// pageSize is what prepare aligns to; a larger page only makes it do
// more than needed.
const pageSize = 4096

// filesRoom reports whether the limit allows one more file. mu is held.
func (s *Spool) filesRoom() bool {
	return int64(len(s.segs)+len(s.spares)+1)*int64(s.opt.SegSize) <= s.maxBytes()
}

// maxBytes is the most bytes of files: the limit, at least two
// segments.
func (s *Spool) maxBytes() int64 { return max(s.opt.Limit, 2*int64(s.opt.SegSize)) }

// Sync writes to the disk the records appended so far and the
// checkpoint. It does not hold the spool's lock while it writes, so that
// Appends go on meanwhile.
func (s *Spool) Sync() error {
	s.mu.Lock()
	segs := slices.Clone(s.segs)
	s.mu.Unlock()
	s.mapMu.RLock()
	defer s.mapMu.RUnlock()
	// The segments still mapped are those records may have gone into
	// since the last Sync: the last, and one a cursor still reads.
	for _, seg := range segs {
		if seg.data != nil {
			if err := syncFile(seg.data, seg.mh, seg.f); err != nil {
				return err
			}
		}
	}
	return s.ckf.Sync()
}

// Close writes a last checkpoint and releases the directory. If every
// record is confirmed, it deletes the segments: the spool is empty.
func (s *Spool) Close(sync bool) error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.stopped
	s.mu.Lock()
	empty := s.nextSeq == s.cSeq
	s.mu.Unlock()
	err := s.Checkpoint(sync)
	s.mu.Lock()
	if empty && err == nil {
		ck := checkpoint{gen: s.saved.gen + 1, seg: s.nextNum, pos: segHeaderSize, seq: s.nextSeq, off: s.nextOff}
		if err = s.writeCheckpoint(ck, sync); err == nil {
			s.saved = ck
			for _, seg := range s.segs {
				s.recycle(seg)
			}
			s.segs = nil
		}
	}
	s.closed = true
	s.mu.Unlock()
	s.release()
	return err
}
