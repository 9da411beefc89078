// Command loadgen drives a BitTorrent tracker with announces over UDP (BEP 15) or HTTP and
// reports throughput and latency. It is the load generator behind `npm run bench`
// (see bench/run.mjs and DESIGN.md, "Performance, and how it is measured").
//
// Load: peer i belongs to torrent i % torrents and re-announces to it; every announce asks for
// numwant peers. With -warmup every peer is announced once with event=started before the
// measured window, so the swarms are full when measuring.
//
// Standard library only, so `go build` works offline.
package main

import (
	"crypto/sha1"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	mode      string
	target    string
	peers     int
	torrents  int
	numwant   int
	duration  time.Duration
	rampup    time.Duration
	warmup    bool
	conns     int
	inflight  int
	sockets   int
	timeout   time.Duration
	jsonOut   bool
	serverPid int
	watchPids []int
	srvCore   int
	genCore   int
}

// ---- the peers -------------------------------------------------------------------------------

var (
	infoHashes [][20]byte // per torrent
	cfg        config
)

func initPeers() {
	infoHashes = make([][20]byte, cfg.torrents)
	for t := range infoHashes {
		infoHashes[t] = sha1.Sum([]byte("torrent-" + strconv.Itoa(t)))
	}
}

// peerID writes "-PT0001-" followed by 12 decimal digits of i.
func peerID(dst []byte, i int) {
	copy(dst, "-PT0001-")
	n := i
	for k := 19; k >= 8; k-- {
		dst[k] = byte('0' + n%10)
		n /= 10
	}
}

func peerPort(i int) uint16 { return uint16(10000 + i%50000) }
func peerSeeder(i int) bool { return i%3 == 0 }
func peerTorrent(i int) int { return i % cfg.torrents }
func peerLeft(i int) uint64 {
	if peerSeeder(i) {
		return 0
	}
	return uint64(1<<20) * uint64(1+i%64)
}

// ---- clock and statistics --------------------------------------------------------------------

var epoch = time.Now()

// nowNs is monotonic nanoseconds since start.
func nowNs() int64 { return int64(time.Since(epoch)) }

// phase is one stretch of load: the warmup (each peer once, event=started) or the measured run.
type phase struct {
	name      string
	event     int  // BEP 15 event: 0 none, 2 started
	once      bool // announce each peer exactly once, then stop
	stopAt    int64
	countFrom int64 // completions in [countFrom, countTo] are counted
	countTo   int64
	next      atomic.Int64
	stopped   atomic.Bool

	ok, errors, failures, timeouts, bytes atomic.Uint64
	hist                                  []uint32 // latency histogram, 1 µs buckets, last = overflow
}

func newPhase(name string, event int, once bool, start int64, run, rampup time.Duration) *phase {
	p := &phase{name: name, event: event, once: once}
	p.hist = make([]uint32, int(cfg.timeout/time.Microsecond)+2)
	if once {
		p.stopAt = 1<<62 - 1
		p.countFrom = start
		p.countTo = p.stopAt
	} else {
		p.countFrom = start + int64(rampup)
		p.countTo = p.countFrom + int64(run)
		p.stopAt = p.countTo
	}
	return p
}

// nextPeer hands out the next peer to announce, or -1 when the phase is over.
func (p *phase) nextPeer() int {
	if p.stopped.Load() {
		return -1
	}
	n := p.next.Add(1) - 1
	if p.once {
		if n >= int64(cfg.peers) {
			p.stopped.Store(true)
			return -1
		}
		return int(n)
	}
	if nowNs() >= p.stopAt {
		p.stopped.Store(true)
		return -1
	}
	return int(n % int64(cfg.peers))
}

func (p *phase) counts(t int64) bool { return t >= p.countFrom && t <= p.countTo }

func (p *phase) recordOK(sent, done int64, replyBytes int) {
	if !p.counts(done) {
		return
	}
	p.ok.Add(1)
	p.bytes.Add(uint64(replyBytes))
	us := (done - sent) / 1000
	if us < 0 {
		us = 0
	}
	if us >= int64(len(p.hist)-1) {
		us = int64(len(p.hist) - 1)
	}
	atomic.AddUint32(&p.hist[us], 1)
}

// recordError counts a reply that is not a valid announce reply; failure marks a tracker-level
// refusal (BEP 15 action 3, or an HTTP body with "failure reason").
func (p *phase) recordError(done int64, failure bool) {
	if !p.counts(done) {
		return
	}
	p.errors.Add(1)
	if failure {
		p.failures.Add(1)
	}
}

// recordTimeout counts a request sent inside the window that got no reply in time.
func (p *phase) recordTimeout(sent int64) {
	if !p.counts(sent) {
		return
	}
	p.timeouts.Add(1)
}

func (p *phase) percentile(q float64) float64 {
	total := p.ok.Load()
	if total == 0 {
		return 0
	}
	want := uint64(q*float64(total) + 0.5)
	if want < 1 {
		want = 1
	}
	var acc uint64
	for i := range p.hist {
		acc += uint64(atomic.LoadUint32(&p.hist[i]))
		if acc >= want {
			return float64(i)
		}
	}
	return float64(len(p.hist) - 1)
}

func (p *phase) meanLatency() float64 {
	var sum, n float64
	for i := range p.hist {
		c := float64(atomic.LoadUint32(&p.hist[i]))
		sum += c * float64(i)
		n += c
	}
	if n == 0 {
		return 0
	}
	return sum / n
}

// ---- CPU accounting --------------------------------------------------------------------------

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU reads utime+stime of a process (all threads) from /proc; ticks are assumed 100 Hz,
// which is USER_HZ on every Linux this runs on.
func procCPU(pid int) (time.Duration, bool) {
	user, sys, ok := procCPUSplit(pid)
	return user + sys, ok
}

// procCPUSplit is a process's user and system CPU time so far (/proc/<pid>/stat, clock ticks).
func procCPUSplit(pid int) (time.Duration, time.Duration, bool) {
	if pid <= 0 {
		return 0, 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	// after ")": state(3) ppid(4) ... utime is field 14, stime 15 -> indexes 11, 12 here
	if len(f) < 13 {
		return 0, 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return time.Duration(ut) * 10 * time.Millisecond, time.Duration(st) * 10 * time.Millisecond, true
}

// coreTicks reads the busy and total ticks of one core from /proc/stat (ok false if unknown).
func coreTicks(core int) (busy, total int64, ok bool) {
	if core < 0 {
		return 0, 0, false
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	prefix := "cpu" + strconv.Itoa(core) + " "
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)[1:]
		for k, v := range f {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, 0, false
			}
			if k >= 8 { // guest time is already counted in user
				break
			}
			total += n
			if k != 3 && k != 4 { // idle, iowait
				busy += n
			}
		}
		return busy, total, true
	}
	return 0, 0, false
}

// ---- the driver ------------------------------------------------------------------------------

// engine runs phases against the target.
type engine interface {
	// run drives the phase until it stops and every request it sent is answered or timed out.
	run(p *phase)
	close()
}

type phaseResult struct {
	Announces      uint64   `json:"announces"`
	Seconds        float64  `json:"seconds"`
	AnnouncesPerS  float64  `json:"announces_per_sec"`
	P50us          float64  `json:"p50_us"`
	P99us          float64  `json:"p99_us"`
	P999us         float64  `json:"p999_us"`
	MeanUs         float64  `json:"mean_us"`
	Errors         uint64   `json:"errors"`
	Failures       uint64   `json:"failures"`
	Timeouts       uint64   `json:"timeouts"`
	MeanReplyBytes float64  `json:"mean_reply_bytes"`
	LoadgenCPU     float64  `json:"loadgen_cpu"`
	ServerCPU      *float64 `json:"server_cpu,omitempty"`
	// CPU seconds the -watch-pids processes used together over the counted window
	WatchedCPUSeconds *float64 `json:"watched_cpu_seconds,omitempty"`
	// the part of it spent in the kernel (system calls: sockets, epoll)
	WatchedSysSeconds *float64 `json:"watched_sys_seconds,omitempty"`
	// how busy each core was, whoever used it (other processes on a shared machine included)
	ServerCoreBusy  *float64 `json:"server_core_busy,omitempty"`
	LoadgenCoreBusy *float64 `json:"loadgen_core_busy,omitempty"`
}

type result struct {
	Mode     string       `json:"mode"`
	Target   string       `json:"target"`
	Peers    int          `json:"peers"`
	Torrents int          `json:"torrents"`
	Numwant  int          `json:"numwant"`
	Conns    int          `json:"conns,omitempty"`
	Inflight int          `json:"inflight,omitempty"`
	Sockets  int          `json:"sockets,omitempty"`
	Warmup   *phaseResult `json:"warmup,omitempty"`
	phaseResult
}

func runPhase(e engine, p *phase) phaseResult {
	// CPU is sampled at the edges of the counted window (the whole phase for the warmup).
	type sample struct {
		t        int64
		cpu, srv time.Duration
		srvOK    bool
		watched  time.Duration
		wsys     time.Duration
		watchOK  bool
		cores    [2][3]int64 // busy, total, ok
	}
	take := func() sample {
		s := sample{t: nowNs(), cpu: selfCPU()}
		s.srv, s.srvOK = procCPU(cfg.serverPid)
		s.watchOK = len(cfg.watchPids) > 0
		for _, pid := range cfg.watchPids {
			u, sy, ok := procCPUSplit(pid)
			s.watched += u + sy
			s.wsys += sy
			s.watchOK = s.watchOK && ok
		}
		for k, core := range []int{cfg.srvCore, cfg.genCore} {
			b, t, ok := coreTicks(core)
			if ok {
				s.cores[k] = [3]int64{b, t, 1}
			}
		}
		return s
	}
	var s0, s1 sample
	if p.once {
		s0 = take()
		e.run(p)
		s1 = take()
	} else {
		edges := make(chan [2]sample, 1)
		go func() {
			time.Sleep(time.Duration(p.countFrom - nowNs()))
			a := take()
			time.Sleep(time.Duration(p.countTo - nowNs()))
			edges <- [2]sample{a, take()}
		}()
		e.run(p)
		e2 := <-edges
		s0, s1 = e2[0], e2[1]
	}
	cpu0, cpu1, srv0, srv1, srvOK := s0.cpu, s1.cpu, s0.srv, s1.srv, s0.srvOK && s1.srvOK
	wall := time.Duration(s1.t - s0.t)
	secs := wall.Seconds()
	if !p.once {
		secs = time.Duration(p.countTo - p.countFrom).Seconds()
	}
	r := phaseResult{
		Announces: p.ok.Load(),
		Seconds:   secs,
		P50us:     p.percentile(0.50),
		P99us:     p.percentile(0.99),
		P999us:    p.percentile(0.999),
		MeanUs:    round1(p.meanLatency()),
		Errors:    p.errors.Load(),
		Failures:  p.failures.Load(),
		Timeouts:  p.timeouts.Load(),
	}
	if secs > 0 {
		r.AnnouncesPerS = round1(float64(r.Announces) / secs)
	}
	if r.Announces > 0 {
		r.MeanReplyBytes = round1(float64(p.bytes.Load()) / float64(r.Announces))
	}
	if wall > 0 {
		// as a fraction of one core
		r.LoadgenCPU = round3(float64(cpu1-cpu0) / float64(wall))
		if srvOK {
			v := round3(float64(srv1-srv0) / float64(wall))
			r.ServerCPU = &v
		}
		if s0.watchOK && s1.watchOK {
			v := round3((s1.watched - s0.watched).Seconds())
			r.WatchedCPUSeconds = &v
			sy := round3((s1.wsys - s0.wsys).Seconds())
			r.WatchedSysSeconds = &sy
		}
		for k, dst := range []**float64{&r.ServerCoreBusy, &r.LoadgenCoreBusy} {
			a, b := s0.cores[k], s1.cores[k]
			if a[2] == 1 && b[2] == 1 && b[1] > a[1] {
				v := round3(float64(b[0]-a[0]) / float64(b[1]-a[1]))
				*dst = &v
			}
		}
	}
	return r
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

func fatal(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	flag.StringVar(&cfg.mode, "mode", "udp", "udp or http")
	flag.StringVar(&cfg.target, "target", "127.0.0.1:6969", "tracker host:port (loopback)")
	flag.IntVar(&cfg.peers, "peers", 200000, "number of distinct peers")
	flag.IntVar(&cfg.torrents, "torrents", 4000, "number of torrents (peer i is in torrent i % torrents)")
	flag.IntVar(&cfg.numwant, "numwant", 50, "numwant sent with every announce")
	flag.DurationVar(&cfg.duration, "duration", 20*time.Second, "measured window")
	flag.DurationVar(&cfg.rampup, "rampup", time.Second, "load before the measured window that is not counted")
	flag.BoolVar(&cfg.warmup, "warmup", false, "announce every peer once (event=started) before measuring")
	flag.IntVar(&cfg.conns, "conns", 64, "HTTP: keep-alive connections (one request in flight each)")
	flag.IntVar(&cfg.inflight, "inflight", 256, "UDP: outstanding requests in total")
	flag.IntVar(&cfg.sockets, "sockets", 4, "UDP: sockets the outstanding requests are spread over")
	flag.DurationVar(&cfg.timeout, "timeout", time.Second, "a request without a reply after this is a timeout")
	flag.BoolVar(&cfg.jsonOut, "json", false, "print one JSON result line on stdout")
	flag.IntVar(&cfg.serverPid, "server-pid", 0, "optional: pid of the server, to report its CPU use over each phase")
	flag.IntVar(&cfg.srvCore, "server-core", -1, "optional: the server's core, to report how busy it was (/proc/stat)")
	flag.IntVar(&cfg.genCore, "loadgen-core", -1, "optional: the load generator's core, to report how busy it was (/proc/stat)")
	watch := flag.String("watch-pids", "", "optional: comma-separated pids (e.g. Redis servers) whose summed CPU over the counted window is reported")
	flag.Parse()
	for _, f := range strings.Split(*watch, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			fatal("bad flags: -watch-pids takes positive pids separated by commas, got %q", f)
		}
		cfg.watchPids = append(cfg.watchPids, pid)
	}

	if cfg.peers < 1 || cfg.torrents < 1 || cfg.numwant < 0 || cfg.duration <= 0 || cfg.timeout <= 0 {
		fatal("bad flags: need -peers >= 1, -torrents >= 1, -numwant >= 0, -duration > 0, -timeout > 0")
	}
	if cfg.timeout > time.Minute {
		fatal("-timeout must be at most 1m")
	}
	initPeers()

	var e engine
	var err error
	switch cfg.mode {
	case "udp":
		if cfg.sockets < 1 || cfg.inflight < cfg.sockets || cfg.inflight/cfg.sockets > maxSlotsPerSocket {
			fatal("bad flags: need 1 <= -sockets <= -inflight and -inflight/-sockets <= %d", maxSlotsPerSocket)
		}
		e, err = newUDPEngine(cfg.target, cfg.sockets, cfg.inflight/cfg.sockets)
	case "http":
		if cfg.conns < 1 {
			fatal("bad flags: -conns must be >= 1")
		}
		e, err = newHTTPEngine(cfg.target, cfg.conns)
	default:
		fatal("-mode must be udp or http, got %q", cfg.mode)
	}
	if err != nil {
		fatal("%v", err)
	}

	// Interrupted: exit at once (the parent kills us on its own failures).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "loadgen: %v, exiting\n", s)
		os.Exit(130)
	}()

	res := result{Mode: cfg.mode, Target: cfg.target, Peers: cfg.peers, Torrents: cfg.torrents, Numwant: cfg.numwant}
	if cfg.mode == "udp" {
		res.Inflight, res.Sockets = cfg.inflight/cfg.sockets*cfg.sockets, cfg.sockets
	} else {
		res.Conns = cfg.conns
	}

	if cfg.warmup {
		fmt.Fprintf(os.Stderr, "loadgen: %s warmup: announcing %d peers once (event=started)\n", cfg.mode, cfg.peers)
		p := newPhase("warmup", 2, true, nowNs(), 0, 0)
		w := runPhase(e, p)
		res.Warmup = &w
		fmt.Fprintf(os.Stderr, "loadgen: warmup done in %.1fs: %d ok, %d errors, %d timeouts\n",
			w.Seconds, w.Announces, w.Errors, w.Timeouts)
	}
	fmt.Fprintf(os.Stderr, "loadgen: %s measuring %v (after %v ramp-up)\n", cfg.mode, cfg.duration, cfg.rampup)
	p := newPhase("measure", 0, false, nowNs(), cfg.duration, cfg.rampup)
	res.phaseResult = runPhase(e, p)
	e.close()

	if cfg.jsonOut {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	} else {
		r := res.phaseResult
		fmt.Printf("%s %s: %.0f announces/s  p50 %.0f µs  p99 %.0f µs  p99.9 %.0f µs  errors %d (failures %d)  timeouts %d  reply %.1f B  loadgen cpu %.0f%%",
			cfg.mode, cfg.target, r.AnnouncesPerS, r.P50us, r.P99us, r.P999us, r.Errors, r.Failures, r.Timeouts, r.MeanReplyBytes, r.LoadgenCPU*100)
		if r.ServerCPU != nil {
			fmt.Printf("  server cpu %.0f%%", *r.ServerCPU*100)
		}
		if r.ServerCoreBusy != nil && r.LoadgenCoreBusy != nil {
			fmt.Printf("  cores busy %.0f%% / %.0f%%", *r.ServerCoreBusy*100, *r.LoadgenCoreBusy*100)
		}
		fmt.Println()
	}
}
