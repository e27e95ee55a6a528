package syslog

import (
	"testing"

	"github.com/reconn/reconn/internal/testenv"
	"github.com/reconn/reconn/internal/testns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	testns.Enter()
	goleak.VerifyTestMain(m, testenv.LeakOptions()...)
}
