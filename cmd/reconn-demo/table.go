package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// printTable writes the rows and a legend.
func printTable(w io.Writer, o options, rows []row, total time.Duration) {
	exact := true
	blackhole, kill, collector := false, false, false
	for _, r := range rows {
		// The collector counts what its sockets held at the crash
		// itself, without freezing them: see its legend.
		exact = exact && (r.r.Exact || r.fault == "collector")
		blackhole = blackhole || r.fault == "blackhole"
		kill = kill || r.fault == "kill"
		collector = collector || r.fault == "collector"
	}
	unavoid := "unavoidable"
	if !exact {
		unavoid += "*"
	}
	pace := "full speed"
	if o.rate > 0 {
		pace = fmt.Sprintf("%d messages/s", o.rate)
	}
	fmt.Fprintf(w, "%d messages of %d bytes per run, %s, fault after the server read %d:\n\n", o.n, o.size, pace, o.n/3)
	const format = "%-10s %-13s %7v %9v %7v %12v %11v %8v %13v %7v\n"
	fmt.Fprintf(w, format, "fault", "client", "sent", "received", "lost", unavoid, "duplicated", "redials", "write errors", "time")
	fmt.Fprintln(w, strings.Repeat("-", 107))
	prev := ""
	var notes []string
	for _, r := range rows {
		if prev != "" && r.fault != prev {
			fmt.Fprintln(w)
		}
		prev = r.fault
		fmt.Fprintf(w, format, r.fault, r.client, r.r.Sent, r.r.Received, r.r.Lost, r.r.Unavoidable,
			r.r.Duplicated, r.redials, r.errs, r.took.Round(10*time.Millisecond))
		if r.note != "" {
			notes = append(notes, r.note)
		}
		if r.client == "reconn" && r.r.Lost != r.r.Unavoidable {
			notes = append(notes, fmt.Sprintf("%s/reconn: lost %d but only %d unavoidable: %d lost by the client, first seqs %v",
				r.fault, r.r.Lost, r.r.Unavoidable, r.r.ClientLost, firstSeqs(r.r.LostSeqs, 10)))
		}
	}
	fmt.Fprintf(w, "\ntotal time %v\n\n", total.Round(10*time.Millisecond))
	fmt.Fprintln(w, "unavoidable: lost messages that the server's kernel had acknowledged but the server never read")
	fmt.Fprintln(w, "  before it closed; no TCP client can save those without acknowledgements from the application")
	fmt.Fprintln(w, "  (RELP or similar). lost - unavoidable is what the client lost itself: for reconn, lost should equal unavoidable.")
	if kill {
		fmt.Fprintln(w, "kill: the writer process is killed during the outage; a second one starts on the same spool.")
		fmt.Fprintln(w, "  duplicated are messages that had reached the server but that the killed writer had not yet")
		fmt.Fprintln(w, "  recorded as confirmed (it does so every 10 ms, and as soon as it finds a connection dead).")
	}
	if collector {
		fmt.Fprintln(w, "collector: the Forward collector counts a record when it has decoded it, and acknowledges a request")
		fmt.Fprintln(w, "  that asks once it has; at the crash, unavoidable are the records that its sockets held unread.")
		fmt.Fprintln(w, "  fluent-style asks for no acks: whatever its kernel took is gone for it, and records written")
		fmt.Fprintln(w, "  while the collector is down fail. forward re-sends every")
		fmt.Fprintln(w, "  request not acknowledged, so it loses none; duplicated are requests whose acks the crash lost.")
	}
	if blackhole {
		fmt.Fprintln(w, "plain+retry uses a 1 s write deadline so that it gets past a blackhole; the reconn clients use UserTimeout 1s.")
	}
	if !exact {
		fmt.Fprintln(w, "* approximate: the server's socket could not be frozen before a reset (needs root or CAP_NET_ADMIN),")
		fmt.Fprintln(w, "  so messages that arrived during the reset may be counted as lost by the client.")
	}
	for _, n := range notes {
		fmt.Fprintln(w, "note:", n)
	}
}

func firstSeqs(s []int, n int) []int {
	if len(s) > n {
		return s[:n]
	}
	return s
}
