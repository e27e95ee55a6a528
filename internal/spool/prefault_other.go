//go:build !linux

package spool

// prefault does nothing: only Linux faults in pages of a mapping for
// writing on request.
func prefault(b []byte) {}
