// Command guest is the first process (PID 1) of the virtual machine in
// which .ci/qemu runs a test binary built for another architecture
// (GOARCH=s390x, arm64, or 386 on an amd64 kernel where the host runs no
// 32-bit programs) on a real Linux kernel: user-mode emulation
// mistranslates the socket options this module depends on (TCP_INFO), a
// full system does not.
//
// .ci/qemu-exec packs it as /init into an initramfs beside the test binary
// and boots a kernel on that. It mounts /proc, /sys, /dev and /tmp, brings
// up the loopback interface, runs /guest/test in /guest/pkg (where the
// package's testdata is copied) with the arguments and environment listed
// in /guest/args and /guest/env (NUL-separated), and RECONN_EMULATED=1
// (see internal/short), and copies its output to
// the console unchanged, between two lines that start with the contents of
// /guest/token: "TOKEN start" and "TOKEN exit STATUS", with the test
// binary's exit status, from which the host takes the result. Then it
// powers the machine off.
//
// It runs only on Linux, as PID 1; elsewhere it builds (so that the module
// builds and vets on every platform) and exits with status 2.
package main
