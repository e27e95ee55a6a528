package faultnet_test

import (
	"testing"

	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/testns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	testns.Enter()
	// These examples print what a Read returns after a reset.
	platformtest.LeaveOut("^ExampleServer_(RST|Restart)$", platformtest.ResetReadsAsEOF())
	goleak.VerifyTestMain(m, platformtest.LeakOptions()...)
}
