//go:build !unix || aix

package faultnet

import "syscall"

// drain reports ErrUnsupported: there is no portable non-blocking receive
// outside Unix (and x/sys has no MSG_DONTWAIT for AIX), so what the kernel
// holds at a close cannot be measured.
func drain(_ syscall.RawConn, dst []byte, _ int) ([]byte, error) {
	return dst, ErrUnsupported
}
