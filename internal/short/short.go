// Package short holds the one rule by which -short skips a test, for every
// package of this module, so that emulated or slow machines can run all
// the others (docs/testing.md, "Other architectures"), and the one rule
// for what changes when the CPU or the system calls are emulated.
//
// A test is heavy when what it costs is volume or time by design, not the
// path it checks: a measurement (allocations, memory, a comparison table),
// a soak (the chaos test), a build of other programs, a stream through a
// real server restarted in the middle, or a stream of more than 100,000
// messages in all. A heavy test calls Skip first. Every other test runs
// under -short, however long it takes on a slow machine: those that check
// a path once (the watch, each check, the acknowledged count, replay, the
// bounds of every call) are never heavy.
//
// Under emulation (Emulated: the environment has RECONN_EMULATED=1, which
// .ci/qemu's guest sets for the test binary, or the Windows build runs
// under Wine, where every socket call goes through Wine's server) two
// things change, and no others. A limit that is there only to bound a
// wait for work that is expected to finish (a flush limit before Close
// gives up, a test's context) is multiplied by Factor, through Limit. A
// test whose subject is a wall-clock bound shorter than MinBound, less
// than an emulated CPU needs for one loopback dial, skips, through
// SkipBound. What a test asserts about values (bytes, counts, which errors
// are wrapped, which bound a call kept) is the same everywhere.
package short

import (
	"os"
	"testing"
	"time"

	"github.com/reconn/reconn/internal/platformtest"
)

// Skip skips t under -short, saying what makes it heavy.
func Skip(t testing.TB, heavy string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("heavy: %s; skipped with -short", heavy)
	}
}

// Emulated reports whether the tests run on an emulated CPU, or with
// emulated system calls (Wine).
var Emulated = os.Getenv("RECONN_EMULATED") == "1" || platformtest.UnderWine()

// Factor multiplies a limit that only bounds a wait, under emulation:
// TCG runs the code under test and its peer ten to fifty times slower
// than the host, which is itself often loaded; under Wine a RELP stream's
// Close took 30 times as long as natively.
const Factor = 10

// MinBound is the shortest wall-clock bound that a test may count on an
// emulated CPU to meet.
const MinBound = 10 * time.Millisecond

// Limit returns d, a limit that only bounds a wait, multiplied by Factor
// under emulation.
func Limit(d time.Duration) time.Duration {
	if Emulated {
		return d * Factor
	}
	return d
}

// SkipBound skips t under emulation when bound, the wall-clock bound that
// t is about, is shorter than MinBound.
func SkipBound(t testing.TB, bound time.Duration) {
	t.Helper()
	if Emulated && bound < MinBound {
		t.Skipf("tests a bound of %v, shorter than an emulated CPU can meet (%v); skipped under emulation", bound, MinBound)
	}
}
