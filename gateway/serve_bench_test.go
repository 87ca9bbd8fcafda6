package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// BenchmarkServeOff is the uninspected path end to end, as bench/run.sh's
// portcullis-off row drives it (issue 14): the real Server (wire,
// admission, send timeout, pipeline with waf.mode off, ReverseProxy) on a
// loopback listener, keep-alive clients in parallel, and a loopback origin
// that answers 1024 bytes. Client and origin are hand-written HTTP/1.1
// loops that allocate nothing per request, so allocs/op is Portcullis's
// own (server side and its upstream transport).
func BenchmarkServeOff(b *testing.B) {
	benchServe(b, basicConfig+"waf:\n  mode: off\n", false)
}

// BenchmarkServeDefault is BenchmarkServeOff with the default detection
// profile (waf.profile: portcullis, blocking), with response inspection on
// as in bench/run.sh's portcullis-default row: the attack gets 403.
func BenchmarkServeDefault(b *testing.B) {
	benchServe(b, `upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
waf:
  response_inspection:
    enabled: true
`, true)
}

// workloadRequests are bench/run.sh's three requests, raw: the benign GET
// with Firefox's headers, the 4 KB form POST and the SQL injection GET.
func workloadRequests() (get, post, attack string) {
	const browser = "Host: shop.example\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
		"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n" +
		"Connection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\n" +
		"Sec-Fetch-Mode: navigate\r\nSec-Fetch-Site: none\r\nSec-Fetch-User: ?1\r\nPriority: u=0, i\r\n\r\n"
	get = "GET /products?category=shoes&page=2&sort=price HTTP/1.1\r\n" + browser
	attack = "GET /?id=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\n" + browser
	form := "name=" + strings.Repeat("Ada+Lovelace+wrote+about+the+analytical+engine+", 84)
	post = "POST /contact HTTP/1.1\r\nHost: shop.example\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0\r\n" +
		"Accept: text/html\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"Content-Length: " + strconv.Itoa(len(form)) + "\r\n\r\n" + form
	return get, post, attack
}

// TestUninspectedAllocs pins the allocations per request of the
// uninspected path (waf.mode off) end to end, as BenchmarkServeOff
// measures them: the whole process's allocations while one keep-alive
// client that allocates nothing sends the request and reads the answer
// from an origin that allocates nothing. Counts, not time: a stage or a
// wrapper that starts allocating per request shows here (issue 14; before
// the direct path of proxy/direct.go a GET took 96).
func TestUninspectedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on the measured path")
	}
	origin := startRawOrigin(t)
	tp := startProxy(t, basicConfig+"waf:\n  mode: off\n", "http://"+origin)
	get, post, attack := workloadRequests()
	for _, tc := range []struct {
		name, req string
		max       float64 // allocations per request
	}{{"get", get, 60}, {"post", post, 54}, {"attack", attack, 60}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(tp.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReaderSize(c, 16<<10)
			req := []byte(tc.req)
			var failed error
			once := func() {
				if _, err := c.Write(req); err != nil {
					failed = err
					return
				}
				if status, n, err := readRawResponse(br); err != nil || status != 200 || n != 1024 {
					failed = fmt.Errorf("response: status %d, %d body bytes, %v", status, n, err)
				}
			}
			for range 50 { // pools and buffers warm, the upstream connection open
				once()
			}
			allocs := testing.AllocsPerRun(500, once)
			if failed != nil {
				t.Fatal(failed)
			}
			t.Logf("%.1f allocations per request", allocs)
			if allocs > tc.max {
				t.Errorf("%.1f allocations per uninspected %s, want at most %.0f", allocs, tc.name, tc.max)
			}
		})
	}
}

// benchServe drives the three workloads of bench/run.sh (benign GET, 4 KB
// form POST, SQL injection GET) through a server for cfg; blocks says
// whether the attack is refused.
func benchServe(b *testing.B, cfg string, blocks bool) {
	origin := startRawOrigin(b)
	tp := startProxy(&testing.T{}, cfg, "http://"+origin)
	addr := strings.TrimPrefix(tp.URL, "http://")
	get, post, attack := workloadRequests()
	attackStatus := 200
	if blocks {
		attackStatus = 403
	}
	for _, tc := range []struct {
		name, req string
		status    int
	}{{"get", get, 200}, {"post", post, 200}, {"attack", attack, attackStatus}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8) // 16 connections on 2 cores, as wrk's many
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				br := bufio.NewReaderSize(c, 16<<10)
				req := []byte(tc.req)
				for pb.Next() {
					if _, err := c.Write(req); err != nil {
						b.Error(err)
						return
					}
					status, n, err := readRawResponse(br)
					if err != nil || status != tc.status || status == 200 && n != 1024 {
						b.Errorf("response: status %d, %d body bytes, %v", status, n, err)
						return
					}
				}
			})
		})
	}
}

// startRawOrigin serves a fixed 200 with a 1024-byte text/html body on
// loopback, reading and discarding request bodies (Content-Length only).
func startRawOrigin(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("x", 1024))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 16<<10)
				for {
					n, err := readRawHead(br)
					if err != nil {
						return
					}
					if _, err := br.Discard(int(n)); err != nil {
						return
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			})
		}
	})
	b.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// readRawHead reads one message head and returns its Content-Length (0 if
// none).
func readRawHead(br *bufio.Reader) (int64, error) {
	var n int64
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if first {
				continue
			}
			return n, nil
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			n, err = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return 0, err
			}
		}
	}
}

// readRawResponse reads one response with a Content-Length body and
// returns its status and body size.
func readRawResponse(br *bufio.Reader) (status int, n int64, err error) {
	line, err := br.Peek(12)
	if err != nil {
		return 0, 0, err
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, 0, err
	}
	if n, err = readRawHead(br); err != nil {
		return 0, 0, err
	}
	_, err = br.Discard(int(n))
	return status, n, err
}
