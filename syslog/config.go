package syslog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/relp"
)

// Format selects the layout of each message.
type Format int

const (
	// RFC3164 is log/syslog's format, the default:
	// "<PRI>TIMESTAMP HOSTNAME TAG[PID]: MSG" with an RFC 3339 timestamp
	// to the second, which rsyslog and syslog-ng parse, and on unix
	// sockets "<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG" as RFC 3164 has it.
	RFC3164 Format = iota

	// RFC5424 is "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG"
	// as RFC 5424 has it: the version 1, an RFC 3339 timestamp to the
	// microsecond, the tag as APP-NAME, the process ID as PROCID,
	// Config.MsgID as MSGID, structured data ("-" but for a Handler's
	// records) and the message, sent as it is (MSG-ANY, without a byte
	// order mark). An empty field is the NILVALUE "-".
	RFC5424
)

// Framing selects how messages are delimited on a stream network. On
// datagram networks each message is one datagram, and only
// DefaultFraming and NewlineFraming are accepted.
type Framing int

const (
	// DefaultFraming is OctetCounting over TLS, as RFC 5425 requires,
	// and NewlineFraming otherwise.
	DefaultFraming Framing = iota

	// NewlineFraming ends each message with a newline (RFC 6587's
	// non-transparent framing with an LF trailer), as log/syslog does. A
	// newline inside a message is sent as "#012" (see the package
	// documentation).
	NewlineFraming

	// OctetCounting sends each message as its length in bytes, a space
	// and the message (RFC 6587, section 3.4.1), so a message may hold
	// newlines. A trailing newline, as log.Logger writes, is dropped.
	// rsyslog's imtcp and syslog-ng's syslog() source recognize it.
	OctetCounting
)

// Config holds what DialConfig takes beyond log/syslog's arguments. The
// zero value, like a nil *Config, gives log/syslog's behaviour on the
// wire.
type Config struct {
	// Format is the layout of each message. The zero value is RFC3164.
	Format Format

	// Framing delimits messages on stream networks. The zero value is
	// DefaultFraming.
	Framing Framing

	// Hostname is sent as HOSTNAME. It must be 1 to 255 printable
	// US-ASCII characters other than space. If empty, os.Hostname is used (with
	// characters the header cannot hold replaced by '_'), or if that
	// fails, as in log/syslog, "localhost" for the local syslog and the
	// connection's local address otherwise. The RFC3164 form for unix
	// sockets has no hostname.
	Hostname string

	// MsgID is sent as RFC 5424's MSGID with every message: 1 to 32
	// printable US-ASCII characters other than space. If empty, MSGID is "-". It must be
	// empty with RFC3164.
	MsgID string

	// Dialer makes and keeps up the connection on the stream networks
	// ("tcp", "tcp4", "tcp6", "unix"). Every field of reconn.Dialer
	// applies, and so will fields added to it later: today Dialer (a
	// net.Dialer or a proxy), TLSConfig (syslog over TLS, RFC 5425),
	// Check, UserTimeout, KeepAlive, RedialTimeout, MinBackoff and
	// MaxBackoff, ReplayBuffer, FlushTimeout, OnRedial, Async (Write
	// returns once the message is buffered), FailWhenFull and OnFull,
	// Fallbacks, FailbackInterval, ConnMaxLifetime and HandoffTimeout. If
	// nil, a zero reconn.Dialer is used. It must be nil on other networks,
	// and with RELP.
	Dialer *reconn.Dialer

	// RELP, if not nil, sends each message as a RELP command (package
	// relp) on "tcp", "tcp4" or "tcp6", to an rsyslogd with imrelp, say:
	// the server application answers every message, and what it had not
	// answered when it went away is sent again, so that even what a dying
	// server never read is not lost. Its embedded reconn.Dialer carries
	// the connection options in place of Dialer. RELP frames each
	// message itself: Framing must be DefaultFraming.
	RELP *relp.Dialer
}

// DialConfig is Dial with the options in cfg; a nil cfg gives Dial. A tag
// or Config field that the format cannot carry fails DialConfig with an
// error naming it.
//
// With RFC5424, tag is the APP-NAME: 1 to 48 printable US-ASCII
// characters. If it is empty, the base name of os.Args[0] is used, with
// characters the field cannot hold replaced by '_' and cut to 48.
func DialConfig(network, raddr string, priority Priority, tag string, cfg *Config) (*Writer, error) {
	if priority < 0 || priority > LOG_LOCAL7|LOG_DEBUG {
		return nil, errPriority
	}
	if cfg == nil {
		cfg = new(Config)
	}
	w := &Writer{priority: priority, network: network, raddr: raddr}
	if err := w.configure(cfg, tag); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c, err := w.connect()
	if err != nil {
		return nil, err
	}
	if cfg.Hostname == "" {
		w.f.hostname = sanitize(defaultHostname(network, c), maxHostname, printASCII)
	}
	return w, nil
}

// Limits of RFC 5424's header fields; HOSTNAME's applies to RFC 3164 too.
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
	maxSDName   = 32
)

// configure checks cfg and tag and fixes w's format and transport.
func (w *Writer) configure(cfg *Config, tag string) error {
	f := &w.f
	f.format = cfg.Format
	f.procid = strconv.Itoa(os.Getpid())
	if len(f.procid) > maxProcID {
		f.procid = f.procid[:maxProcID]
	}
	f.msgid = "-"
	switch w.network {
	case "tcp", "tcp4", "tcp6", "unix":
		w.stream = true
		w.dialer = cfg.Dialer
		if w.dialer == nil {
			w.dialer = new(reconn.Dialer)
		}
		if cfg.RELP != nil {
			if w.network == "unix" {
				return errors.New(`syslog: Config.RELP is set, which needs network "tcp", "tcp4" or "tcp6", not "unix"`)
			}
			if cfg.Dialer != nil {
				return errors.New("syslog: Config.RELP and Config.Dialer are both set; RELP's embedded reconn.Dialer takes the options")
			}
			if cfg.Framing != DefaultFraming {
				return errors.New("syslog: Config.RELP is set, and RELP frames each message itself: Config.Framing must be DefaultFraming")
			}
			w.relp = cfg.RELP
			w.dialer = &cfg.RELP.Dialer
		}
	case "":
		if w.raddr != "" {
			return errors.New("syslog: an address without a network; the local syslog takes neither")
		}
	}
	if (cfg.Dialer != nil || cfg.RELP != nil) && !w.stream {
		return fmt.Errorf("syslog: Config.Dialer or Config.RELP is set, but network %q does not go through reconn", w.network)
	}

	switch cfg.Framing {
	case DefaultFraming:
		f.framing = frameNewline
		if w.stream && w.dialer.TLSConfig != nil && w.relp == nil {
			f.framing = frameOctets
		}
	case NewlineFraming:
		f.framing = frameNewline
	case OctetCounting:
		if !w.stream {
			return fmt.Errorf("syslog: Config.Framing is OctetCounting, which needs a stream network, not %q", w.network)
		}
		f.framing = frameOctets
	default:
		return fmt.Errorf("syslog: Config.Framing is %d, not one of the Framing constants", cfg.Framing)
	}
	if !w.stream {
		f.framing = frameDatagram
	}

	if cfg.Hostname != "" {
		if err := checkField("Config.Hostname", cfg.Hostname, maxHostname, printASCII); err != nil {
			return err
		}
		f.hostname = cfg.Hostname
	}
	switch cfg.Format {
	case RFC3164:
		if cfg.MsgID != "" {
			return errors.New("syslog: Config.MsgID is set, but the RFC3164 format has no MSGID")
		}
		// log/syslog's short form for unix sockets.
		f.short = w.network == "" || w.network == "unix" || w.network == "unixgram"
		if tag == "" {
			tag = defaultTag(RFC3164, os.Args[0])
		} else if err := checkField("tag", tag, 0, tagChar); err != nil {
			return err
		}
	case RFC5424:
		if cfg.MsgID != "" {
			if err := checkField("Config.MsgID", cfg.MsgID, maxMsgID, printASCII); err != nil {
				return err
			}
			f.msgid = cfg.MsgID
		}
		if tag == "" {
			tag = defaultTag(RFC5424, os.Args[0])
		} else if err := checkField("tag (APP-NAME)", tag, maxAppName, printASCII); err != nil {
			return err
		}
	default:
		return fmt.Errorf("syslog: Config.Format is %d, not RFC3164 or RFC5424", cfg.Format)
	}
	f.tag = tag
	return nil
}

// defaultTag is the tag made of arg0, os.Args[0], for an empty tag: all
// of it in RFC 3164, as log/syslog, or its base name as APP-NAME; in
// either case with what the field cannot hold replaced by '_'.
func defaultTag(format Format, arg0 string) string {
	if format == RFC5424 {
		return sanitize(filepath.Base(arg0), maxAppName, printASCII)
	}
	return sanitize(arg0, 0, tagChar)
}

// printASCII reports whether c is printable US-ASCII other than space,
// which RFC 5424 allows in its header fields.
func printASCII(c byte) bool { return '!' <= c && c <= '~' }

// tagChar reports whether c may be in an RFC 3164 tag: printable
// US-ASCII, but not ':', '[' or ']', which end the tag.
func tagChar(c byte) bool { return printASCII(c) && c != ':' && c != '[' && c != ']' }

// sdNameChar reports whether c may be in an SD-NAME (RFC 5424).
func sdNameChar(c byte) bool { return printASCII(c) && c != '=' && c != ']' && c != '"' }

// checkField reports an error if s is empty, longer than max bytes (if
// max is positive) or holds a byte that ok refuses.
func checkField(name, s string, max int, ok func(byte) bool) error {
	if s == "" {
		return fmt.Errorf("syslog: %s is empty", name)
	}
	if max > 0 && len(s) > max {
		return fmt.Errorf("syslog: %s %q is longer than %d bytes", name, s, max)
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return fmt.Errorf("syslog: %s %q holds %q at byte %d, which the header cannot carry", name, s, s[i], i)
		}
	}
	return nil
}

// sanitize returns s with every byte that ok refuses replaced by '_', cut
// to max bytes if max is positive; "-" if s is empty.
func sanitize(s string, max int, ok func(byte) bool) string {
	if s == "" {
		return "-"
	}
	if max > 0 && len(s) > max {
		s = s[:max]
	}
	b := []byte(s)
	for i, c := range b {
		if !ok(c) {
			b[i] = '_'
		}
	}
	return string(b)
}
