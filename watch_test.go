package reconn_test

import (
	"errors"
	"os"
	"testing"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
)

// watchDialer is testDialer in CheckWatch mode.
func watchDialer() *reconn.Dialer {
	d := testDialer()
	d.Check = reconn.CheckWatch
	return d
}

// TestWatchHealsInBackground checks that in watch mode a message the
// peer's kernel never acknowledged is re-sent on a new connection as soon
// as the kernel reports the reset, with no Write or Close to do it.
func TestWatchHealsInBackground(t *testing.T) {
	srv := newPrivateServer(t)
	d := watchDialer()
	redialed := make(chan reconn.RedialEvent, 1)
	d.OnRedial = func(ev reconn.RedialEvent) { redialed <- ev }
	c := dialServer(t, d, srv)
	// The server's kernel stops acknowledging, so the message stays held.
	if err := srv.Blackhole(); err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, faultnet.ErrUnsupported) {
			t.Skipf("Blackhole: %v", err)
		}
		t.Fatal(err)
	}
	send(t, c, nil, 0, 64)
	srv.RST()
	ctx := testContext(t)
	select {
	case ev := <-redialed:
		if ev.Replayed != 1 {
			t.Errorf("RedialEvent.Replayed = %d; want 1", ev.Replayed)
		}
	case <-ctx.Done():
		t.Fatal("no redial without a Write")
	}
	if err := srv.WaitReceived(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Redials != 1 || s.ResentMessages != 1 {
		t.Errorf("Stats() = %+v; want 1 redial, 1 message re-sent", s)
	}
}
