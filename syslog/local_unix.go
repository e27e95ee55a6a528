//go:build unix

package syslog

import (
	"errors"
	"net"
)

// dialLocal connects to the local syslog daemon as log/syslog does: a
// datagram socket, then a stream socket, at each usual path.
func dialLocal() (net.Conn, error) {
	for _, network := range []string{"unixgram", "unix"} {
		for _, path := range []string{"/dev/log", "/var/run/syslog", "/var/run/log"} {
			if c, err := net.Dial(network, path); err == nil {
				return c, nil
			}
		}
	}
	return nil, errNoLocal
}

var errNoLocal = errors.New("syslog: no local syslog daemon at /dev/log, /var/run/syslog or /var/run/log")
