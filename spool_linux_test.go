package reconn_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// spoolMountsEnv marks the run of the test binary, in a mount namespace of
// its own, in which TestSpoolDiskErrors mounts its file systems.
const spoolMountsEnv = "RECONN_SPOOL_MOUNTS"

// TestSpoolDiskErrors: a SpoolDir on a read-only file system fails Dial
// with the system's error; on a full disk the Write that needs a new
// segment fails with ENOSPC, takes nothing, loses nothing already
// spooled, and writing resumes once space returns. The test runs itself
// in a private mount namespace, where it mounts small tmpfs file systems.
func TestSpoolDiskErrors(t *testing.T) {
	needSpool(t)
	if os.Getenv(spoolMountsEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolDiskErrors$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), spoolMountsEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		if err != nil && strings.Contains(err.Error(), "operation not permitted") {
			t.Skipf("no mount namespace for this user: %v", err)
		}
		if err != nil {
			t.Fatalf("the run in its own mount namespace: %v\n%s", err, out)
		}
		if strings.Contains(string(out), "--- SKIP") {
			t.Skipf("the run in its own mount namespace skipped:\n%s", out)
		}
		t.Logf("in its own mount namespace:\n%s", out)
		return
	}
	// Mounts made from now on stay in this namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Skipf("making the mounts private: %v", err)
	}
	tmpfs := func(t *testing.T, size string) string {
		dir := t.TempDir()
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
			t.Skipf("mounting a tmpfs: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
		return dir
	}

	t.Run("read-only", func(t *testing.T) {
		dir := tmpfs(t, "1m")
		if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			t.Fatal(err)
		}
		_, err := spoolDialer(filepath.Join(dir, "spool")).Dial("tcp", downAddr(t))
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("Dial with SpoolDir on a read-only file system = %v; want EROFS", err)
		}
	})

	t.Run("full", func(t *testing.T) {
		dir := tmpfs(t, "25m") // two segments, the filler, and the small files
		filler := filepath.Join(dir, "filler")
		if err := os.WriteFile(filler, make([]byte, 7<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		addr := downAddr(t)
		d := spoolDialer(filepath.Join(dir, "spool"))
		nc, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		var buf []byte
		accepted := 0
		for ; accepted < 1<<20; accepted++ {
			buf = faultnetMessage(buf, accepted)
			if _, err = nc.Write(buf); err != nil {
				break
			}
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Write %d on a full disk = %v; want ENOSPC", accepted, err)
		}
		if _, err := nc.Write(buf); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("the next Write = %v; want ENOSPC again", err)
		}
		os.Remove(filler)
		for seq := accepted; seq < accepted+1000; seq++ {
			buf = faultnetMessage(buf, seq)
			if _, err := nc.Write(buf); err != nil {
				t.Fatalf("Write once space returned = %v", err)
			}
		}
		total := accepted + 1000
		srv := newTestServer(t, serverOptions{mode: lines, verify: true, addr: addr})
		if err := nc.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		awaitSeqs(t, srv, 0, total)
		srv.stop(t)
		for seq := range total {
			if n := srv.got[seq]; n != 1 {
				t.Fatalf("message %d arrived %d times; want once", seq, n)
			}
		}
		t.Logf("the disk filled after %d messages; all %d arrived", accepted, total)
	})
}
