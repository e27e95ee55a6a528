package faultnet_test

import (
	"testing"

	"github.com/reconn/reconn/internal/testenv"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testenv.LeakOptions()...)
}
