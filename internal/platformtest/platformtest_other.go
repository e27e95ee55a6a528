//go:build !windows

package platformtest

// refusedHere and resetHere match the system's own numbers for a refused
// dial and a reset where they differ from the syscall constants: only on
// Windows.
func refusedHere(err error) bool { return false }
func resetHere(err error) bool   { return false }

// NoTCPInfo returns "": only Windows has SIO_TCP_INFO to lack.
func NoTCPInfo() string { return "" }

// NoUnixSockets returns "": unix systems have unix sockets.
func NoUnixSockets() string { return "" }

// ResetReadsAsEOF returns "": unix systems report a reset to a Read as
// ECONNRESET.
func ResetReadsAsEOF() string { return "" }

// UnderWine reports false: Wine runs Windows programs only.
func UnderWine() bool { return false }
