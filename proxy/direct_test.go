package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/respond"
)

// capturingOrigin is a loopback HTTP/1.1 origin that hands every request
// it reads, head and body byte for byte, to got, and answers with answer.
type capturingOrigin struct {
	addr string
	got  chan []byte
	mu   sync.Mutex
	resp string
}

func startCapturingOrigin(t *testing.T) *capturingOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &capturingOrigin{addr: ln.Addr().String(), got: make(chan []byte, 1)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				br := bufio.NewReader(c)
				for {
					var raw []byte
					n := 0
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						raw = append(raw, line...)
						if k, v, ok := strings.Cut(strings.TrimRight(string(line), "\r\n"), ":"); ok && strings.EqualFold(k, "Content-Length") {
							n, _ = strconv.Atoi(strings.TrimSpace(v))
						}
						if len(line) == 2 {
							break
						}
					}
					body := make([]byte, n)
					if _, err := io.ReadFull(br, body); err != nil {
						return
					}
					o.got <- append(raw, body...)
					o.mu.Lock()
					resp := o.resp
					o.mu.Unlock()
					if _, err := io.WriteString(c, resp); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return o
}

// TestDirectHeadMatchesReverseProxy sends the same requests through a
// route on the direct path and through the same route on ReverseProxy,
// and compares what the upstream received, byte for byte, and what the
// client got: the direct path is an optimisation, not a second proxy.
func TestDirectHeadMatchesReverseProxy(t *testing.T) {
	o := startCapturingOrigin(t)
	u, rc := frontConfig(t, "upstreams:\n  - name: app\n    targets: [\"http://"+o.addr+"/base\"]\n"+
		"sites:\n  - hosts: [\"*\"]\n    routes:\n      - path: /\n        upstream: app\n")
	pool := NewPool(u, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(pool.Close)
	direct := NewRoute(pool, rc)
	viaRP := NewRoute(pool, rc)
	viaRP.direct = false
	if !direct.direct {
		t.Fatal("the route does not take the direct path")
	}

	const browser = "Host: shop.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0\r\n" +
		"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n" +
		"Sec-Fetch-Dest: document\r\nPriority: u=0, i\r\n"
	const plain = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n" +
		"X-Request-Id: from-upstream\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 5\r\n\r\nhello"
	tests := []struct {
		name, req, resp string
		direct          bool
	}{
		{"browser GET", "GET /products?category=shoes&page=2 HTTP/1.1\r\n" + browser + "\r\n", plain, true},
		{"forwarding and hop-by-hop headers", "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: keep-alive, TE\r\nTE: trailers, deflate\r\n" +
			"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6\r\n" +
			"X-Real-IP: 6.6.6.6\r\nTrue-Client-IP: 6.6.6.6\r\nX-Request-Id: forged\r\nKeep-Alive: 300\r\nProxy-Authorization: x\r\n" +
			"Proxy-Connection: keep-alive\r\nX-Original-URL: /admin\r\n\r\n", plain, true},
		{"no User-Agent, Connection close", "GET /a HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n", plain, true},
		{"empty User-Agent", "GET /a HTTP/1.1\r\nHost: a.example\r\nUser-Agent:\r\n\r\n", plain, true},
		{"two User-Agents, repeated header", "GET /a HTTP/1.1\r\nHost: a.example\r\nUser-Agent: one\r\nUser-Agent: two\r\nX-Custom: a\r\nX-Custom: b\r\n\r\n", plain, true},
		{"unparsable query", "GET /a?x=1;y=2&z=%zz&w=3 HTTP/1.1\r\nHost: a.example\r\n\r\n", plain, true},
		{"empty query", "GET /a? HTTP/1.1\r\nHost: a.example\r\n\r\n", plain, true},
		{"encoded slash", "GET /a%2Fb/c?q=%41 HTTP/1.1\r\nHost: a.example\r\n\r\n", plain, true},
		{"form POST", "POST /contact HTTP/1.1\r\nHost: a.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nname=Ada+L.", plain, true},
		{"empty POST", "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 0\r\n\r\n", plain, true},
		{"PUT without a length", "PUT /x HTTP/1.1\r\nHost: a.example\r\n\r\n", plain, true},
		{"DELETE with a body", "DELETE /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\n\r\nabc", plain, true},
		{"HTTP/1.0 without Host", "GET /old HTTP/1.0\r\n\r\n", plain, true},
		{"HEAD", "HEAD /x HTTP/1.1\r\nHost: a.example\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", true},
		{"cookies", "GET /x HTTP/1.1\r\nHost: a.example\r\nCookie: a=1; b=2\r\n\r\n", plain, true},
		{"chunked response with trailers", "GET /t HTTP/1.1\r\nHost: a.example\r\nTE: trailers\r\n\r\n",
			"HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n", true},
		{"early hints", "GET /e HTTP/1.1\r\nHost: a.example\r\n\r\n",
			"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + plain, true},
		{"no content", "GET /n HTTP/1.1\r\nHost: a.example\r\n\r\n", "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", true},
		{"event stream", "GET /s HTTP/1.1\r\nHost: a.example\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\nContent-Length: 6\r\n\r\ndata:1", true},
		// ReverseProxy's own: a Connection token that names a header.
		{"Connection names a header", "GET /x HTTP/1.1\r\nHost: a.example\r\nConnection: X-Secret\r\nX-Secret: 1\r\n\r\n", plain, false},
	}
	serve := func(t *testing.T, rt *Route, raw string, wantDirect bool) ([]byte, *http.Response, []byte) {
		t.Helper()
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatal(err)
		}
		req.RemoteAddr = "192.0.2.7:40000"
		if got := rt.takesDirect(req); rt == direct && got != wantDirect {
			t.Fatalf("takesDirect = %v", got)
		}
		e := &audit.Entry{ID: "0123456789abcdef", ClientIP: "192.0.2.7"}
		rec := &headerLog{ResponseRecorder: httptest.NewRecorder()}
		rec.Header().Set(respond.RequestIDHeader, e.ID)
		rt.ServeHTTP(rec, req.WithContext(audit.WithEntry(context.Background(), e)))
		var sent []byte
		select {
		case sent = <-o.got:
		default:
			t.Fatalf("nothing reached the upstream; status %d, record %s", rec.Code, e.Reason)
		}
		res := rec.Result()
		body, _ := io.ReadAll(res.Body)
		return sent, res, append([]byte(strings.Join(rec.heads, "\n")+"\n\n"), body...)
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			o.mu.Lock()
			o.resp = c.resp
			o.mu.Unlock()
			wantSent, want, wantBody := serve(t, viaRP, c.req, false)
			gotSent, got, gotBody := serve(t, direct, c.req, c.direct)
			if !bytes.Equal(gotSent, wantSent) {
				t.Errorf("upstream received\n%q\nwant (ReverseProxy)\n%q", gotSent, wantSent)
			}
			if got.StatusCode != want.StatusCode || !reflect.DeepEqual(got.Header, want.Header) ||
				!reflect.DeepEqual(got.Trailer, want.Trailer) || !bytes.Equal(gotBody, wantBody) {
				t.Errorf("client got %d %v %v %q, want (ReverseProxy) %d %v %v %q", got.StatusCode, got.Header, got.Trailer, gotBody,
					want.StatusCode, want.Header, want.Trailer, wantBody)
			}
		})
	}
}

// headerLog records every head the handler writes, informational (1xx)
// ones included: httptest.ResponseRecorder keeps only the first, so with a
// 103 the final status and headers would go unchecked.
type headerLog struct {
	*httptest.ResponseRecorder
	heads []string
}

func (h *headerLog) WriteHeader(code int) {
	h.heads = append(h.heads, fmt.Sprintf("%d %v", code, h.Header())) // %v prints a map's keys sorted
	h.ResponseRecorder.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the recorder's Flush.
func (h *headerLog) Unwrap() http.ResponseWriter { return h.ResponseRecorder }
