//go:build !unix && !windows

package sock

import "time"

// On js/wasm, wasip1 and plan9 there is no socket to ask: a probe learns
// nothing.

type sysProbe struct{}

func (p *Probe) sense(fd uintptr) {}

func setUserTimeout(fd uintptr, d time.Duration) error { return nil }
