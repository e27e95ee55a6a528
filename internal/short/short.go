// Package short holds the one rule by which -short skips a test, for every
// package of this module, so that emulated or slow machines can run all
// the others (README.md, "Other architectures").
//
// A test is heavy when what it costs is volume or time by design, not the
// path it checks: a measurement (allocations, memory, a comparison table),
// a soak (the chaos test), a build of other programs, a stream through a
// real server restarted in the middle, or a stream of more than 100,000
// messages in all. A heavy test calls Skip first. Every other test runs
// under -short, however long it takes on a slow machine: those that check
// a path once (the watch, each check, the acknowledged count, replay, the
// bounds of every call) are never heavy.
package short

import "testing"

// Skip skips t under -short, saying what makes it heavy.
func Skip(t testing.TB, heavy string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("heavy: %s; skipped with -short", heavy)
	}
}
