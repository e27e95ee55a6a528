package relp

import (
	"testing"

	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/testns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	testns.Enter()
	goleak.VerifyTestMain(m, platformtest.LeakOptions()...)
}
