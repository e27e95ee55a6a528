package forward

import (
	"errors"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reconn/reconn"
)

// TestSharedKey: the handshake against a server that holds a key, and
// wants users in some cases. The right key (and user) delivers; a wrong
// one fails Dial with ErrAuthFailed and the server's reason; a server
// that accepts the client without proving it holds the key fails Dial
// too.
func TestSharedKey(t *testing.T) {
	users := map[string]string{"alice": "s3cret"}
	for _, tc := range []struct {
		name    string
		server  fakeOptions
		key     string
		user    string
		pass    string
		wantErr string // "" for success
	}{
		{"right key", fakeOptions{sharedKey: "k3y"}, "k3y", "", "", ""},
		{"right user", fakeOptions{sharedKey: "k3y", users: users}, "k3y", "alice", "s3cret", ""},
		{"wrong key", fakeOptions{sharedKey: "k3y"}, "other", "", "", `"shared_key mismatch"`},
		{"wrong password", fakeOptions{sharedKey: "k3y", users: users}, "k3y", "alice", "guess", `"username/password mismatch"`},
		{"no user", fakeOptions{sharedKey: "k3y", users: users}, "k3y", "", "", `"username/password mismatch"`},
		{"server without the key", fakeOptions{sharedKey: "k3y", badProof: true}, "k3y", "", "", "does not prove"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeServer(t, "message", tc.server)
			d := &Dialer{SharedKey: tc.key, Username: tc.user, Password: tc.pass, Hostname: "client.test"}
			c, err := d.Dial("tcp", s.addr)
			if tc.wantErr != "" {
				if c != nil || !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Dial = %v, %v; want no Conn and ErrAuthFailed with %s", c, err, tc.wantErr)
				}
				t.Logf("Dial: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			writeAndClose(t, c, 500)
			s.checkRecords(t, 500, true)
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.refused) != 0 {
				t.Errorf("the server refused %v", s.refused)
			}
		})
	}
}

// TestSharedKeyServerDown: with a SharedKey and no server, Dial does not
// fail: the Conn holds what is written, as without a key, and Close ends
// at its bound, counting it.
func TestSharedKeyServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	d := &Dialer{SharedKey: "k3y", Dialer: reconn.Dialer{FlushTimeout: 100 * time.Millisecond}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("Dial = %v; want a Conn that keeps dialing", err)
	}
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	var ue *reconn.UnconfirmedError
	if err := c.Close(); !errors.As(err, &ue) || ue.Messages != 1 {
		t.Fatalf("Close = %v; want 1 record unconfirmed", err)
	}
}

// TestHandshakeNeeded: a server that asks for the handshake, and a client
// without a SharedKey: the Conn says so in LastError, delivers nothing,
// and Close ends at its bound.
func TestHandshakeNeeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPipeServer(t, "message", fakeOptions{sharedKey: "k3y"})
		d := &Dialer{Dialer: reconn.Dialer{Dialer: s, FlushTimeout: 3 * time.Second}}
		c, err := d.Dial("tcp", "127.0.0.1:1") // served by the pipe server
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("r")); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var ue *reconn.UnconfirmedError
		if err := c.Close(); !errors.As(err, &ue) || ue.Messages != 1 {
			t.Fatalf("Close = %v; want 1 record unconfirmed", err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("Close took %v; want its FlushTimeout, 3s", took)
		}
		if st := c.Stats(); !errors.Is(st.LastError, ErrAuthFailed) || !strings.Contains(st.LastError.Error(), "SharedKey") {
			t.Errorf("LastError = %v; want ErrAuthFailed naming SharedKey", st.LastError)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.got) != 0 {
			t.Errorf("%d records delivered without the handshake", len(s.got))
		}
	})
}

// TestHandshakeAnswers: HELO and PONG that are malformed fail the
// handshake with an error, never a panic.
func TestHandshakeAnswers(t *testing.T) {
	helo := func(opts ...[]byte) []byte {
		b := appendArrayHeader(nil, 2)
		b = appendStr(b, "HELO")
		b = appendMapHeader(b, len(opts)/2)
		for _, o := range opts {
			b = append(b, o...)
		}
		return b
	}
	str := func(s string) []byte { return appendStr(nil, s) }
	for _, tc := range []struct {
		name string
		b    []byte
		pong bool
	}{
		{"HELO without nonce", helo(str("auth"), str("")), false},
		{"HELO nonce not a string", helo(str("nonce"), []byte{0x01}), false},
		{"HELO options not a map", append(appendStr(appendArrayHeader(nil, 2), "HELO"), 0x01), false},
		{"HELO of three", append(appendStr(appendArrayHeader(nil, 3), "HELO"), 0x80, 0x01), false},
		{"not an array", str("HELO"), false},
		{"PONG result not a bool", append(appendStr(appendArrayHeader(nil, 5), "PONG"), 0x01, 0xa0, 0xa0, 0xa0), true},
		{"PONG digest not a string", append(appendStr(appendArrayHeader(nil, 5), "PONG"), 0xc3, 0xa0, 0xa0, 0x01), true},
		{"PONG of four", append(appendStr(appendArrayHeader(nil, 4), "PONG"), 0xc3, 0xa0, 0xa0), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.pong {
				_, _, err = parsePong(tc.b)
			} else {
				_, _, err = parseHelo(tc.b)
			}
			if !errors.Is(err, errMalformed) {
				t.Fatalf("err = %v; want errMalformed", err)
			}
		})
	}
}
