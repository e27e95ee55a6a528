package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/reconn/reconn/internal/platformtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, platformtest.LeakOptions()...)
}

func needSpools(t *testing.T) {
	t.Helper()
	if !Supported {
		t.Skip("spools need shared file mappings, which this platform lacks")
	}
}

// testOptions keeps segments small, so that tests cross them.
func testOptions() Options {
	return Options{Limit: 1 << 20, SegSize: 16 << 10, MaxPayload: 4 << 10}
}

func msg(i int) []byte {
	return fmt.Appendf(nil, "message %06d %s", i, bytes.Repeat([]byte{'x'}, i%97))
}

// drain hands out everything waiting on disk and returns it.
func drain(s *Spool) [][]byte {
	var got [][]byte
	s.Load(sinkFunc(func(p []byte) { got = append(got, append([]byte(nil), p...)) }), math.MaxInt)
	return got
}

// sinkFunc is a Sink with room for everything.
type sinkFunc func(p []byte)

func (f sinkFunc) Fits(int) bool { return true }
func (f sinkFunc) Put(p []byte)  { f(p) }

func mustOpen(t *testing.T, dir string, opt Options) *Spool {
	t.Helper()
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	return s
}

// TestReopen: records appended and not confirmed are handed out again,
// in order, by the next spool on the directory, and confirmed ones are
// not; a spool whose records are all confirmed is empty on disk.
func TestReopen(t *testing.T) {
	needSpools(t)
	dir := platformtest.TempDir(t)
	s := mustOpen(t, dir, testOptions())
	const total = 2000
	for i := range total {
		if loaded, err := s.Append(msg(i), i%3 != 0); err != nil {
			t.Fatal(err)
		} else if i%3 == 0 && loaded {
			t.Fatalf("record %d loaded with no room in the buffer", i)
		}
	}
	got := drain(s) // what waited on disk, once the first unloaded one came
	s.Confirm(700)
	if err := s.Close(false); err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		t.Fatal("nothing waited on disk")
	}

	s = mustOpen(t, dir, testOptions())
	defer s.Close(false)
	if n, _, spilled, _ := s.Pending(); n != total-700 || spilled != total-700 {
		t.Fatalf("after reopening: %d pending, %d on disk; want %d, %d", n, spilled, total-700, total-700)
	}
	again := drain(s)
	if len(again) != total-700 {
		t.Fatalf("reopened spool handed out %d records; want %d", len(again), total-700)
	}
	for i, p := range again {
		if want := msg(700 + i); !bytes.Equal(p, want) {
			t.Fatalf("record %d = %q; want %q", i, p, want)
		}
	}
	s.Confirm(len(again))
	if err := s.Close(false); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, segPrefix+"*"))
	if len(segs) != 0 {
		t.Errorf("segments left after everything was confirmed: %v", segs)
	}
	s = mustOpen(t, dir, testOptions())
	defer s.Close(false)
	if n, _, _, _ := s.Pending(); n != 0 {
		t.Fatalf("an emptied spool has %d pending", n)
	}
	if _, err := s.Append([]byte("next"), true); err != nil {
		t.Fatal(err)
	}
	if seq, _ := s.Mark(); seq != total+1 {
		t.Errorf("the next record is numbered %d; want %d, after the %d before", seq-1, total, total)
	}
}

// TestDeletesConfirmedSegments: disk use follows what is unconfirmed.
func TestDeletesConfirmedSegments(t *testing.T) {
	needSpools(t)
	s := mustOpen(t, platformtest.TempDir(t), testOptions())
	defer s.Close(false)
	for i := range 5000 {
		if _, err := s.Append(msg(i), true); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := s.Stats()
	s.Confirm(4990)
	if err := s.Checkpoint(false); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Stats()
	if after >= before || after > 2*int64(testOptions().SegSize) {
		t.Errorf("disk use %d before the checkpoint, %d after; want at most two segments after", before, after)
	}
}

// TestLimit: at the limit Append fails with ErrFull and writes nothing;
// confirmations and a checkpoint make room again.
func TestLimit(t *testing.T) {
	needSpools(t)
	opt := testOptions()
	opt.Limit = 4 * int64(opt.SegSize)
	s := mustOpen(t, platformtest.TempDir(t), opt)
	defer s.Close(false)
	n := 0
	var err error
	for ; n < 100000; n++ {
		if _, err = s.Append(msg(n), true); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Append after %d records = %v; want ErrFull", n, err)
	}
	if p, _, _, _ := s.Pending(); p != uint64(n) {
		t.Fatalf("%d pending after a refused Append; want %d", p, n)
	}
	s.Confirm(n)
	if err := s.Checkpoint(false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(msg(n), true); err != nil {
		t.Fatalf("Append after confirming everything = %v", err)
	}
}

// TestInUse: a directory has one spool at a time, in this process and in
// another (the lock file), and the error says so.
func TestInUse(t *testing.T) {
	needSpools(t)
	dir := platformtest.TempDir(t)
	s := mustOpen(t, dir, testOptions())
	if _, err := Open(dir, testOptions()); !errors.Is(err, ErrInUse) {
		t.Errorf("a second Open = %v; want ErrInUse", err)
	}
	// Another open file of the lock, as another process has.
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := lockFile(f); err == nil {
		t.Error("the lock file could be locked while a spool holds it")
	}
	f.Close()
	s.Close(false)
	s = mustOpen(t, dir, testOptions())
	s.Close(false)
}

// TestNotADirectory: a SpoolDir that is a file fails with an error naming
// it.
func TestNotADirectory(t *testing.T) {
	needSpools(t)
	path := filepath.Join(platformtest.TempDir(t), "file")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, testOptions()); err == nil || !bytes.Contains([]byte(err.Error()), []byte("file")) {
		t.Errorf("Open(a file) = %v; want an error naming it", err)
	}
}

// TestTornTail: a record cut short at the end, as the process's death
// leaves it, is dropped without a report; the records before it remain.
func TestTornTail(t *testing.T) {
	needSpools(t)
	dir := platformtest.TempDir(t)
	s := mustOpen(t, dir, testOptions())
	for i := range 10 {
		s.Append(msg(i), false)
	}
	last := s.last()
	pos := s.endPos
	s.Append(msg(10), false)
	// Tear the last record: its payload is there, its header half.
	binary.LittleEndian.PutUint32(last.data[pos+4:], 0xdeadbeef)
	s.closeWithoutCheckpoint()
	var reports []error
	opt := testOptions()
	opt.OnDamage = func(err error) { reports = append(reports, err) }
	s = mustOpen(t, dir, opt)
	defer s.Close(false)
	if got := drain(s); len(got) != 10 {
		t.Errorf("after a torn tail: %d records; want the 10 before it", len(got))
	}
	if len(reports) != 0 {
		t.Errorf("a torn tail was reported as damage: %v", reports)
	}
	if _, err := s.Append(msg(11), false); err != nil {
		t.Fatal(err)
	}
	if got := drain(s); len(got) != 1 || !bytes.Equal(got[0], msg(11)) {
		t.Errorf("the record after a torn tail: %q", got)
	}
}

// TestDamageSkipped: a record whose checksum fails in the middle is
// skipped, counted and reported; the ones after it are handed out.
func TestDamageSkipped(t *testing.T) {
	needSpools(t)
	dir := platformtest.TempDir(t)
	s := mustOpen(t, dir, testOptions())
	var at []int
	for i := range 3000 {
		at = append(at, s.endPos)
		s.Append(msg(i), false)
	}
	// Flip a byte in the payload of record 5, in the first segment.
	first := s.segs[0]
	first.data[at[5]+recHeaderSize+3] ^= 0x40
	s.closeWithoutCheckpoint()
	var reports []error
	opt := testOptions()
	opt.OnDamage = func(err error) { reports = append(reports, err) }
	s = mustOpen(t, dir, opt)
	defer s.Close(false)
	got := drain(s)
	if len(got) != 2999 {
		t.Fatalf("handed out %d records; want 2999", len(got))
	}
	for _, p := range got {
		if bytes.Equal(p, msg(5)) {
			t.Fatal("the damaged record was handed out")
		}
	}
	var de *DamageError
	if len(reports) != 1 || !errors.As(reports[0], &de) || de.Records != 1 {
		t.Errorf("reports = %v; want one *DamageError of 1 record", reports)
	}
	if _, damaged := s.Stats(); damaged != 1 {
		t.Errorf("Stats damaged = %d; want 1", damaged)
	}
}

// TestNewerFormat: a checkpoint or a segment of a later version fails
// Open with an error naming the file.
func TestNewerFormat(t *testing.T) {
	needSpools(t)
	for _, file := range []string{"checkpoint", "segment"} {
		t.Run(file, func(t *testing.T) {
			dir := platformtest.TempDir(t)
			s := mustOpen(t, dir, testOptions())
			s.Append(msg(1), true)
			s.Confirm(1)
			s.Append(msg(2), true)
			if err := s.Checkpoint(false); err != nil {
				t.Fatal(err)
			}
			name := segName(s.segs[0].num)
			s.Close(false)
			var path string
			var b []byte
			if file == "checkpoint" {
				path = filepath.Join(dir, checkpointFile)
				b, _ = os.ReadFile(path)
				for slot := 0; slot+checkpointSize <= len(b); slot += checkpointSize {
					if _, st := decodeCheckpoint(b[slot:]); st == slotValid {
						binary.LittleEndian.PutUint32(b[slot+8:], formatVersion+1)
						binary.LittleEndian.PutUint32(b[slot+56:], crc32c(b[slot:slot+56]))
					}
				}
			} else {
				path = filepath.Join(dir, name)
				b, _ = os.ReadFile(path)
				binary.LittleEndian.PutUint32(b[8:], formatVersion+1)
				binary.LittleEndian.PutUint32(b[56:], crc32c(b[:56]))
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir, testOptions())
			if !errors.Is(err, ErrFormat) || !bytes.Contains([]byte(err.Error()), []byte(filepath.Base(path))) {
				t.Errorf("Open = %v; want ErrFormat naming %s", err, filepath.Base(path))
			}
		})
	}
}

// TestCheckpointTorn: a torn checkpoint slot falls back to the other.
func TestCheckpointTorn(t *testing.T) {
	needSpools(t)
	dir := platformtest.TempDir(t)
	s := mustOpen(t, dir, testOptions())
	for i := range 100 {
		s.Append(msg(i), true)
	}
	s.Confirm(40)
	s.Checkpoint(false) // gen 1, slot 1
	s.Confirm(20)
	s.Checkpoint(false) // gen 2, slot 0
	s.closeWithoutCheckpoint()
	path := filepath.Join(dir, checkpointFile)
	b, _ := os.ReadFile(path)
	b[20] ^= 1 // tear slot 0, the newer
	os.WriteFile(path, b, 0o600)
	s = mustOpen(t, dir, testOptions())
	defer s.Close(false)
	if n, _, _, _ := s.Pending(); n != 60 {
		t.Errorf("%d pending after a torn checkpoint; want 60, from the older slot", n)
	}
}

// closeWithoutCheckpoint releases the spool as the process's death does.
func (s *Spool) closeWithoutCheckpoint() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.stopped
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.release()
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func writeFile(dir, name string, data []byte) error {
	return os.WriteFile(filepath.Join(dir, name), data, 0o600)
}
