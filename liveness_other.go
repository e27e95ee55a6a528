//go:build !unix && !windows

package reconn

// On js/wasm, wasip1 and plan9 there is no socket to ask: no check runs
// and there is no acknowledgement count. A failed write still redials.

// platformCheck is the check before each Write: none.
func platformCheck() CheckMode { return CheckNone }
