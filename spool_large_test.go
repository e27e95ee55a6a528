package reconn_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/internal/platformtest"
)

// largeSpoolEnv, set to 1, runs TestSpoolLarge, which writes about
// 1.1 GB to the temporary directory.
const largeSpoolEnv = "RECONN_SPOOL_LARGE"

// TestSpoolLarge measures what docs/spool.md reports of a large spool.
// An Async Conn with a spool writes, with its server down, 6,000,000
// messages of 100 bytes (ten minutes at 10,000 messages a second), then
// 2,400,000 more, to a spool of over 1 GiB, and closes without
// delivering them; a second Conn on the directory, with the server up,
// must start sending at once (its first message arrives long before it
// could have read the whole spool), delivers all, and leaves the spool's
// files near empty. It logs the disk used after each phase and the times.
func TestSpoolLarge(t *testing.T) {
	needSpool(t)
	if os.Getenv(largeSpoolEnv) != "1" {
		t.Skipf("writes about 1.1 GB to the temporary directory; set %s=1 to run it", largeSpoolEnv)
	}
	const outage, more, size = 6_000_000, 2_400_000, 100
	dir, addr := platformtest.TempDir(t), downAddr(t)
	d := spoolDialer(dir)
	d.SpoolLimit = 2 << 30
	d.FlushTimeout = -1
	d.Async = true
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	writeSeqs(t, c, 0, outage)
	took := time.Since(start)
	down := dirBytes(t, dir)
	t.Logf("server down: %d messages written in %v (%.0f ns each); the spool's files: %.0f MiB (SpoolBytes %d MiB)",
		outage, took.Round(time.Millisecond), float64(took.Nanoseconds())/outage, float64(down)/(1<<20), c.(*reconn.Conn).Stats().SpoolBytes>>20)
	writeSeqs(t, c, outage, outage+more)
	var ue *reconn.UnconfirmedError
	if err := c.Close(); !errors.As(err, &ue) || ue.Messages != outage+more {
		t.Fatalf("Close with the server down = %v; want all %d messages unconfirmed", err, outage+more)
	}
	full := dirBytes(t, dir)

	srv := newTestServer(t, serverOptions{mode: discard, addr: addr})
	d.FlushTimeout = time.Minute
	start = time.Now()
	c, err = d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	opened := time.Since(start)
	srv.awaitBytes(t, 1)
	first := time.Since(start)
	total := int64(outage+more) * size
	srv.awaitBytes(t, total)
	all := time.Since(start)
	d2 := c.(*reconn.Conn)
	if err := c.Close(); err != nil {
		t.Fatalf("Close once the server is up = %v", err)
	}
	srv.stop(t)
	if got := srv.bytes.Load(); got < total {
		t.Fatalf("the server read %d bytes; want at least %d", got, total)
	}
	after := dirBytes(t, dir)
	t.Logf("a spool of %.0f MiB: Dial took %v, the first byte arrived after %v, all %d messages after %v (%d dials); the files then: %.0f MiB",
		float64(full)/(1<<20), opened.Round(time.Microsecond), first.Round(time.Microsecond), outage+more, all.Round(time.Millisecond), d2.Stats().Dials, float64(after)/(1<<20))
	if first > all/10 {
		t.Errorf("the first message arrived after %v of %v: the Conn read too much of the spool before sending", first, all)
	}
	if after > full/10 {
		t.Errorf("after delivery the spool's files hold %d bytes of %d", after, full)
	}
}

// dirBytes returns the size of the files in dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err == nil {
			n += fi.Size()
		}
	}
	return n
}
