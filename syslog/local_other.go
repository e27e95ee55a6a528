//go:build !unix

package syslog

import (
	"errors"
	"net"
	"runtime"
)

// dialLocal fails: there is no local syslog daemon on this platform.
func dialLocal() (net.Conn, error) { return nil, errNoLocal }

var errNoLocal = errors.New("syslog: no local syslog daemon on " + runtime.GOOS)
