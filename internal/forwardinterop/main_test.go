package forwardinterop

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests. The
// Collector needs no ignore: none of the packages linked here (the
// receiver, the collector's component, consumer, pdata and receiver
// modules, otel, zap, grpc) starts a goroutine of its own at init, and
// every goroutine the receiver starts (its accept loop, one per
// connection, the collector loop, the UDP heartbeat responder and the
// goroutine that closes its socket) ends after Shutdown: Shutdown closes
// the listener and the connections and cancels the context they select
// on. It does not wait for them, so they end a moment later, which
// goleak's retries wait for. A receiver left running is reported (its
// collector.processEvents, its heartbeat goroutines).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
