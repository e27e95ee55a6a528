//go:build !unix && !windows

package reconn

import "time"

// On js/wasm, wasip1 and plan9 there is no socket to ask: no check runs and
// there is no acknowledgement count. A failed write still redials.

const platformCheck = CheckNone

type sysProbe struct{}

func (p *probe) sense(fd uintptr) {}

func setUserTimeout(fd uintptr, d time.Duration) error { return nil }
