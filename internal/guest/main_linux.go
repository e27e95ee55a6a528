package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/reconn/reconn/internal/testns"
	"golang.org/x/sys/unix"
)

func main() {
	raw()
	b, err := os.ReadFile("/guest/token")
	token := strings.TrimSpace(string(b))
	fmt.Printf("%s start\n", token)
	if err != nil {
		fmt.Fprintln(os.Stderr, "guest:", err)
	}
	status := run()
	out.finish()
	fmt.Printf("%s exit %d\n", token, status)
	unix.Sync()
	// If this fails, PID 1 returns and the kernel panics; the host boots
	// it with panic=-1, which ends the machine as well.
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Fprintln(os.Stderr, "guest: power off:", err)
	}
}

// run prepares the machine, runs the test binary and returns its exit
// status: 128+N when signal N ended it, 125 when it could not run.
func run() int {
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "guest:", err)
		return 125
	}
	args, err := list("/guest/args")
	if err != nil {
		fmt.Fprintln(os.Stderr, "guest:", err)
		return 125
	}
	env, err := list("/guest/env")
	if err != nil {
		fmt.Fprintln(os.Stderr, "guest:", err)
		return 125
	}
	cmd := exec.Command("/guest/test", args...)
	cmd.Dir = "/guest/pkg"
	// RECONN_EMULATED: the CPU is emulated (qemu-exec boots with TCG),
	// for the rule in internal/short.
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", "TMPDIR=/tmp", "RECONN_EMULATED=1"}, env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(unix.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exit.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "guest:", err)
		return 125
	}
}

// raw makes the console pass bytes through as they are, without a "\r"
// before each "\n".
func raw() {
	t, err := unix.IoctlGetTermios(1, unix.TCGETS)
	if err == nil {
		t.Oflag &^= unix.OPOST
		err = unix.IoctlSetTermios(1, unix.TCSETS, t)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "guest: console:", err)
	}
}

// setup mounts what a test binary expects and brings up lo, whose
// addresses (127.0.0.1, ::1) the kernel assigns when it comes up.
func setup() error {
	for _, m := range []struct{ fs, dir string }{
		{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"}, {"tmpfs", "/tmp"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.fs, m.dir, m.fs, 0, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fs, m.dir, err)
		}
	}
	if err := os.Chmod("/tmp", 0o1777); err != nil {
		return err
	}
	if err := testns.LoopbackUp(); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// list reads a file of NUL-terminated strings.
func list(name string) ([]string, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil || len(b) == 0 {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
}

// out is the test binary's standard output and error, both (os/exec then
// copies them with one goroutine), so that the status line can start a
// line of its own.
var out console

type console struct{ last byte }

func (c *console) Write(p []byte) (int, error) {
	if len(p) > 0 {
		c.last = p[len(p)-1]
	}
	return os.Stdout.Write(p)
}

// finish ends the output's last line if it did not end it itself.
func (c *console) finish() {
	if c.last != 0 && c.last != '\n' {
		os.Stdout.Write([]byte{'\n'})
	}
}
