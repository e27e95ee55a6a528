//go:build !linux

package reconn_test

import "time"

// threadCPU returns 0: the benchmarks read a thread's CPU time on Linux
// only.
func threadCPU() time.Duration { return 0 }
