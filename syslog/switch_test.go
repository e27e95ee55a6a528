//go:build unix

package syslog

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/reconn/reconn/internal/short"
)

// TestCompileSwitch builds testdata/logsyslog, a program written for
// log/syslog that uses every name it exports, as it is and with only its
// import path changed to this package, runs both against the same
// listener, and compares what they send but for timestamps and process
// IDs.
func TestCompileSwitch(t *testing.T) {
	short.Skip(t, "builds two programs")
	gotool, err := exec.LookPath("go")
	if err != nil {
		gotool = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gotool); err != nil {
			t.Skipf("no go command to build with: %v", err)
		}
	}
	src, err := os.ReadFile("testdata/logsyslog/main.go")
	if err != nil {
		t.Fatal(err)
	}
	const stdImport, ourImport = `"log/syslog"`, `"github.com/reconn/reconn/syslog"`
	if bytes.Count(src, []byte(stdImport)) != 1 {
		t.Fatalf("testdata/logsyslog/main.go does not import %s once", stdImport)
	}
	dir := t.TempDir()
	switched := filepath.Join(dir, "main.go")
	if err := os.WriteFile(switched, bytes.Replace(src, []byte(stdImport), []byte(ourImport), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs("testdata/logsyslog/main.go")
	if err != nil {
		t.Fatal(err)
	}
	overlay, err := json.Marshal(map[string]any{"Replace": map[string]string{abs: switched}})
	if err != nil {
		t.Fatal(err)
	}
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		t.Fatal(err)
	}

	build := func(out string, args ...string) string {
		t.Helper()
		bin := filepath.Join(dir, out)
		cmd := exec.Command(gotool, append(append([]string{"build", "-o", bin}, args...), "./testdata/logsyslog")...)
		// The test's own flags (-race, -count) are not the program's.
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
		}
		return bin
	}
	std := build("std")
	ours := build("ours", "-overlay", overlayFile)

	run := func(bin string) []byte {
		t.Helper()
		srv := listen(t, "tcp")
		return srv.receive(t, 0, func() {
			if out, err := exec.Command(bin, srv.addr).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", bin, err, out)
			}
		})
	}
	want, got := run(std), run(ours)
	pids := regexp.MustCompile(`logsyslog\[\d+\]`)
	norm := func(b []byte) string {
		b = timestamps.ReplaceAll(b, []byte("$1${2}TIMESTAMP "))
		return string(pids.ReplaceAll(b, []byte("logsyslog[PID]")))
	}
	if n := strings.Count(norm(want), "logsyslog[PID]: "); n != 20*8+8+1 {
		t.Fatalf("log/syslog's program sent %d messages; want %d:\n%s", n, 20*8+8+1, want)
	}
	if norm(got) != norm(want) {
		t.Errorf("the switched program sent\n%s\nthe log/syslog program sent\n%s", norm(got), norm(want))
	}
}
