// Command uploads is the upload soak of issue 8, proof item 4: "a 10 MB
// upload with body inspection on stays within the configured memory limit
// (no whole-body copies beyond the limit); RSS after 1,000 such uploads
// returns to baseline."
//
// It builds ./cmd/portcullis (or takes -bin), starts it on loopback in front
// of an upstream inside this process that checks every body byte for byte,
// sends -n uploads of -size bytes with -c at a time, and prints the memory of
// the Portcullis process: resident set (VmRSS, VmHWM from /proc/PID/status)
// after a warm-up, its peak during the soak, right after it and after an idle
// pause, with the Go heap from the admin listener's /metrics, Coraza's
// temporary files, and the status of every upload (all must be 200).
//
// Two kinds of upload, alternating by default (-kind):
//   - multipart: POST /upload, multipart/form-data with one file part,
//     inspected by the full CRS (paranoia 1, blocking);
//   - raw: PUT /raw/NAME, application/octet-stream, on a route with the
//     operator's rules only (crs: false) and body inspection on. With the CRS
//     a raw body is parsed as a form (CRS rule 901340) and is refused by
//     920420 unless allowed; see bench/FAST.md, "Bodies".
//
// Everything it starts is killed on exit, also on Ctrl-C or -timeout, and
// every socket is on 127.0.0.1. See bench/README.md, "Uploads".
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
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
)

type options struct {
	bin         string
	n, c        int
	warmup      int
	size        int
	kind        string
	memoryLimit string
	idle        time.Duration
	timeout     time.Duration
	keep        bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "portcullis binary (default: go build ./cmd/portcullis into the temp dir)")
	flag.IntVar(&o.n, "n", 1000, "uploads in the soak")
	flag.IntVar(&o.c, "c", 4, "uploads in flight at once")
	flag.IntVar(&o.warmup, "warmup", 8, "uploads before the baseline is taken")
	flag.IntVar(&o.size, "size", 10<<20, "bytes of file content per upload")
	flag.StringVar(&o.kind, "kind", "mixed", "multipart, raw or mixed (alternating)")
	flag.StringVar(&o.memoryLimit, "memory-limit", "256MiB", "server.memory_limit of the Portcullis under test (empty: none)")
	flag.DurationVar(&o.idle, "idle", 150*time.Second, "idle pause after the soak before the last measurement (the Go runtime forces a GC every 2 minutes; its scavenger then returns freed heap to the OS)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (config, logs, audit file)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("[uploads] ")
	if o.n < 1 || o.c < 1 || o.size < 1 || o.warmup < 0 {
		log.Fatal("-n, -c and -size must be positive, -warmup not negative")
	}
	if o.kind != "multipart" && o.kind != "raw" && o.kind != "mixed" {
		log.Fatalf("-kind must be multipart, raw or mixed, got %q", o.kind)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	err := run(ctx, o)
	cancel()
	stop()
	if err != nil {
		log.Fatal(err)
	}
}

// bodies are the exact bytes each kind of upload sends, built once; the
// upstream compares what it receives with them.
type bodies struct {
	raw, multipart []byte
	contentType    string
}

func newBodies(size int) *bodies {
	content := make([]byte, size)
	for i := range content {
		content[i] = byte(1 + (i*7919+i*i*31)%255) // binary, no NUL
	}
	const boundary = "portcullis-upload-soak"
	var mp bytes.Buffer
	mp.WriteString("--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"backup.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n")
	mp.Write(content)
	mp.WriteString("\r\n--" + boundary + "--\r\n")
	return &bodies{raw: content, multipart: mp.Bytes(), contentType: "multipart/form-data; boundary=" + boundary}
}

// upstream checks every body against the one its path says was sent.
type upstream struct {
	b          *bodies
	mismatches atomic.Int64
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		_, _ = io.WriteString(w, "ready\n") // the readiness probe
		return
	}
	want := u.b.multipart
	if strings.HasPrefix(r.URL.Path, "/raw/") {
		want = u.b.raw
	}
	buf := make([]byte, 64<<10)
	off, same := 0, true
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if off+n > len(want) || !bytes.Equal(buf[:n], want[off:off+n]) {
				same = false
			}
			off += n
		}
		if err != nil {
			same = same && errors.Is(err, io.EOF)
			break
		}
	}
	if !same || off != len(want) {
		u.mismatches.Add(1)
		http.Error(w, fmt.Sprintf("body differs: %d bytes received, %d sent", off, len(want)), http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, "stored\n")
}

func run(ctx context.Context, o options) error {
	tmp, err := os.MkdirTemp("", "portcullis-uploads-")
	if err != nil {
		return err
	}
	if o.keep {
		log.Printf("temp dir %s is kept", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if o.bin == "" {
		o.bin = filepath.Join(tmp, "portcullis")
		log.Printf("building ./cmd/portcullis")
		build := exec.CommandContext(ctx, "go", "build", "-o", o.bin, "./cmd/portcullis")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/portcullis (run from the repository root): %w", err)
		}
	}

	b := newBodies(o.size)
	up := &upstream{b: b}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	upSrv := &http.Server{Handler: up, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = upSrv.Serve(upLn) }()
	defer upSrv.Close()

	port, err := freePort()
	if err != nil {
		return err
	}
	adminPort, err := freePort()
	if err != nil {
		return err
	}
	// Coraza's temporary files (request bodies past 128 KiB, multipart file
	// parts) go to TMPDIR: a directory of their own shows what is on disk
	// during the soak and that nothing is left behind.
	spool := filepath.Join(tmp, "spool")
	if err := os.Mkdir(spool, 0o700); err != nil {
		return err
	}
	cfgPath := filepath.Join(tmp, "portcullis.yaml")
	if err := os.WriteFile(cfgPath, []byte(config(port, adminPort, upLn.Addr().String(), o.memoryLimit, filepath.Join(tmp, "audit.jsonl"))), 0o600); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(tmp, "portcullis.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(o.bin, "run", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "TMPDIR="+spool)
	// Should this program die without cleaning up, the kernel ends the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitReady(ctx, base, exited, filepath.Join(tmp, "portcullis.log")); err != nil {
		return err
	}
	log.Printf("portcullis (pid %d) on %s, admin on :%d, upstream on %s", pid, base, adminPort, upLn.Addr())

	client := &http.Client{
		Timeout:   2 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.c, DisableCompression: true},
	}
	defer client.CloseIdleConnections()
	metrics := func() map[string]float64 {
		return scrape(ctx, client, fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort))
	}

	// Warm-up: connections, pooled transactions, the rule automata built on
	// first use. Then a pause, and the baseline.
	startup := readStatus(pid)
	if _, err := soak(ctx, client, base, b, o.kind, o.warmup, o.c, nil); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	baseline := readStatus(pid)
	baseMetrics := metrics()
	// Reset VmHWM, so that the peak below is the soak's, not start-up's.
	resetPeak := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)

	samp := newSampler(pid, spool)
	go samp.run(ctx)
	log.Printf("soak: %d uploads of %d bytes (%s), %d at a time", o.n, o.size, o.kind, o.c)
	// Checkpoints: RSS and heap after every tenth of the soak show whether
	// memory levels off (a working set) or keeps growing (a leak).
	type checkpoint struct {
		done       int
		rssKB      int64
		heapInuse  float64
		heapGoal   float64
		gcs        float64
		spoolFiles int
	}
	var checkpoints []checkpoint
	var cpMu sync.Mutex
	step := max(1, o.n/10)
	progress := func(done int) {
		if done%step != 0 && done != o.n {
			return
		}
		m := metrics()
		files, _ := spoolUsage(spool)
		cpMu.Lock()
		checkpoints = append(checkpoints, checkpoint{done, readStatus(pid).rssKB, m["go_memstats_heap_inuse_bytes"], m["go_memstats_next_gc_bytes"], m["go_gc_duration_seconds_count"], files})
		cpMu.Unlock()
	}
	start := time.Now()
	counts, err := soak(ctx, client, base, b, o.kind, o.n, o.c, progress)
	took := time.Since(start)
	samp.stop()
	if err != nil {
		return err
	}
	end := readStatus(pid)
	endMetrics := metrics()
	log.Printf("soak done in %s; idle %s", took.Round(time.Millisecond), o.idle)
	shortIdle := min(15*time.Second, o.idle)
	idleStart := time.Now()
	wait := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := wait(shortIdle); err != nil {
		return err
	}
	short := readStatus(pid)
	shortMetrics := metrics()
	if err := wait(o.idle - time.Since(idleStart)); err != nil {
		return err
	}
	idle := readStatus(pid)
	idleMetrics := metrics()
	leftover, leftBytes := spoolUsage(spool)

	// The report.
	mib := func(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }
	fmt.Printf("\n## Upload soak: %d × %s uploads (%s), %d at a time, in %s\n\n", o.n, sizeName(o.size), o.kind, o.c, took.Round(time.Second))
	limit := o.memoryLimit
	if limit == "" {
		limit = "none"
	}
	fmt.Printf("server.memory_limit: %s; request_body.limit: 13MiB (default); body in memory up to 128 KiB, then Coraza's temp file\n\n", limit)
	fmt.Println("| Portcullis process | VmRSS | VmHWM | heap in use | heap released to the OS | Go sys |")
	fmt.Println("|---|---|---|---|---|---|")
	row := func(name string, s procStatus, m map[string]float64, hwm string) {
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", name, mib(s.rssKB), hwm, mb(m, "go_memstats_heap_inuse_bytes"), mb(m, "go_memstats_heap_released_bytes"), mb(m, "go_memstats_sys_bytes"))
	}
	row("after start-up", startup, nil, mib(startup.hwmKB))
	row("baseline (after warm-up + 2 s)", baseline, baseMetrics, mib(baseline.hwmKB)+" (start-up peak)")
	peak := "n/a"
	if resetPeak == nil {
		peak = mib(end.hwmKB)
	}
	fmt.Printf("| during the soak (max of VmRSS polled every 100 ms / VmHWM) | %s | %s | | | |\n", mib(samp.maxRSS.Load()), peak)
	row("right after the soak", end, endMetrics, "")
	if shortIdle < o.idle {
		row(fmt.Sprintf("after %s idle", shortIdle), short, shortMetrics, "")
	}
	row(fmt.Sprintf("after %s idle", o.idle), idle, idleMetrics, "")
	fmt.Println()
	sort.Slice(checkpoints, func(i, j int) bool { return checkpoints[i].done < checkpoints[j].done })
	fmt.Println("| uploads done | VmRSS | heap in use | next GC at | GC cycles |")
	fmt.Println("|---|---|---|---|---|")
	for _, cp := range checkpoints {
		fmt.Printf("| %d | %s | %.1f MiB | %.1f MiB | %.0f |\n", cp.done, mib(cp.rssKB), cp.heapInuse/(1<<20), cp.heapGoal/(1<<20), cp.gcs-baseMetrics["go_gc_duration_seconds_count"])
	}
	fmt.Println()
	fmt.Printf("- RSS after %s idle vs baseline: %+.1f MiB; GC cycles during soak and idle: %.0f\n",
		o.idle, float64(idle.rssKB-baseline.rssKB)/1024, idleMetrics["go_gc_duration_seconds_count"]-baseMetrics["go_gc_duration_seconds_count"])
	fmt.Printf("- Coraza temp files (TMPDIR of the server): at most %d files, %.1f MiB at once during the soak; %d files (%d bytes) left after it\n",
		samp.maxFiles.Load(), float64(samp.maxSpool.Load())/(1<<20), leftover, leftBytes)
	fmt.Printf("- open fds: %.0f at baseline, %.0f after idle; goroutines: %.0f at baseline, %.0f after idle\n",
		baseMetrics["process_open_fds"], idleMetrics["process_open_fds"], baseMetrics["go_goroutines"], idleMetrics["go_goroutines"])
	fmt.Printf("- status: %s; upstream body mismatches: %d\n", formatCounts(counts), up.mismatches.Load())

	if counts[http.StatusOK] != o.n || up.mismatches.Load() != 0 {
		return fmt.Errorf("not every upload got 200 with its body intact: %s", formatCounts(counts))
	}
	if leftover > 0 {
		return fmt.Errorf("%d temporary files left in %s", leftover, spool)
	}
	return nil
}

func config(port, adminPort int, upstream, memoryLimit, auditFile string) string {
	server := ""
	if memoryLimit != "" {
		server = "server:\n  memory_limit: " + memoryLimit + "\n"
	}
	return fmt.Sprintf(`# written by bench/uploads
listeners:
  - address: "127.0.0.1:%d"
%supstreams:
  - name: app
    targets: ["http://%s"]
sites:
  - hosts: ["*"]
    routes:
      - path: /raw/
        upstream: app
        waf:
          crs: false
      - path: /
        upstream: app
waf:
  mode: block
  paranoia: 1
audit:
  file: %s
admin:
  listen: "127.0.0.1:%d"
  auth: none
`, port, server, upstream, auditFile, adminPort)
}

// soak sends n uploads, c at a time, and counts the statuses (0: no answer).
func soak(ctx context.Context, client *http.Client, base string, b *bodies, kind string, n, c int, progress func(done int)) (map[int]int, error) {
	var next, done atomic.Int64
	var mu sync.Mutex
	counts := map[int]int{}
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				status, err := send(ctx, client, base, b, kind == "raw" || kind == "mixed" && i%2 == 1, i)
				mu.Lock()
				counts[status]++
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if d := int(done.Add(1)); progress != nil {
					progress(d)
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return counts, fmt.Errorf("stopped after %s: %w", formatCounts(counts), err)
	}
	if firstErr != nil {
		log.Printf("first failed upload: %v", firstErr)
	}
	return counts, nil
}

func send(ctx context.Context, client *http.Client, base string, b *bodies, raw bool, i int) (int, error) {
	method, url, body, ctype := "POST", base+"/upload", b.multipart, b.contentType
	if raw {
		method, url, body, ctype = "PUT", fmt.Sprintf("%s/raw/backup-%d.bin", base, i), b.raw, "application/octet-stream"
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	// A name, not 127.0.0.1: CRS 920350 flags a numeric Host.
	req.Host = "uploads.bench.test"
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0")
	req.Header.Set("Accept", "*/*")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s (request id %s)", method, url, resp.StatusCode, bytes.TrimSpace(msg), resp.Header.Get("X-Request-Id"))
	}
	return resp.StatusCode, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady waits until Portcullis answers (compiling the CRS takes seconds).
func waitReady(ctx context.Context, base string, exited <-chan error, logPath string) error {
	deadline := time.Now().Add(60 * time.Second)
	c := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("portcullis exited (%v): %s", err, lastLine(out))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/", nil)
		req.Host = "uploads.bench.test"
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("portcullis did not answer within 60 s")
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// procStatus is the memory of a process from /proc/PID/status, in KiB.
type procStatus struct{ rssKB, hwmKB int64 }

func readStatus(pid int) procStatus {
	var s procStatus
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			s.rssKB = kb
		case "VmHWM":
			s.hwmKB = kb
		}
	}
	return s
}

// sampler polls the server's RSS and its temp dir every 100 ms.
type sampler struct {
	pid                        int
	spool                      string
	maxRSS, maxFiles, maxSpool atomic.Int64
	done                       chan struct{}
	once                       sync.Once
}

func newSampler(pid int, spool string) *sampler {
	return &sampler{pid: pid, spool: spool, done: make(chan struct{})}
}

func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if rss := readStatus(s.pid).rssKB; rss > s.maxRSS.Load() {
			s.maxRSS.Store(rss)
		}
		files, size := spoolUsage(s.spool)
		if int64(files) > s.maxFiles.Load() {
			s.maxFiles.Store(int64(files))
		}
		if size > s.maxSpool.Load() {
			s.maxSpool.Store(size)
		}
		select {
		case <-t.C:
		case <-s.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (s *sampler) stop() { s.once.Do(func() { close(s.done) }) }

// spoolUsage counts the files in dir and their bytes.
func spoolUsage(dir string) (int, int64) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	var total int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			total += info.Size()
		}
	}
	return len(entries), total
}

// scrape reads the gauges and counters of a Prometheus text page.
func scrape(ctx context.Context, client *http.Client, url string) map[string]float64 {
	out := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return out
	}
	resp, err := client.Do(req)
	if err != nil {
		log.Printf("metrics: %v", err)
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.Contains(line, "{") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = v
		}
	}
	return out
}

func mb(m map[string]float64, name string) string {
	v, ok := m[name]
	if !ok {
		return ""
	}
	return fmt.Sprintf("%.1f MiB", v/(1<<20))
}

func sizeName(n int) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}

func formatCounts(counts map[int]int) string {
	codes := make([]int, 0, len(counts))
	for c := range counts {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		name := strconv.Itoa(c)
		if c == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s × %d", name, counts[c]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
