package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawOrigin is a loopback HTTP/1.1 origin written by hand, so that tests
// can make it misbehave: answer is called for every request head read on
// a connection (with the connection's request count) and writes the raw
// response; returning false closes the connection.
type rawOrigin struct {
	ln      net.Listener
	accepts atomic.Int32
	wg      sync.WaitGroup
}

func startRawOrigin(t *testing.T, answer func(w io.Writer, r *http.Request, n int) bool) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rawOrigin{ln: ln}
	o.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.accepts.Add(1)
			o.wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				br := bufio.NewReader(c)
				for n := 1; ; n++ {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, r.Body)
					if !answer(c, r, n) {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() { _ = ln.Close(); o.wg.Wait() })
	return o
}

func testFastPath(t *testing.T, addr string) *fastPath {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	d := &net.Dialer{Timeout: 5 * time.Second}
	f := newFastPath("http", host, port, false, d.DialContext, 4, time.Minute, 1<<20)
	t.Cleanup(f.close)
	return f
}

func fastGet(t *testing.T, f *fastPath, ctx context.Context) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+f.addr+"/x", nil)
	req.Header.Set("User-Agent", "test")
	resp, err := f.roundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, string(b), err
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func TestFastPathReusesConnections(t *testing.T) {
	o := startRawOrigin(t, func(w io.Writer, _ *http.Request, _ int) bool {
		_, _ = io.WriteString(w, okResponse)
		return true
	})
	f := testFastPath(t, o.ln.Addr().String())
	for i := range 5 {
		if _, body, err := fastGet(t, f, context.Background()); err != nil || body != "ok" {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
	}
	if n := o.accepts.Load(); n != 1 {
		t.Fatalf("%d connections for 5 sequential requests, want 1 (keep-alive)", n)
	}
}

func TestFastPathConnectionNotReused(t *testing.T) {
	tests := []struct {
		name     string
		response string
		readAll  bool
		keep     bool // the origin keeps the connection open
	}{
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true, false},
		{"body until close", "HTTP/1.1 200 OK\r\n\r\nok", true, false},
		{"body not read to the end", okResponse, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := startRawOrigin(t, func(w io.Writer, _ *http.Request, _ int) bool {
				_, _ = io.WriteString(w, tt.response)
				return tt.keep
			})
			f := testFastPath(t, o.ln.Addr().String())
			for i := range 2 {
				req, _ := http.NewRequest(http.MethodGet, "http://"+f.addr+"/", nil)
				resp, err := f.roundTrip(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if tt.readAll {
					_, _ = io.ReadAll(resp.Body)
				}
				_ = resp.Body.Close()
			}
			if n := o.accepts.Load(); n != 2 {
				t.Fatalf("%d connections, want 2 (the first may not be reused)", n)
			}
		})
	}
}

// An origin that closes every connection after one response without
// saying so: the next request finds the kept connection closed and is
// sent again on a new one, as http.Transport does for a request without
// a body.
func TestFastPathResendsOnConnectionClosedWhileIdle(t *testing.T) {
	o := startRawOrigin(t, func(w io.Writer, _ *http.Request, _ int) bool {
		_, _ = io.WriteString(w, okResponse)
		return false
	})
	f := testFastPath(t, o.ln.Addr().String())
	for i := range 4 {
		if _, body, err := fastGet(t, f, context.Background()); err != nil || body != "ok" {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
	}
	if n := o.accepts.Load(); n != 4 {
		t.Fatalf("%d connections, want 4", n)
	}
}

func TestFastPathInformationalResponses(t *testing.T) {
	hints := "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
	tests := []struct {
		name    string
		n1xx    int
		wantErr bool
	}{
		{"one 103", 1, false},
		{"five 103", 5, false},
		{"six 103", 6, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := startRawOrigin(t, func(w io.Writer, _ *http.Request, _ int) bool {
				_, _ = io.WriteString(w, strings.Repeat(hints, tt.n1xx)+okResponse)
				return true
			})
			f := testFastPath(t, o.ln.Addr().String())
			var got []string
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					got = append(got, h.Get("Link"))
					return nil
				},
			})
			_, body, err := fastGet(t, f, ctx)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error after too many 1xx responses")
				}
				return
			}
			if err != nil || body != "ok" || len(got) != tt.n1xx || got[0] != "</a.css>; rel=preload" {
				t.Fatalf("body %q, err %v, 1xx seen %q", body, err, got)
			}
		})
	}
}

func TestFastPathRefusesBadHeadersAndHugeHeads(t *testing.T) {
	o := startRawOrigin(t, func(w io.Writer, r *http.Request, _ int) bool {
		if r.URL.Path == "/huge" {
			_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 4096)+"\r\nContent-Length: 2\r\n\r\nok")
			return true
		}
		_, _ = io.WriteString(w, okResponse)
		return true
	})
	host, port, _ := net.SplitHostPort(o.ln.Addr().String())
	d := &net.Dialer{Timeout: 5 * time.Second}
	f := newFastPath("http", host, port, false, d.DialContext, 4, time.Minute, 1024)
	t.Cleanup(f.close)

	req, _ := http.NewRequest(http.MethodGet, "http://"+f.addr+"/", nil)
	req.Header["X-Bad"] = []string{"a\r\nInjected: 1"}
	if _, err := f.roundTrip(req); err == nil || !strings.Contains(err.Error(), "invalid header field value") {
		t.Fatalf("header with CRLF: %v, want an invalid header error", err)
	}
	if n := o.accepts.Load(); n != 0 {
		t.Fatalf("%d connections opened for a refused request, want none", n)
	}
	req, _ = http.NewRequest(http.MethodGet, "http://"+f.addr+"/huge", nil)
	if _, err := f.roundTrip(req); !errors.Is(err, errHeadTooLarge) {
		t.Fatalf("response head over the limit: %v, want %v", err, errHeadTooLarge)
	}
}

func TestFastPathCancelEndsTheWait(t *testing.T) {
	release := make(chan struct{})
	o := startRawOrigin(t, func(w io.Writer, _ *http.Request, _ int) bool {
		<-release
		return false
	})
	defer close(release)
	f := testFastPath(t, o.ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := fastGet(t, f, ctx)
		errc <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for o.accepts.Load() == 0 && time.Now().Before(deadline) { // the request is on its way
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled request: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("canceling the request did not end the wait for the response")
	}
}

func TestFastPathTakes(t *testing.T) {
	f := &fastPath{addr: "127.0.0.1:80"}
	body := func(n int) io.ReadCloser { return io.NopCloser(strings.NewReader(strings.Repeat("a", n))) }
	tests := []struct {
		name string
		mod  func(r *http.Request)
		want bool
	}{
		{"plain GET", func(r *http.Request) {}, true},
		{"small body", func(r *http.Request) { r.Method, r.Body, r.ContentLength = "POST", body(100), 100 }, true},
		{"body at the limit", func(r *http.Request) { r.Body, r.ContentLength = body(fastBodyMax), fastBodyMax }, true},
		{"large body", func(r *http.Request) { r.Body, r.ContentLength = body(fastBodyMax+1), fastBodyMax+1 }, false},
		{"body of unknown length", func(r *http.Request) { r.Body, r.ContentLength = body(10), -1 }, false},
		{"chunked", func(r *http.Request) { r.TransferEncoding = []string{"chunked"} }, false},
		{"trailers", func(r *http.Request) { r.Trailer = http.Header{"X-T": nil} }, false},
		{"upgrade", func(r *http.Request) { r.Header.Set("Upgrade", "websocket") }, false},
		{"expect", func(r *http.Request) { r.Header.Set("Expect", "100-continue") }, false},
		{"https", func(r *http.Request) { r.URL.Scheme = "https" }, false},
		{"CONNECT", func(r *http.Request) { r.Method = http.MethodConnect }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
			tt.mod(r)
			if got := f.takes(r); got != tt.want {
				t.Fatalf("takes = %v, want %v", got, tt.want)
			}
		})
	}
	if (*fastPath)(nil).takes(&http.Request{}) {
		t.Fatal("a nil fast path takes requests")
	}
	for _, c := range []struct{ scheme, host string }{{"https", "a.test"}, {"http", "bücher.test"}, {"http", ""}} {
		if newFastPath(c.scheme, c.host, "", false, nil, 1, time.Second, 1) != nil {
			t.Errorf("fast path built for %s://%s", c.scheme, c.host)
		}
	}
	if newFastPath("http", "a.test", "", true, nil, 1, time.Second, 1) != nil {
		t.Error("fast path built for an h2c upstream")
	}
}

func TestFastPathBodies(t *testing.T) {
	got := make(chan string, 4)
	o := startRawOrigin(t, func(w io.Writer, r *http.Request, _ int) bool {
		// rawOrigin discarded the body; the head says what was announced.
		got <- r.Method + " " + r.Header.Get("Content-Length")
		_, _ = io.WriteString(w, okResponse)
		return true
	})
	f := testFastPath(t, o.ln.Addr().String())
	tests := []struct {
		name    string
		body    string
		length  int64
		wantErr string
	}{
		{"whole body", strings.Repeat("a", 4096), 4096, ""},
		{"shorter than announced", "abc", 10, "ContentLength=10 with Body length 3"},
		{"longer than announced", "abcdef", 3, "ContentLength=3 with Body length 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+f.addr+"/", nil)
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(tt.body)), tt.length
			resp, err := f.roundTrip(req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if head := <-got; head != "POST 4096" {
				t.Fatalf("origin saw %q", head)
			}
		})
	}
}
