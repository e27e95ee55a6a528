package reconn_test

import (
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

// TestWatchHealsInBackground checks that in watch mode a message written
// into a connection whose peer had just closed is re-sent on a new
// connection without waiting for another Write.
func TestWatchHealsInBackground(t *testing.T) {
	srv := faultnet.NewServer(t)
	c := dial(t, watchDialer(), srv.Addr())
	ctx := testContext(t)
	if err := srv.WaitConns(ctx, 1); err != nil {
		t.Fatal(err)
	}
	srv.FIN()
	if err := srv.WaitEvent(ctx, faultnet.EventFIN, 1); err != nil {
		t.Fatal(err)
	}
	// The Write may beat the watcher's event into the dead socket; either
	// way the message must reach the server without another Write.
	send(t, c, nil, 0, 64)
	if err := srv.WaitReceived(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Redials != 1 {
		t.Errorf("Stats().Redials = %d; want 1", s.Redials)
	}
}
