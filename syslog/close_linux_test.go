//go:build linux

package syslog

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
)

// TestCloseUnconfirmed checks that Close reports, as a *net.OpError
// wrapping a *reconn.UnconfirmedError, the messages a server that stopped
// acknowledging never confirmed, and that Flush does the same within its
// context.
func TestCloseUnconfirmed(t *testing.T) {
	srv := faultnet.NewServer(t)
	w, err := DialConfig("tcp", srv.Addr().String(), LOG_INFO, "t", &Config{
		Dialer: &reconn.Dialer{FlushTimeout: 300 * time.Millisecond, UserTimeout: time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitConns(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.Blackhole(); errors.Is(err, syscall.EPERM) {
		w.Close()
		t.Skipf("a blackhole needs CAP_NET_ADMIN: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := w.Info("into the void"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var ue *reconn.UnconfirmedError
	if err := w.Flush(ctx); !errors.As(err, &ue) {
		t.Errorf("Flush = %v; want a *reconn.UnconfirmedError", err)
	}
	err = w.Close()
	var oe *net.OpError
	if !errors.As(err, &oe) || !errors.As(err, &ue) {
		t.Fatalf("Close = %v; want a *net.OpError wrapping a *reconn.UnconfirmedError", err)
	}
	if ue.Messages != 3 {
		t.Errorf("Close: %d messages unconfirmed; want 3", ue.Messages)
	}
}
