//go:build linux

package syslogtest

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reconn/reconn/faultnet"
)

// A Stream is a client's run against a Server that restarts.
type Stream struct {
	Total    int // messages, numbered 0 to Total-1
	Restarts int // restarts, at evenly spaced points of the stream

	// Rate, if positive, paces the writer at that many messages per
	// second; a writer held up (by a redial, say) goes on at the same
	// pace without catching up. Zero is full speed.
	Rate int

	// Drain stops the server only once it has read what its kernel
	// acknowledged, as a server that keeps up with the stream would
	// have: what the client wrote meanwhile is not acknowledged, and the
	// client must re-send it. What is still unread after 10 seconds
	// counts as unread.
	Drain bool

	// Write sends message seq; each message must carry "seq=<seq> "
	// (see faultnet.AppendMessage). Close ends the client once every
	// message is written; for a client that confirms delivery, it
	// returns once the server's kernel has them all.
	Write func(seq int) error
	Close func() error
}

// A Result is what a Stream lost and duplicated.
type Result struct {
	Sent     int
	Received int // distinct messages in the server's output
	// Lost were neither received nor left unread by the server when it
	// stopped: a client that redials and re-sends would have saved them.
	Lost int
	// Unread were not received, and were in the server's receive buffer,
	// acknowledged but unread, when it stopped: no TCP client could have
	// saved them. Under TLS, where they cannot be told apart, it is zero
	// and UnreadBytes says how much was left.
	Unread      int
	UnreadBytes int64
	Duplicated  int
	// Truncated counts copies the server wrote cut short, each a prefix
	// of a whole copy of the same message: the part of a message it had
	// read when a connection ended, which the client then re-sent whole.
	// They are not counted in Duplicated.
	Truncated   int
	WriteErrors int   // failed Writes
	CloseErr    error // what Close returned
	FirstLost   []int // up to 20 lost sequence numbers
	// DupRuns describes up to 20 runs of consecutive duplicated
	// messages, as "first-last×copies", or "seq×copies" for one.
	DupRuns []string
	Elapsed time.Duration
}

func (r Result) String() string {
	s := fmt.Sprintf("sent %d, received %d, lost %d, unread by the server %d (%d bytes), duplicated %d, truncated %d, write errors %d, close: %v, in %v",
		r.Sent, r.Received, r.Lost, r.Unread, r.UnreadBytes, r.Duplicated, r.Truncated, r.WriteErrors, r.CloseErr, r.Elapsed.Round(time.Millisecond))
	if len(r.DupRuns) > 0 {
		s += fmt.Sprintf(" (duplicated: %v)", r.DupRuns)
	}
	return s
}

// Run writes st.Total messages and restarts s each time the writer passes
// one of st.Restarts cut points. A restart runs on another goroutine, so
// the writer goes on meanwhile; only a writer that reaches a cut point
// before the restart of the point before is done waits for it, so that
// every restart begins in the middle of the stream. Once the client is
// closed, Run waits for the last message to reach the output (or for the
// output to stop growing), stops s, and counts each message in the
// output. It skips the test if the unread data cannot be measured (not
// root).
func (s *Server) Run(t testing.TB, st Stream) Result {
	t.Helper()
	s.mu.Lock()
	s.drain = st.Drain
	s.mu.Unlock()
	idle := make(chan struct{}, 1) // holds a token while no restart runs
	idle <- struct{}{}
	r := Result{Sent: st.Total}
	every := max(1, st.Total/(st.Restarts+1))
	start := time.Now()
	next := start
	var interval time.Duration
	if st.Rate > 0 {
		interval = time.Second / time.Duration(st.Rate)
	}
	for seq := range st.Total {
		if seq > 0 && seq%every == 0 && seq/every <= st.Restarts {
			<-idle
			go func() {
				s.Restart() // an error is in s.Err
				idle <- struct{}{}
			}()
		}
		if interval > 0 {
			next = next.Add(interval)
			if d := time.Until(next); d > time.Millisecond {
				time.Sleep(d)
			} else if d < -10*time.Millisecond {
				next = time.Now() // held up: no burst to catch up
			}
		}
		if err := st.Write(seq); err != nil {
			if r.WriteErrors == 0 {
				t.Logf("first write error, seq %d: %v", seq, err)
			}
			r.WriteErrors++
		}
	}
	<-idle
	r.CloseErr = st.Close()
	r.Elapsed = time.Since(start)
	s.WaitSeq(st.Total - 1)
	s.Stop()
	if err := s.Err(); errors.Is(err, syscall.EPERM) {
		t.Skipf("measuring what %s left unread needs CAP_NET_ADMIN and ptrace rights: %v", s.name, err)
	} else if err != nil {
		t.Fatal(err)
	}
	lines, err := s.Lines()
	if err != nil {
		t.Fatal(err)
	}
	copies := make(map[int][]string, st.Total)
	for _, l := range lines {
		if seq, ok := faultnet.ParseSeq([]byte(l)); ok {
			copies[seq] = append(copies[seq], l)
		}
	}
	got := make(map[int]int, len(copies))
	for seq, ls := range copies {
		cut := truncated(ls)
		got[seq] = len(ls) - cut
		r.Truncated += cut
	}
	unread, unreadBytes := s.Unread()
	r.UnreadBytes = unreadBytes
	for seq := range st.Total {
		switch n := got[seq]; {
		case n == 0 && unread[seq]:
			r.Unread++
		case n == 0:
			r.Lost++
			if len(r.FirstLost) < 20 {
				r.FirstLost = append(r.FirstLost, seq)
			}
		default:
			r.Received++
			r.Duplicated += n - 1
		}
	}
	r.DupRuns = dupRuns(got, st.Total, 20)
	return r
}

// truncated counts the lines among copies of one message that are a
// strict prefix of another: the part of a message a server had read when
// its connection ended, which it wrote as a message of its own.
func truncated(copies []string) int {
	n := 0
	for i, a := range copies {
		for j, b := range copies {
			if i != j && len(a) < len(b) && strings.HasPrefix(b, a) {
				n++
				break
			}
		}
	}
	return n
}

// dupRuns describes up to max runs of consecutive sequence numbers below
// total that got counts more than once.
func dupRuns(got map[int]int, total, max int) []string {
	var runs []string
	for seq := 0; seq < total && len(runs) < max; seq++ {
		if got[seq] < 2 {
			continue
		}
		first := seq
		for seq+1 < total && got[seq+1] > 1 {
			seq++
		}
		if first == seq {
			runs = append(runs, fmt.Sprintf("%d×%d", first, got[first]))
		} else {
			runs = append(runs, fmt.Sprintf("%d-%d×%d", first, seq, got[first]))
		}
	}
	return runs
}
