package vsfluentlogger

import (
	"testing"

	"go.uber.org/goleak"
)

// benchTag is the tag of every record the benchmark sends.
const benchTag = "app.bench"

// TestMain checks that no goroutine outlives the benchmarks: not the
// fake server's, not the proxy's, not either client's. fluent-logger-golang
// without Async starts none, so no ignore is needed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
