package testns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// marker is set in the environment of the run inside the namespace.
const marker = "RECONN_TESTNS"

// Enter re-runs the test binary inside a user and network namespace when
// the process is not root; see the package documentation.
func Enter() {
	switch os.Getenv(marker) {
	case "inside":
		if err := LoopbackUp(); err != nil {
			fmt.Fprintf(os.Stderr, "testns: bringing up lo in the new network namespace: %v\n", err)
			os.Exit(2)
		}
		return
	case "off":
		return
	}
	if os.Geteuid() == 0 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), marker+"=inside")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		// No unprivileged user namespaces here (a sysctl, a security
		// module or a container forbids them): run as is.
		fmt.Fprintf(os.Stderr, "testns: no user and network namespace (%v); tests that need CAP_NET_ADMIN will skip\n", err)
		return
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		os.Exit(ee.ExitCode())
	}
	fmt.Fprintf(os.Stderr, "testns: the run inside the namespace ended: %v\n", err)
	os.Exit(1)
}

// LoopbackUp sets IFF_UP on lo, which a new network namespace, or a
// freshly booted kernel, starts without.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
