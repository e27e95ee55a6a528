package platformtest

// js/wasm and wasip1: no kernel behind package net.

import (
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

// KernelSockets reports whether package net's sockets are the kernel's.
// On js/wasm and wasip1 they are not: net is an in-memory stand-in that
// carries bytes, in order, between a program's own listeners and
// connections. A writer meets a peer's close or reset only once the
// peer's queue is full, no check can see a FIN, a refusal is a message
// without ECONNREFUSED, nothing counts acknowledgements, nothing is
// dropped silently, a Dialer's Control hook is not supported, and no
// other process is reached.
const KernelSockets = runtime.GOOS != "js" && runtime.GOOS != "wasip1"

// NeedKernelSockets skips t where there are no kernel sockets. subject
// says what the test observes that only a kernel provides ("a reset",
// "the send buffer filling up", ...).
func NeedKernelSockets(t testing.TB, subject string) {
	t.Helper()
	if !KernelSockets {
		t.Skipf("tests %s, which %s/%s's in-memory network does not have", subject, runtime.GOOS, runtime.GOARCH)
	}
}

// ServerReset is the subject of the tests that reset the server's end
// and count on the client's next write to meet it.
const ServerReset = "a reset from the server, which a client's write meets"

// LeakOptions are the options for goleak that ignore the goroutines of
// the runtime itself. On js, each time the JavaScript event loop wakes the
// program (a timer that fired while every goroutine slept), the runtime
// runs runtime.handleEvent on a goroutine of its own, which parks until
// every other goroutine is idle again and only then returns to
// JavaScript (src/runtime/lock_js.go); a leak check that runs after such
// a wake-up sees it, parked in runtime.gopark, though nothing of the code
// under test is.
func LeakOptions() []goleak.Option {
	if runtime.GOOS == "js" {
		return []goleak.Option{goleak.IgnoreAnyFunction("runtime.handleEvent")}
	}
	return nil
}
