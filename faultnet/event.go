package faultnet

import (
	"fmt"
	"time"
)

// EventKind says what an Event records.
type EventKind int

// The kinds of events in a trace. Events about a connection carry its ID;
// events about the listener carry connection ID 0.
const (
	eventNone EventKind = iota

	// EventAccepted records a connection accepted by the server.
	EventAccepted
	// EventPeerClosed records a connection read to EOF: the peer closed
	// its sending side. The server then closed the connection.
	EventPeerClosed
	// EventReadError records a connection ended by a read error other
	// than EOF, such as a reset sent by the peer. Event.Err holds it.
	EventReadError
	// EventFIN records a FIN fault.
	EventFIN
	// EventHalfClose records a HalfClose fault.
	EventHalfClose
	// EventRST records an RST fault.
	EventRST
	// EventRSTUnread records an RSTUnread fault.
	EventRSTUnread
	// EventBlackhole records a Blackhole fault.
	EventBlackhole
	// EventStall records a Stall fault.
	EventStall
	// EventPause records a Pause.
	EventPause
	// EventResume records a Resume.
	EventResume
	// EventLatency records a change of the processing latency.
	EventLatency
	// EventCutAfter records that a cut was armed by CutAfter.
	EventCutAfter
	// EventCut records a connection closed by an armed cut.
	EventCut
	// EventClose records a connection closed by Server.Close or
	// Proxy.Close.
	EventClose
	// EventRefused records the listener closed by Refuse or Restart.
	EventRefused
	// EventListening records the listener open again, after Accept or at
	// the end of a Restart. If listening failed, Event.Err says why.
	EventListening
	// EventRestart records the start of a Restart.
	EventRestart
	// EventDropSYN records the drop filter attached to the listener.
	EventDropSYN
	// EventAcceptSYN records the drop filter removed from the listener.
	EventAcceptSYN
)

var eventNames = [...]string{
	eventNone:       "open",
	EventAccepted:   "accepted",
	EventPeerClosed: "peer-closed",
	EventReadError:  "read-error",
	EventFIN:        "fin",
	EventHalfClose:  "half-close",
	EventRST:        "rst",
	EventRSTUnread:  "rst-unread",
	EventBlackhole:  "blackhole",
	EventStall:      "stall",
	EventPause:      "pause",
	EventResume:     "resume",
	EventLatency:    "latency",
	EventCutAfter:   "cut-after",
	EventCut:        "cut",
	EventClose:      "close",
	EventRefused:    "refused",
	EventListening:  "listening",
	EventRestart:    "restart",
	EventDropSYN:    "drop-syn",
	EventAcceptSYN:  "accept-syn",
}

// String returns a short lower-case name for k, such as "rst".
func (k EventKind) String() string {
	if k >= 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// An Event is one entry of a trace: a fault applied, or a change in the
// life of a connection or of the listener.
type Event struct {
	Time time.Time // when it happened
	Kind EventKind
	Conn int   // connection ID, or 0 for the listener
	Err  error // the error the event reports, if any
}

// String formats e as one line, for logs.
func (e Event) String() string {
	s := e.Time.Format("15:04:05.000000") + " " + e.Kind.String()
	if e.Conn != 0 {
		s += fmt.Sprintf(" conn=%d", e.Conn)
	}
	if e.Err != nil {
		s += " err=" + e.Err.Error()
	}
	return s
}
