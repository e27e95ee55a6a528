package delayline

import (
	"testing"

	"github.com/reconn/reconn/internal/platformtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, platformtest.LeakOptions()...)
}
