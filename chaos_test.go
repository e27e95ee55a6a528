package reconn_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconn/reconn"
	"github.com/reconn/reconn/faultnet"
	"github.com/reconn/reconn/internal/platformtest"
	"github.com/reconn/reconn/internal/short"
	"go.uber.org/goleak"
)

var chaosSeedFlag = flag.Uint64("seed", 0, "TestChaos: seed of the soak (default: $RECONN_CHAOS_SEED, else a fixed seed)")

const (
	// chaosMargin is how much later than its bound a Write, Flush or
	// Close is meant to return at worst: the summary counts the calls
	// past it. chaosLimit is how much later fails the test: on a shared
	// machine the scheduler alone can delay a goroutine past chaosMargin
	// (the stall probe sees only stalls of the whole process), while a
	// call that ignored its bound is late by a redial or more.
	chaosMargin = 100 * time.Millisecond
	chaosLimit  = time.Second

	chaosDefaultSeed  = 1
	chaosDefaultTime  = 18 * time.Second // chaos time by default: about 20 s in all
	chaosMinFaults    = 50               // faults that the default chaos time must apply
	chaosWriters      = 4
	chaosUserTimeout  = time.Second // so that a blackhole ends
	chaosFlushTimeout = 2 * time.Second
	chaosMinTimeout   = time.Millisecond // bounds of the random write deadlines and Flush timeouts
	chaosMaxTimeout   = 500 * time.Millisecond
	chaosRepairLimit  = 20 * time.Second // how long a writer tries to complete a cut message
	chaosHangLimit    = 2 * time.Minute  // a call or run this late is reported as hung
)

// TestChaos is a seeded soak. In each run, several writers share one Conn
// to a faultnet server while a fault goroutine breaks the server at random
// moments; when the run ends, its Conn is closed and the run is checked
// against the server's accounting and the contract of every call. Runs
// repeat until the chaos time is spent.
//
// The seed comes from -args -seed N, else from $RECONN_CHAOS_SEED, else it
// is chaosDefaultSeed; it decides every random choice, while the timing
// of goroutines varies from one execution to the next. $RECONN_CHAOS (a
// time.Duration) sets the chaos time, the sum of the runs' fault windows;
// closing and checking each run comes on top.
func TestChaos(t *testing.T) {
	platformtest.NeedTCPInfo(t)
	short.Skip(t, "a soak")
	platformtest.NeedKernelSockets(t, "resets, silent drops and the kernel's acknowledgement count")
	seed, from := chaosSeed(t)
	budget, custom := chaosBudget(t)
	minFaults := chaosMinFaults
	if custom {
		minFaults = int(int64(chaosMinFaults) * int64(budget) / int64(chaosDefaultTime))
	}
	t.Logf("seed %d (%s), chaos time %v, margin %v; rerun: go test -race -run 'TestChaos$' -v . -args -seed %d",
		seed, from, budget, chaosMargin, seed)

	// On a starved machine faults come slower: runs then go on past the
	// chaos time, up to twice it, until enough faults took effect.
	tot := newChaosTotals()
	start := time.Now()
	var spent time.Duration
	for n := 1; spent < budget || tot.faultsApplied() < minFaults && spent < 2*budget; n++ {
		rng := rand.New(rand.NewPCG(seed, uint64(n)<<8))
		window := time.Duration(1500+rng.IntN(2500)) * time.Millisecond
		if spent < budget {
			window = min(window, budget-spent)
		}
		window = max(window, 500*time.Millisecond)
		spent += window
		runChaos(t, seed, n, rng, window, tot)
	}
	tot.log(t, seed, time.Since(start), spent)
	if applied := tot.faultsApplied(); applied < minFaults {
		t.Errorf("seed %d: %d faults applied in %v of chaos; want at least %d", seed, applied, spent, minFaults)
	}
}

// chaosSeed returns the seed and where it came from.
func chaosSeed(t *testing.T) (uint64, string) {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "seed" })
	if set {
		return *chaosSeedFlag, "-seed"
	}
	if s := os.Getenv("RECONN_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("RECONN_CHAOS_SEED=%q: %v", s, err)
		}
		return v, "RECONN_CHAOS_SEED"
	}
	return chaosDefaultSeed, "default"
}

// chaosBudget returns the chaos time and whether $RECONN_CHAOS set it.
func chaosBudget(t *testing.T) (time.Duration, bool) {
	s := os.Getenv("RECONN_CHAOS")
	if s == "" {
		return chaosDefaultTime, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("RECONN_CHAOS=%q: want a positive duration such as 10m", s)
	}
	return d, true
}

// replayUsage returns the bytes held in c's replay buffer, with the 16
// bytes of bookkeeping per message that the bound counts.
func replayUsage(c *reconn.Conn) (bytes int64, ok bool) {
	s := c.Stats()
	return s.PendingBytes + 16*s.Pending, true
}

// drawTimeout draws a write deadline or Flush timeout between
// chaosMinTimeout and chaosMaxTimeout, uniformly on a log scale, so that
// short and long ones are both common.
func drawTimeout(rng *rand.Rand) time.Duration {
	lo, hi := math.Log(float64(chaosMinTimeout)), math.Log(float64(chaosMaxTimeout))
	return time.Duration(math.Exp(lo + rng.Float64()*(hi-lo)))
}

// drawMillis draws a duration between lo and hi milliseconds.
func drawMillis(rng *rand.Rand, lo, hi int) time.Duration {
	return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Millisecond
}

// resumeToken appends to dst what must precede a message when a Write of
// it was cut (a timeout after part of it went) and it is written again.
//
// A cut Write counts as written, so the stream holds pending, the bytes of
// the message written so far, and the next Write continues the same
// frame: under Newline framing the server sees pending followed by that
// Write as one frame, and faultnet.ParseSeq takes the first "seq=" that a
// digit follows. If pending ends inside the digits of the sequence number
// ("seq=1" of "seq=12"), writing the message again whole would make that
// frame read as sequence number 1. The rest of the digits and a space go
// first, then the message whole: the merged frame reads "seq=12 seq=12
// ...", and should the new connection start after pending (the old peer
// acknowledged it, or died holding it), "2 seq=12 ..." alone still reads
// 12. In every other case pending merges harmlessly with the whole
// message and nothing is added.
func resumeToken(dst, pending []byte, seq int) []byte {
	digits := strconv.Itoa(seq)
	for i := 1; i < len(digits); i++ {
		if bytes.HasSuffix(pending, []byte("seq="+digits[:i])) {
			dst = append(dst, digits[i:]...)
			return append(dst, ' ')
		}
	}
	return dst
}

// TestChaosResumeFrame checks resumeToken's reasoning against
// faultnet.ParseSeq: wherever one or two Writes of a message are cut,
// the frame the server assembles reads the message's sequence number,
// and so does every tail of it that a new connection may carry alone.
func TestChaosResumeFrame(t *testing.T) {
	for _, seq := range []int{0, 7, 12, 100, 123, 98765} {
		msg := faultnet.AppendMessage(nil, faultnet.Newline, seq, 40)
		check := func(what string, writes ...[]byte) {
			t.Helper()
			for i := range writes {
				frame := bytes.Join(writes[i:], nil)
				if got, ok := faultnet.ParseSeq(frame); !ok || got != seq {
					t.Fatalf("seq %d, %s: frame %q reads %d, %t", seq, what, frame, got, ok)
				}
			}
		}
		for k := 1; k < len(msg); k++ {
			first := msg[:k]
			retry := append(resumeToken(nil, first, seq), msg...)
			check(fmt.Sprintf("cut at %d", k), first, retry)
			for j := 1; j < len(retry); j++ {
				pending := append(append([]byte(nil), first...), retry[:j]...)
				again := append(resumeToken(nil, pending, seq), msg...)
				check(fmt.Sprintf("cut at %d, then at %d", k, j), first, retry[:j], again)
			}
		}
	}
	// Without the token, a cut inside the digits misreads the frame.
	if got, _ := faultnet.ParseSeq([]byte("seq=1seq=12 ...\n")); got == 12 {
		t.Fatalf("ParseSeq reads a frame merged inside its digits as 12; resumeToken is not needed")
	}
}

// closeMode says how a run ends.
type closeMode int

const (
	closeDeadline     closeMode = iota // writers stopped, a short write deadline bounds Close
	closeFlushTimeout                  // writers stopped, no deadline: FlushTimeout bounds Close
	closeWhileWriting                  // Close while the writers go on, under their deadline
)

func (m closeMode) String() string {
	return [...]string{"deadline", "flush-timeout", "while-writing"}[m]
}

// chaosConfig is what a run draws before it starts.
type chaosConfig struct {
	check     reconn.CheckMode
	replay    int  // Dialer.ReplayBuffer; 0 is the default
	gentle    bool // no fault that resets or cuts a connection
	close     closeMode
	flushOdds int  // a writer flushes after one message in flushOdds
	async     bool // Dialer.Async
}

func drawChaosConfig(rng *rand.Rand) chaosConfig {
	cfg := chaosConfig{
		check:     []reconn.CheckMode{reconn.CheckDefault, reconn.CheckDefault, reconn.CheckState, reconn.CheckPeek}[rng.IntN(4)],
		replay:    []int{16 << 10, 64 << 10, 256 << 10, 0}[rng.IntN(4)],
		gentle:    rng.IntN(3) == 0,
		close:     closeMode(rng.IntN(3)),
		flushOdds: 300 + rng.IntN(2000),
	}
	cfg.async = rng.IntN(3) == 0
	return cfg
}

func (cfg chaosConfig) replayBound() int64 {
	if cfg.replay == 0 {
		return 4 << 20 // the documented default
	}
	return int64(cfg.replay)
}

func (cfg chaosConfig) String() string {
	profile := "full"
	if cfg.gentle {
		profile = "gentle"
	}
	replay := "default"
	if cfg.replay != 0 {
		replay = strconv.Itoa(cfg.replay>>10) + "KiB"
	}
	mode := "sync"
	if cfg.async {
		mode = "async"
	}
	return fmt.Sprintf("%s check=%v replay=%s faults=%s close=%v flush=1/%d", mode, cfg.check, replay, profile, cfg.close, cfg.flushOdds)
}

// drawSize draws a message size: mostly small, some of a few KiB and,
// where the replay buffer holds them easily, a few of tens of KiB, so
// that deadlines cut some messages in the middle.
func drawSize(rng *rand.Rand, replay int64) int {
	switch x := rng.IntN(400); {
	case x == 0 && replay >= 256<<10:
		return 16<<10 + rng.IntN(48<<10)
	case x < 20:
		return 2000 + rng.IntN(6000)
	case x < 100:
		return 200 + rng.IntN(1800)
	}
	return 30 + rng.IntN(170)
}

// The kinds of faults.
type faultKind int

const (
	faultFIN faultKind = iota
	faultHalfClose
	faultRST
	faultBlackhole
	faultStallRST
	faultPause
	faultRestart
	faultCut
	faultOutage
	numFaults
)

var faultNames = [numFaults]string{"fin", "half-close", "rst", "blackhole", "stall+rst", "pause+resume", "restart", "cut-after", "outage"}

// faultEvents holds the trace event that shows a fault took effect.
var faultEvents = [numFaults]faultnet.EventKind{
	faultnet.EventFIN, faultnet.EventHalfClose, faultnet.EventRST, faultnet.EventBlackhole,
	faultnet.EventStall, faultnet.EventPause, faultnet.EventRestart, faultnet.EventCutAfter,
	faultnet.EventRefused,
}

// Fault weights. Gentle runs leave out every fault that may legitimately
// cause a duplicate, so that they can require none.
var (
	fullWeights   = [numFaults]int{2, 2, 3, 2, 1, 2, 2, 3, 2}
	gentleWeights = [numFaults]int{3, 3, 0, 0, 0, 3, 0, 0, 2}
)

// resetEvents are the trace events after which a message may be
// processed twice: the server read it but the client never learned that
// its kernel acknowledged it.
var resetEvents = []faultnet.EventKind{
	faultnet.EventRST, faultnet.EventRSTUnread, faultnet.EventRestart,
	faultnet.EventCut, faultnet.EventBlackhole, faultnet.EventReadError,
}

// A chaosCall is one timed call to the Conn.
type chaosCall struct {
	kind   string // "Write", "Flush" or "Close"
	writer int
	seq    int
	start  time.Time
	end    time.Time
	bound  time.Time // when the call had to return by its contract
	dl     time.Time // the write deadline or context deadline in force
	busy   time.Time // for a Flush: the deadline of the Writes under way when it began
	n      int
	size   int
	err    error

	// excused is the part of the time past the bound during which the
	// process itself was not scheduled (see replaySamples.stalls).
	excused time.Duration
}

// late is how long after its bound the call returned.
func (c chaosCall) late() time.Duration { return c.end.Sub(c.bound) }

// net is late without the time the process was not scheduled.
func (c chaosCall) net() time.Duration { return c.late() - c.excused }

func (c chaosCall) String() string {
	s := fmt.Sprintf("%s %s took %v, %v past its bound (%s)", clock(c.start), c.kind, c.end.Sub(c.start).Round(time.Microsecond),
		c.late().Round(time.Microsecond), clock(c.bound))
	if c.excused > 0 {
		s += fmt.Sprintf(", %v of it with the process unscheduled", c.excused.Round(time.Microsecond))
	}
	if c.kind == "Write" {
		s += fmt.Sprintf(" writer %d seq %d wrote %d of %d", c.writer, c.seq, c.n, c.size)
	}
	if !c.busy.IsZero() {
		s += fmt.Sprintf(" (Writes under a deadline of %s were under way when it began)", clock(c.busy))
	}
	if c.err != nil {
		s += ": " + c.err.Error()
	}
	return s
}

func clock(t time.Time) string { return t.Format("15:04:05.000000") }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// writeErrorOK reports whether a Write that returned err at end, under
// the write deadline dl, kept to its contract: nil, net.ErrClosed, or a
// timeout of the deadline once it has passed. A net.Error whose Timeout
// is true is not enough: syscall.ETIMEDOUT, which the kernel returns
// when TCP_USER_TIMEOUT gives up on a connection, says Timeout too.
func writeErrorOK(err error, end, dl time.Time) bool {
	switch {
	case err == nil, errors.Is(err, net.ErrClosed):
		return true
	case errors.Is(err, os.ErrDeadlineExceeded):
		return !end.Before(dl)
	}
	return false
}

// A deadlineGate shares the Conn's write deadline among the writers. The
// deadline is per Conn, so the gate keeps it fixed while any Write runs:
// a writer enters under the deadline in force, which is then the bound of
// its Write, and the first writer to find it passed draws a new one once
// every Write under the old one has returned.
//
// It also orders the completion of a cut message: after a Write is cut,
// only its writer may enter until the message is complete. The deadline
// that cut it has passed, so the Writes already under way write nothing,
// and no other message can come between the two parts of the frame.
type deadlineGate struct {
	c         *reconn.Conn
	mu        sync.Mutex
	cond      sync.Cond
	rng       *rand.Rand // draws the deadlines; guarded by mu
	dl        time.Time  // the deadline in force
	inflight  int        // calls running under dl
	repairer  int        // the writer completing a cut message, or noRepair
	anomalies []string
}

const (
	noRepair = -1
	closerID = -2
)

func newDeadlineGate(c *reconn.Conn, rng *rand.Rand) *deadlineGate {
	g := &deadlineGate{c: c, rng: rng, repairer: noRepair}
	g.cond.L = &g.mu
	return g
}

// enter waits until writer id may call the Conn and returns the deadline
// in force, which stays until leave. It fails once the Conn is closed.
func (g *deadlineGate) enter(id int) (time.Time, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		switch {
		case g.repairer != noRepair && g.repairer != id:
			g.cond.Wait()
		case time.Now().Before(g.dl):
			g.inflight++
			return g.dl, nil
		case g.inflight > 0:
			g.cond.Wait()
		default:
			dl := time.Now().Add(drawTimeout(g.rng))
			if err := g.c.SetWriteDeadline(dl); err != nil {
				return time.Time{}, err
			}
			g.dl = dl
		}
	}
}

// leave ends a call. If cut is set, writer id wrote part of its message
// and alone may enter until it calls endRepair.
func (g *deadlineGate) leave(id int, cut bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
	if cut {
		switch g.repairer {
		case noRepair:
			g.repairer = id
		case id:
		default:
			// Two cut messages under one deadline: bytes went after
			// the deadline had passed, and may have split a frame.
			g.anomalies = append(g.anomalies, fmt.Sprintf("%s: writer %d's Write was cut while writer %d completed a cut message under the same deadline",
				clock(time.Now()), id, g.repairer))
		}
	}
	g.cond.Broadcast()
}

// busy returns the deadline of the calls under way, or the zero time if
// there are none.
func (g *deadlineGate) busy() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inflight == 0 {
		return time.Time{}
	}
	return g.dl
}

// endRepair ends writer id's exclusive right, if it had it.
func (g *deadlineGate) endRepair(id int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.repairer == id {
		g.repairer = noRepair
		g.cond.Broadcast()
	}
}

// A chaosWriter writes messages until the run stops it or the Conn is
// closed. Its fields are read by the run once it has returned.
type chaosWriter struct {
	id  int
	rng *rand.Rand

	accepted  []int       // sequence numbers whose Write returned nil
	abandoned []int       // sequence numbers given up without a nil Write
	late      []chaosCall // Writes more than chaosMargin past their deadline
	worst     time.Duration
	flushes   []chaosCall
	unexpect  []chaosCall // Writes whose error the contract does not allow (see writeErrorOK)
	cutCalls  []chaosCall // Writes that failed after writing part of the message

	writes, timeouts, cuts, repaired int
	unrepaired                       bool

	msg, payload, pending []byte
}

// note records a Write.
func (w *chaosWriter) note(c chaosCall) {
	w.writes++
	if errors.Is(c.err, os.ErrDeadlineExceeded) {
		w.timeouts++
	}
	if !writeErrorOK(c.err, c.end, c.dl) {
		w.unexpect = append(w.unexpect, c)
	}
	if c.err != nil && c.n > 0 {
		w.cuts++
		w.cutCalls = append(w.cutCalls, c)
	}
	if l := c.late(); l > chaosMargin {
		w.late = append(w.late, c)
	} else if l > w.worst {
		w.worst = l
	}
}

// chaosRun is one run: a server, a Conn, its writers and its faults.
type chaosRun struct {
	t     *testing.T
	seed  uint64
	n     int
	cfg   chaosConfig
	srv   *faultnet.Server
	c     *reconn.Conn
	gate  *deadlineGate
	begin time.Time
	next  atomic.Int64 // the next sequence number
	stop  atomic.Bool  // writers return after their current message

	logMu    sync.Mutex
	faultLog []string // guarded by logMu

	// Written by the fault goroutine, read after it returned.
	applied, skipped, missed [numFaults]int
}

// logFault adds a line to the fault log.
func (r *chaosRun) logFault(line string) {
	r.logMu.Lock()
	r.faultLog = append(r.faultLog, line)
	r.logMu.Unlock()
}

// faultLines returns the fault log so far.
func (r *chaosRun) faultLines() []string {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	return slices.Clone(r.faultLog)
}

func runChaos(t *testing.T, seed uint64, n int, rng *rand.Rand, window time.Duration, tot *chaosTotals) {
	ignore := goleak.IgnoreCurrent()
	cfg := drawChaosConfig(rng)
	srv, err := faultnet.Listen("tcp", privateLoopback()+":0")
	if err != nil {
		t.Fatalf("seed %d run %d: %v", seed, n, err)
	}
	defer srv.Close()
	d := &reconn.Dialer{
		Check:         cfg.check,
		UserTimeout:   chaosUserTimeout,
		RedialTimeout: 10 * time.Second,
		MinBackoff:    2 * time.Millisecond,
		MaxBackoff:    20 * time.Millisecond,
		FlushTimeout:  chaosFlushTimeout,
		ReplayBuffer:  cfg.replay,
		Async:         cfg.async,
	}
	nc, err := d.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatalf("seed %d run %d: Dial: %v", seed, n, err)
	}
	r := &chaosRun{t: t, seed: seed, n: n, cfg: cfg, srv: srv, c: nc.(*reconn.Conn), begin: time.Now()}
	r.gate = newDeadlineGate(r.c, rand.New(rand.NewPCG(seed, uint64(n)<<8|1)))
	ctx, cancel := context.WithTimeout(context.Background(), window+chaosHangLimit)
	defer cancel()
	if cfg.async {
		waitDialed(t, r.c)
	}
	awaitAccepted(t, srv, r.c)

	// The sampler measures scheduling delays from its first tick on: it
	// must run before the writers load the machine.
	sampled := make(chan replaySamples, 1)
	stopSampling := make(chan struct{})
	ticking := make(chan struct{})
	go func() { sampled <- r.sampleReplay(stopSampling, ticking) }()
	<-ticking

	writers := make([]*chaosWriter, chaosWriters)
	var wg sync.WaitGroup
	for i := range writers {
		w := &chaosWriter{id: i, rng: rand.New(rand.NewPCG(seed, uint64(n)<<8|uint64(i+4)))}
		writers[i] = w
		wg.Go(func() { r.write(w) })
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()

	faultsDone := make(chan struct{})
	frng := rand.New(rand.NewPCG(seed, uint64(n)<<8|2))
	go func() {
		defer close(faultsDone)
		r.faults(ctx, frng, r.begin.Add(window))
	}()
	r.await(faultsDone, window+chaosHangLimit, "the fault goroutine")

	// End the run as drawn, and time Close.
	crng := rand.New(rand.NewPCG(seed, uint64(n)<<8|3))
	if cfg.close != closeWhileWriting {
		r.stop.Store(true)
		r.await(writersDone, chaosHangLimit, "the writers after the stop")
	}
	closing := make(chan chaosCall, 1)
	go func() { closing <- r.closeConn(crng) }()
	var closeCall chaosCall
	select {
	case closeCall = <-closing:
	case <-time.After(chaosFlushTimeout + chaosHangLimit):
		r.hung("Close", chaosFlushTimeout+chaosHangLimit)
	}
	r.await(writersDone, chaosHangLimit, "the writers after Close")
	end := time.Now()

	// Wait until the server's accounting is final.
	st := r.c.Stats()
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	connsErr := waitAccepted(wctx, srv, r.c)
	wcancel()
	ectx, ecancel := context.WithTimeout(ctx, 10*time.Second)
	eofErr := srv.WaitEOF(ectx)
	ecancel()
	sent := int(r.next.Load())
	rep := srv.Report(sent)
	trace := srv.Trace()
	srv.Close()
	close(stopSampling)
	samples := <-sampled
	leakErr := goleak.Find(ignore)

	r.check(checkInput{
		writers: writers, closeCall: closeCall, stats: st, rep: rep, trace: trace,
		connsErr: connsErr, eofErr: eofErr, leakErr: leakErr, samples: samples,
		took: end.Sub(r.begin), window: window,
	}, tot)
}

// write is a writer's loop.
func (r *chaosRun) write(w *chaosWriter) {
	for !r.stop.Load() {
		seq := int(r.next.Add(1) - 1)
		w.msg = faultnet.AppendMessage(w.msg[:0], faultnet.Newline, seq, drawSize(w.rng, r.cfg.replayBound()))
		if !r.deliver(w, seq, w.msg) {
			return
		}
		if w.rng.IntN(r.cfg.flushOdds) == 0 {
			r.flush(w)
		}
	}
}

// deliver writes message seq until a Write accepts it, and completes it
// if a Write was cut. It returns false when the writer must stop: the
// Conn is closed, the run stops and nothing of the message went out, or a
// cut message could not be completed.
func (r *chaosRun) deliver(w *chaosWriter, seq int, msg []byte) bool {
	w.pending = w.pending[:0]
	var cutAt time.Time
	for {
		w.payload = append(resumeToken(w.payload[:0], w.pending, seq), msg...)
		dl, err := r.gate.enter(w.id)
		if err != nil {
			r.gate.endRepair(w.id)
			w.abandoned = append(w.abandoned, seq)
			return false
		}
		start := time.Now()
		n, err := r.c.Write(w.payload)
		end := time.Now()
		closed := errors.Is(err, net.ErrClosed)
		cut := err != nil && !closed && n > 0 && n < len(w.payload)
		r.gate.leave(w.id, cut)
		w.note(chaosCall{kind: "Write", writer: w.id, seq: seq, start: start, end: end,
			bound: later(dl, start), dl: dl, n: n, size: len(w.payload), err: err})
		if err == nil || n == len(w.payload) {
			if len(w.pending) > 0 {
				w.repaired++
				r.gate.endRepair(w.id)
			}
			w.accepted = append(w.accepted, seq)
			return true
		}
		w.pending = append(w.pending, w.payload[:n]...)
		switch {
		case closed:
			r.gate.endRepair(w.id)
			w.abandoned = append(w.abandoned, seq)
			return false
		case len(w.pending) == 0:
			if r.stop.Load() {
				w.abandoned = append(w.abandoned, seq)
				return false
			}
		default:
			if cutAt.IsZero() {
				cutAt = start
			}
			if time.Since(cutAt) > chaosRepairLimit {
				w.unrepaired = true
				r.gate.endRepair(w.id)
				w.abandoned = append(w.abandoned, seq)
				return false
			}
		}
	}
}

// flush calls Flush with a random timeout.
func (r *chaosRun) flush(w *chaosWriter) {
	ctx, cancel := context.WithTimeout(context.Background(), drawTimeout(w.rng))
	defer cancel()
	dl, _ := ctx.Deadline()
	busy := r.gate.busy()
	start := time.Now()
	err := r.c.Flush(ctx)
	w.flushes = append(w.flushes, chaosCall{kind: "Flush", writer: w.id, seq: -1, start: start, end: time.Now(),
		bound: later(dl, start), dl: dl, busy: busy, err: err})
}

// closeConn closes the Conn as the run's close mode says and times it.
func (r *chaosRun) closeConn(rng *rand.Rand) chaosCall {
	c := chaosCall{kind: "Close", writer: -1, seq: -1}
	switch r.cfg.close {
	case closeDeadline:
		dl := time.Now().Add(drawTimeout(rng))
		r.c.SetWriteDeadline(dl)
		c.start = time.Now()
		c.bound = later(dl, c.start)
	case closeFlushTimeout:
		r.c.SetWriteDeadline(time.Time{})
		c.start = time.Now()
		c.bound = c.start.Add(chaosFlushTimeout)
	case closeWhileWriting:
		dl, err := r.gate.enter(closerID)
		if err != nil {
			r.t.Errorf("seed %d run %d: entering the gate to Close: %v", r.seed, r.n, err)
		}
		defer r.gate.leave(closerID, false)
		c.start = time.Now()
		c.bound = later(dl, c.start)
	}
	c.err = r.c.Close()
	c.end = time.Now()
	r.stop.Store(true)
	return c
}

// await waits for done, or reports a hang with every goroutine's stack.
func (r *chaosRun) await(done <-chan struct{}, limit time.Duration, what string) {
	select {
	case <-done:
	case <-time.After(limit):
		r.hung(what, limit)
	}
}

func (r *chaosRun) hung(what string, limit time.Duration) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var trace []string
	for _, e := range r.srv.Trace() {
		trace = append(trace, e.String())
	}
	r.t.Fatalf("seed %d run %d (%v): %s did not return within %v\nfaults:\n  %s\nserver trace:\n  %s\ngoroutines:\n%s",
		r.seed, r.n, r.cfg, what, limit, strings.Join(r.faultLines(), "\n  "), strings.Join(trace, "\n  "), buf)
}

// pause waits for d, or less if ctx ends.
func pause(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// replaySamples is what the replay-usage sampler saw. It also measures
// how late its own ticker fires: while a goroutine that only waits for a
// timer is not run, no goroutine of the Conn can be expected to return
// either, so that time is not held against a late call.
type replaySamples struct {
	n, known int
	max      int64
	over     []string
	stall    time.Duration // the worst delay of a tick
	stallAt  time.Time
	stalls   []span // the delays longer than stallMin
}

// A span is an interval of time.
type span struct{ from, to time.Time }

const (
	sampleEvery = 2 * time.Millisecond
	stallMin    = 5 * time.Millisecond
)

// excused returns how much of [from, to] the stalls cover.
func (s *replaySamples) excused(from, to time.Time) time.Duration {
	var d time.Duration
	for _, st := range s.stalls {
		if a, b := later(st.from, from), earlier(st.to, to); b.After(a) {
			d += b.Sub(a)
		}
	}
	return d
}

// sampleReplay samples the replay buffer's usage until stop is closed.
// It closes ticking at its first tick.
func (r *chaosRun) sampleReplay(stop <-chan struct{}, ticking chan<- struct{}) replaySamples {
	var s replaySamples
	bound := r.cfg.replayBound()
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	<-tick.C
	close(ticking)
	last := time.Now()
	for {
		select {
		case <-stop:
			return s
		case <-tick.C:
		}
		now := time.Now()
		d := now.Sub(last) - sampleEvery
		if d > s.stall {
			s.stall, s.stallAt = d, last
		}
		if d > stallMin {
			s.stalls = append(s.stalls, span{last.Add(sampleEvery), now})
		}
		last = now
		s.n++
		b, ok := replayUsage(r.c)
		if !ok {
			continue
		}
		s.known++
		s.max = max(s.max, b)
		if b > bound && len(s.over) < 10 {
			s.over = append(s.over, fmt.Sprintf("%s: %d bytes held, bound %d", clock(time.Now()), b, bound))
		}
	}
}

// faults applies random faults until the window ends, then heals what a
// fault may have left armed.
func (r *chaosRun) faults(ctx context.Context, rng *rand.Rand, until time.Time) {
	weights := fullWeights
	if r.cfg.gentle {
		weights = gentleWeights
	}
	for {
		if !sleepUntil(ctx, time.Now().Add(drawMillis(rng, 5, 150)), until) {
			break
		}
		r.awaitProgress(ctx, until)
		if !time.Now().Before(until) {
			break
		}
		k := pick(rng, weights[:])
		at := time.Now()
		applied, skipped, note := r.apply(ctx, rng, faultKind(k))
		state := "applied"
		switch {
		case skipped:
			r.skipped[k]++
			state = "skipped"
		case applied:
			r.applied[k]++
		default:
			r.missed[k]++
			state = "missed (no connection took it)"
		}
		line := fmt.Sprintf("%s %s: %s", clock(at), faultNames[k], state)
		if note != "" {
			line += " (" + note + ")"
		}
		r.logFault(line)
	}
	// A Restart or an outage listens again by itself; a cut may still be
	// armed on a connection that has not carried enough bytes.
	r.srv.Accept()
	r.srv.CutAfter(-1)
	r.srv.Resume()
	r.logFault(clock(time.Now()) + " end of faults: accept, disarm cuts, resume")
}

// awaitProgress waits until the server has processed a message it had
// not, so that faults land in a moving stream; it gives up after half a
// second or at until.
func (r *chaosRun) awaitProgress(ctx context.Context, until time.Time) {
	got := r.srv.Report(int(r.next.Load())).Received
	wctx, cancel := context.WithDeadline(ctx, earlier(until, time.Now().Add(500*time.Millisecond)))
	defer cancel()
	r.srv.WaitReceived(wctx, got+1)
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sleepUntil waits until t, or less if ctx ends. It reports false if
// limit has passed by then.
func sleepUntil(ctx context.Context, t, limit time.Time) bool {
	timer := time.NewTimer(time.Until(earlier(t, limit)))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		return false
	}
	return time.Now().Before(limit)
}

func pick(rng *rand.Rand, weights []int) int {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	x := rng.IntN(sum)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	panic("unreachable")
}

// events counts the trace events of a kind.
func (r *chaosRun) events(kind faultnet.EventKind) int {
	return countEvents(r.srv.Trace(), kind)
}

func countEvents(trace []faultnet.Event, kinds ...faultnet.EventKind) int {
	n := 0
	for _, e := range trace {
		if slices.Contains(kinds, e.Kind) {
			n++
		}
	}
	return n
}

// settleDials waits, for a second at most, until the server has accepted
// every connection the Conn made. Closing the listener resets the
// connections still in its backlog, and the data their kernel had already
// acknowledged would be lost without being measured.
func (r *chaosRun) settleDials(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	waitAccepted(wctx, r.srv, r.c)
}

// apply applies one fault. It reports whether the trace shows it took
// effect, or whether it was skipped for want of privilege or support.
func (r *chaosRun) apply(ctx context.Context, rng *rand.Rand, k faultKind) (applied, skipped bool, note string) {
	before := r.events(faultEvents[k])
	switch k {
	case faultFIN:
		r.srv.FIN()
	case faultHalfClose:
		r.srv.HalfClose()
	case faultRST:
		r.srv.RST()
	case faultBlackhole:
		if err := r.srv.Blackhole(); err != nil {
			if errors.Is(err, os.ErrPermission) || errors.Is(err, faultnet.ErrUnsupported) {
				return false, true, err.Error()
			}
			note = "error: " + err.Error()
		}
	case faultStallRST:
		r.srv.Stall()
		d := drawMillis(rng, 10, 200)
		pause(ctx, d)
		r.srv.RST()
		note = fmt.Sprintf("stalled %v", d)
	case faultPause:
		// Shorter than the user timeout, so that a closed window does
		// not make the client abort the connection.
		r.srv.Pause()
		d := drawMillis(rng, 10, 400)
		pause(ctx, d)
		r.srv.Resume()
		note = fmt.Sprintf("paused %v", d)
	case faultRestart:
		r.settleDials(ctx)
		listening := r.events(faultnet.EventListening)
		down := drawMillis(rng, 5, 300)
		if err := r.srv.Restart(down); err != nil {
			note = "error: " + err.Error()
			break
		}
		wctx, cancel := context.WithTimeout(ctx, down+5*time.Second)
		if err := r.srv.WaitEvent(wctx, faultnet.EventListening, listening+1); err != nil {
			note = "listening again: " + err.Error()
		} else {
			note = fmt.Sprintf("down %v", down)
		}
		cancel()
	case faultCut:
		b := 1 + rng.IntN(64<<10)
		r.srv.CutAfter(int64(b))
		note = fmt.Sprintf("after %d bytes", b)
	case faultOutage:
		r.settleDials(ctx)
		r.srv.Refuse()
		also := rng.IntN(3)
		if r.cfg.gentle && also == 2 {
			also = 1
		}
		switch also {
		case 1:
			r.srv.FIN()
			note = "with fin, "
		case 2:
			r.srv.RST()
			note = "with rst, "
		}
		// Most outages are short; one in five outlasts any write
		// deadline, so that callers wait through a whole redial.
		d := drawMillis(rng, 5, 300)
		if rng.IntN(5) == 0 {
			d = drawMillis(rng, 500, 1500)
		}
		pause(ctx, d)
		if err := r.srv.Accept(); err != nil {
			note += "accept: " + err.Error() + ", "
		}
		note += fmt.Sprintf("down %v", d)
	}
	return r.events(faultEvents[k]) > before, false, note
}

// checkInput is what a run measured.
type checkInput struct {
	writers   []*chaosWriter
	closeCall chaosCall
	stats     reconn.Stats
	rep       faultnet.Report
	trace     []faultnet.Event
	connsErr  error // the server did not accept every connection the Conn made
	eofErr    error // a server connection never ended
	leakErr   error
	samples   replaySamples
	took      time.Duration
	window    time.Duration
}

// check checks the invariants of a finished run, logs its summary and
// adds it to tot.
func (r *chaosRun) check(in checkInput, tot *chaosTotals) {
	var violations, notes []string
	sent := in.rep.Sent
	accepted := make([]bool, sent)
	var nAccepted, abandoned, writes, timeouts, cuts, repaired int
	var flushes, late, unexpected []chaosCall
	var worstWrite time.Duration
	unrepaired := false
	for _, w := range in.writers {
		for _, q := range w.accepted {
			accepted[q] = true
		}
		nAccepted += len(w.accepted)
		abandoned += len(w.abandoned)
		writes += w.writes
		timeouts += w.timeouts
		cuts += w.cuts
		repaired += w.repaired
		flushes = append(flushes, w.flushes...)
		late = append(late, w.late...)
		unexpected = append(unexpected, w.unexpect...)
		worstWrite = max(worstWrite, w.worst)
		unrepaired = unrepaired || w.unrepaired
	}

	// Invariant 1: every accepted message was processed, or was lost where
	// no client could have saved it, or Close said it was unconfirmed.
	var ue *reconn.UnconfirmedError
	unconfirmed := 0
	if errors.As(in.closeCall.err, &ue) {
		unconfirmed = ue.Messages
	}
	lossChecked := false
	switch {
	case !in.rep.Exact:
		notes = append(notes, "loss not checked: the unread set was not measured exactly (the freeze needs Linux's socket filter and CAP_NET_ADMIN)")
	case in.connsErr != nil:
		notes = append(notes, fmt.Sprintf("loss not checked: the server accepted %d of the %d connections made; the others were reset in its backlog, unmeasured",
			countEvents(in.trace, faultnet.EventAccepted), in.stats.Dials))
	case unrepaired:
		notes = append(notes, "loss not checked: a cut message could not be completed")
	case len(r.gate.anomalies) > 0:
		notes = append(notes, "loss not checked: a frame may have been split (see the gate anomalies)")
	default:
		lossChecked = true
		lost, exact, seqs := lostAccepted(in.rep, accepted, abandoned)
		if lost > unconfirmed {
			qual := "exactly"
			if !exact {
				qual = "at least"
			}
			violations = append(violations, fmt.Sprintf("invariant 1 (nothing lost outside the unread set): %s %d accepted messages lost by the client, Close reported %d unconfirmed; lost accepted seqs %v",
				qual, lost, unconfirmed, seqs))
		}
	}

	// Invariant 2: no duplicate without a cut or a reset.
	resets := countEvents(in.trace, resetEvents...)
	if resets == 0 && in.rep.Duplicated > 0 {
		violations = append(violations, fmt.Sprintf("invariant 2 (no duplicate without a cut or reset): %d duplicated with no cut or reset in the trace", in.rep.Duplicated))
	}

	// Invariant 3: every call returns by its bound, plus the margin.
	var calls []chaosCall
	calls = append(calls, late...)
	calls = append(calls, flushes...)
	calls = append(calls, in.closeCall)
	var over []chaosCall
	tot.lateness["Write"].add(r.n, writes-len(late), chaosCall{end: time.Time{}.Add(worstWrite)})
	for _, c := range calls {
		if c.late() > chaosMargin {
			c.excused = in.samples.excused(c.bound, c.end)
		}
		tot.lateness[c.kind].add(r.n, 1, c)
		if c.net() > chaosLimit {
			over = append(over, c)
		}
	}
	slices.SortFunc(over, func(a, b chaosCall) int { return int(b.net() - a.net()) })
	if len(over) > 0 {
		byKind := map[string]int{}
		for _, c := range over {
			byKind[c.kind]++
		}
		violations = append(violations, fmt.Sprintf("invariant 3 (every call returns within its bound + %v): %d Writes, %d Flushes, %d Closes late; worst %v past its bound, %v of it with the process unscheduled",
			chaosLimit, byKind["Write"], byKind["Flush"], byKind["Close"], over[0].late().Round(time.Millisecond), over[0].excused.Round(time.Millisecond)))
	}

	// Invariant 4: nothing left behind.
	if in.eofErr != nil {
		violations = append(violations, fmt.Sprintf("invariant 4 (nothing left behind): a server connection never ended after Close: %v", in.eofErr))
	}
	if in.leakErr != nil {
		violations = append(violations, fmt.Sprintf("invariant 4 (nothing left behind): goroutines left after Close and the server's Close: %v", in.leakErr))
	}

	// Invariant 5: the replay buffer within its bound.
	if len(in.samples.over) > 0 {
		violations = append(violations, fmt.Sprintf("invariant 5 (replay buffer within %d bytes): %s", r.cfg.replayBound(), strings.Join(in.samples.over, "; ")))
	}

	// Write may fail only at its deadline, at Close or at the redial
	// bounds, which the deadlines here always precede.
	if len(unexpected) > 0 {
		var s []string
		for _, c := range unexpected[:min(len(unexpected), 5)] {
			s = append(s, c.String())
		}
		v := fmt.Sprintf("Write contract: %d Writes failed other than by net.ErrClosed or by their deadline once passed: %s", len(unexpected), strings.Join(s, "; "))
		if slices.ContainsFunc(unexpected, func(c chaosCall) bool { return c.n > 0 }) {
			v += " (some wrote part of their message while the deadline still held: another writer's message may have joined the cut frame)"
		}
		violations = append(violations, v)
	}
	if len(r.gate.anomalies) > 0 {
		violations = append(violations, "bytes written after the write deadline had passed: "+strings.Join(r.gate.anomalies, "; "))
	}

	faults := 0
	var fs []string
	for k := range numFaults {
		faults += r.applied[k]
		if r.applied[k] > 0 {
			fs = append(fs, fmt.Sprintf("%s×%d", faultNames[k], r.applied[k]))
		}
	}
	r.t.Logf("run %d (%v): %v, %d faults [%s]; %d sent, %d accepted, %d abandoned; received %d, unavoidable %d, client-lost %d, duplicated %d (%d resets/cuts in trace), invalid %d; %d Writes, %d timeouts, %d cut, %d completed; %d Flushes; Close %v: %v; redials %d; worst scheduling delay %v",
		r.n, r.cfg, in.took.Round(time.Millisecond), faults, strings.Join(fs, " "), sent, nAccepted, abandoned,
		in.rep.Received, in.rep.Unavoidable, in.rep.ClientLost, in.rep.Duplicated, resets, in.rep.Invalid,
		writes, timeouts, cuts, repaired, len(flushes), in.closeCall.end.Sub(in.closeCall.start).Round(time.Millisecond), in.closeCall.err, in.stats.Redials,
		in.samples.stall.Round(time.Millisecond))
	for _, s := range notes {
		r.t.Logf("run %d: %s", r.n, s)
	}
	if len(violations) > 0 {
		r.t.Error(r.failure(violations, over, in))
	}
	tot.add(r, in, faults, lossChecked, len(violations))
}

// lostAccepted counts the accepted messages that the report says the
// client lost. The report lists at most 100 lost sequence numbers; when
// it lists them all the count is exact, otherwise it is a lower bound:
// every lost message beyond the abandoned ones was accepted.
func lostAccepted(rep faultnet.Report, accepted []bool, abandoned int) (lost int, exact bool, seqs []int) {
	for _, q := range rep.LostSeqs {
		if q < len(accepted) && accepted[q] {
			lost++
			if len(seqs) < 20 {
				seqs = append(seqs, q)
			}
		}
	}
	if rep.ClientLost <= len(rep.LostSeqs) {
		return lost, true, seqs
	}
	return max(lost, rep.ClientLost-abandoned), false, seqs
}

// failure formats a run's violations with what it takes to debug them.
func (r *chaosRun) failure(violations []string, over []chaosCall, in checkInput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d run %d (%v): %d violations\n", r.seed, r.n, r.cfg, len(violations))
	for _, v := range violations {
		fmt.Fprintf(&b, "  - %s\n", v)
	}
	if len(over) > 0 {
		fmt.Fprintf(&b, "calls past their bound + %v, worst first (%d in all):\n", chaosLimit, len(over))
		for _, c := range over[:min(len(over), 10)] {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	if in.samples.stall > 0 {
		fmt.Fprintf(&b, "worst scheduling delay of a %v ticker: %v, from %s\n", sampleEvery, in.samples.stall.Round(time.Millisecond), clock(in.samples.stallAt))
	}
	var cuts []chaosCall
	for _, w := range in.writers {
		cuts = append(cuts, w.cutCalls...)
	}
	if len(cuts) > 0 {
		slices.SortFunc(cuts, func(a, b chaosCall) int { return a.end.Compare(b.end) })
		fmt.Fprintf(&b, "cut Writes (%d):\n", len(cuts))
		for _, c := range cuts[:min(len(cuts), 20)] {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	fmt.Fprintf(&b, "report: %v\n", in.rep)
	fmt.Fprintf(&b, "stats: %+v\n", in.stats)
	fmt.Fprintf(&b, "faults (run began %s):\n", clock(r.begin))
	for _, s := range r.faultLines() {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	fmt.Fprintf(&b, "server trace:\n")
	for _, e := range in.trace {
		fmt.Fprintf(&b, "  %v\n", e)
	}
	fmt.Fprintf(&b, "rerun: go test -race -run 'TestChaos$' -v . -args -seed %d", r.seed)
	return b.String()
}

// lateness sums up how late calls of one kind returned.
type lateness struct {
	calls     int
	over      int // calls more than chaosMargin late, net of scheduling stalls
	overRaw   int // calls more than chaosMargin late
	worst     time.Duration
	worstRun  int
	worstCall string
	excess    []time.Duration // net lateness of the calls over the margin
}

// add counts calls, the worst of which is c. A chaosCall with only late
// set stands for calls that were not recorded one by one.
func (l *lateness) add(run, calls int, c chaosCall) {
	if calls == 0 {
		return
	}
	l.calls += calls
	if c.late() > chaosMargin && !c.start.IsZero() {
		l.overRaw++
	}
	if c.net() > chaosMargin && !c.start.IsZero() {
		l.over++
		l.excess = append(l.excess, c.net())
	}
	if l.worstRun == 0 || c.net() > l.worst {
		l.worst, l.worstRun, l.worstCall = c.net(), run, ""
		if !c.start.IsZero() {
			l.worstCall = c.String()
		}
	}
}

func (l *lateness) String() string {
	if l.calls == 0 {
		return "no calls"
	}
	s := fmt.Sprintf("%d calls, %d more than %v past their bound net of scheduling stalls (%d before discounting them); worst %v past (run %d)",
		l.calls, l.over, chaosMargin, l.overRaw, l.worst.Round(time.Microsecond), l.worstRun)
	if len(l.excess) > 0 {
		slices.Sort(l.excess)
		s += fmt.Sprintf("; of the late ones: median %v, 90th percentile %v",
			l.excess[len(l.excess)/2].Round(time.Millisecond), l.excess[len(l.excess)*9/10].Round(time.Millisecond))
	}
	if l.over > 0 && l.worstCall != "" {
		s += "\n      worst: " + l.worstCall
	}
	return s
}

// chaosTotals sums up every run.
type chaosTotals struct {
	runs, failed, unchecked           int
	gentle                            int
	sent, accepted, received, unavoid int
	duplicated, clientLost            int
	applied, skipped, missed          [numFaults]int
	lateness                          map[string]*lateness
	stall                             time.Duration
	samples, known                    int // replay-usage samples taken, and those the Conn answered
	replayMax                         int64
	dupRuns                           []string
}

func newChaosTotals() *chaosTotals {
	return &chaosTotals{lateness: map[string]*lateness{"Write": {}, "Flush": {}, "Close": {}}}
}

func (t *chaosTotals) add(r *chaosRun, in checkInput, faults int, lossChecked bool, violations int) {
	t.runs++
	if violations > 0 {
		t.failed++
	}
	if !lossChecked {
		t.unchecked++
	}
	if r.cfg.gentle {
		t.gentle++
	}
	t.sent += in.rep.Sent
	t.stall = max(t.stall, in.samples.stall)
	t.samples += in.samples.n
	t.known += in.samples.known
	t.replayMax = max(t.replayMax, in.samples.max)
	for _, w := range in.writers {
		t.accepted += len(w.accepted)
	}
	t.received += in.rep.Received
	t.unavoid += in.rep.Unavoidable
	t.duplicated += in.rep.Duplicated
	t.clientLost += in.rep.ClientLost
	if in.rep.Duplicated > 0 {
		t.dupRuns = append(t.dupRuns, fmt.Sprintf("run %d: %d", r.n, in.rep.Duplicated))
	}
	for k := range numFaults {
		t.applied[k] += r.applied[k]
		t.skipped[k] += r.skipped[k]
		t.missed[k] += r.missed[k]
	}
}

func (t *chaosTotals) faultsApplied() int {
	n := 0
	for _, a := range t.applied {
		n += a
	}
	return n
}

func (t *chaosTotals) log(tb testing.TB, seed uint64, took, chaos time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d runs (%d gentle) in %v (%v of chaos), %d with violations, %d with loss unchecked; worst scheduling delay %v\n",
		seed, t.runs, t.gentle, took.Round(time.Millisecond), chaos, t.failed, t.unchecked, t.stall.Round(time.Millisecond))
	fmt.Fprintf(&b, "  faults applied: %d;", t.faultsApplied())
	for k := range numFaults {
		fmt.Fprintf(&b, " %s %d", faultNames[k], t.applied[k])
		if t.skipped[k] > 0 {
			fmt.Fprintf(&b, " (+%d skipped)", t.skipped[k])
		}
		if t.missed[k] > 0 {
			fmt.Fprintf(&b, " (+%d missed)", t.missed[k])
		}
	}
	fmt.Fprintf(&b, "\n  messages: %d sent, %d accepted, %d received, %d unavoidable, %d client-lost, %d duplicated [%s]\n",
		t.sent, t.accepted, t.received, t.unavoid, t.clientLost, t.duplicated, strings.Join(t.dupRuns, ", "))
	for _, k := range []string{"Write", "Flush", "Close"} {
		fmt.Fprintf(&b, "  %s: %v\n", k, t.lateness[k])
	}
	fmt.Fprintf(&b, "  replay usage: %d samples, at most %d bytes\n", t.samples, t.replayMax)
	tb.Log(b.String())
}
