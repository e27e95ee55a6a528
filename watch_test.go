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

// TestWatchFindsClose checks that in watch mode a FIN or reset between
// messages is found without a check on every Write: Checks counts only the
// classifications run after an event.
func TestWatchFindsClose(t *testing.T) {
	for _, fault := range []struct {
		name string
		f    func(*faultnet.Server)
	}{{"FIN", (*faultnet.Server).FIN}, {"RST", (*faultnet.Server).RST}} {
		t.Run(fault.name, func(t *testing.T) {
			srv := faultnet.NewServer(t)
			c := dial(t, watchDialer(), srv.Addr())
			ctx := testContext(t)
			const total, every = 1000, 100
			var buf []byte
			for seq := 0; seq < total; seq++ {
				buf = send(t, c, buf, seq, 100)
				if seq%every == every/2 {
					if err := srv.WaitReceived(ctx, seq+1); err != nil {
						t.Fatal(err)
					}
					fault.f(srv)
				}
			}
			finish(t, c, srv)
			r := srv.Report(total)
			if r.Lost != 0 || r.Duplicated != 0 {
				t.Errorf("lost %d, duplicated %d; want 0, 0\n%v", r.Lost, r.Duplicated, r)
			}
			s := c.Stats()
			if s.Redials != total/every {
				t.Errorf("Stats().Redials = %d; want %d", s.Redials, total/every)
			}
			if s.Checks > 3*total/every {
				t.Errorf("Stats().Checks = %d for %d Writes; want only checks after events", s.Checks, total)
			}
			t.Logf("%+v", s)
		})
	}
}

// TestWatchMidStream resets the server in the middle of a full-speed stream
// in watch mode, and many watched Conns share the watcher.
func TestWatchMidStream(t *testing.T) {
	const total, size = 20000, 100
	for _, cut := range cutPoints(total, 6) {
		srv := faultnet.NewServer(t)
		c := dial(t, watchDialer(), srv.Addr())
		r := stream(t, c, srv, total, size, cut, srv.RST)
		exactOrSkip(t, r)
		if r.ClientLost != 0 {
			t.Errorf("cut %d: %d messages lost outside the unread set\n%v", cut, r.ClientLost, r)
		}
	}
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
