// Package syslogtest runs private syslog servers for tests: rsyslogd and
// syslog-ng on a loopback TCP port, each writing every message it parses
// as one line of a file, and restarts them in the middle of a stream.
//
// When a server stops, what its kernel acknowledged but it never read is
// lost to any TCP client. Server.Stop measures that set exactly: before
// the SIGTERM, it borrows each of the server's connections (pidfd_getfd),
// attaches a filter that drops every incoming packet, so the kernel
// acknowledges nothing more, and peeks at what waits unread. This needs
// Linux and root (CAP_NET_ADMIN and ptrace rights over the server).
//
// The package is for tests only; it builds on Linux only.
package syslogtest
