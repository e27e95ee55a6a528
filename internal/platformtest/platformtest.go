// Package platformtest tells tests what they need to know about the
// system they run on: how it reports a refused dial or a reset (Windows
// has error numbers of its own, which syscall.ECONNREFUSED and
// syscall.ECONNRESET do not match), and whether it has the socket
// facilities that a test's expectation rests on, so that the test can
// skip, saying why, where it has not: Windows before 10 1703, and Wine,
// lack SIO_TCP_INFO; and whether package net has a kernel behind it at
// all (js/wasm and wasip1 have an in-memory stand-in: NeedKernelSockets).
// Every probe asks the system once; on Linux and the other unix systems
// none of them skips. LeaveOut does for examples, in
// TestMain, what a skip does for a test, and TempDir works around a
// directory that Wine's os.RemoveAll cannot empty.
//
// The package is for tests only.
package platformtest

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// IsRefused reports whether err says that a dial was refused:
// ECONNREFUSED, or WSAECONNREFUSED on Windows.
func IsRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || refusedHere(err)
}

// IsReset reports whether err says that the peer reset the connection:
// ECONNRESET, or WSAECONNRESET on Windows.
func IsReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || resetHere(err)
}

// IsResetRead reports whether err is what a Read returns once the peer's
// reset has arrived: a reset, or io.EOF where ResetReadsAsEOF says that
// this system reports an arrived reset so.
func IsResetRead(err error) bool {
	return IsReset(err) || (err == io.EOF && ResetReadsAsEOF() != "")
}

// NeedTCPInfo skips t where SIO_TCP_INFO fails (see NoTCPInfo): there a
// Conn runs no check and counts no acknowledgements, so a test that
// expects a check to find a dead connection, or replay to re-send only
// what was not acknowledged, cannot pass.
func NeedTCPInfo(t testing.TB) {
	t.Helper()
	if why := NoTCPInfo(); why != "" {
		t.Skip(why)
	}
}

// NeedResetRead skips t where ResetReadsAsEOF says that a Read reports an
// arrived reset as io.EOF, for a test that tells a reset from a FIN by
// what a Read returns.
func NeedResetRead(t testing.TB) {
	t.Helper()
	if why := ResetReadsAsEOF(); why != "" {
		t.Skip(why)
	}
}

// LeaveOut keeps the tests and examples whose names match pattern from
// running, where why is not empty, and says so with why on standard
// error. It is for TestMain, before m.Run: an example cannot skip itself.
func LeaveOut(pattern, why string) {
	if why == "" {
		return
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	fmt.Fprintf(os.Stderr, "not run: %s: %s\n", pattern, why)
	if s := flag.Lookup("test.skip").Value.String(); s != "" {
		pattern = s + "|" + pattern
	}
	flag.Set("test.skip", pattern)
}

// TempDir is t.TempDir for a directory of files only, which it removes
// file by file after the test: under Wine, os.RemoveAll, and so the
// cleanup of t.TempDir, cannot delete what a directory holds.
func TempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			os.Remove(filepath.Join(dir, e.Name()))
		}
		os.Remove(dir)
	})
	return dir
}
