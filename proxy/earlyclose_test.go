package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

// failingWriter fails every body write after the first, as a client write
// timeout does while the client stays connected (so the request's context
// is not canceled).
type failingWriter struct {
	*httptest.ResponseRecorder
	n int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n++; w.n > 1 {
		return 0, errors.New("write tcp: i/o timeout")
	}
	return w.ResponseRecorder.Write(p)
}

// TestEarlyCloseDoesNotDrainUpstream: when the copy to the client fails,
// closing the upstream body ends the exchange at once, on the direct path
// and on ReverseProxy's; a body from http.ReadResponse would read an
// endless stream to its end on Close and hold the handler, the upstream
// connection and its slot for as long as the upstream sends.
func TestEarlyCloseDoesNotDrainUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				_, _ = c.Read(buf)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
				for { // endless, until the proxy closes the connection
					if _, err := io.WriteString(c, "5\r\nhello\r\n"); err != nil {
						return
					}
					time.Sleep(time.Millisecond) // pacing, not synchronisation
				}
			}()
		}
	}()
	u, rc := frontConfig(t, "upstreams:\n  - name: app\n    targets: [\"http://"+ln.Addr().String()+"\"]\n"+
		"sites:\n  - hosts: [\"*\"]\n    routes:\n      - path: /\n        upstream: app\n")
	pool := NewPool(u, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(pool.Close)
	for _, direct := range []bool{true, false} {
		rt := NewRoute(pool, rc)
		if !rt.direct {
			t.Fatal("the route does not take the direct path")
		}
		rt.direct = direct
		req := httptest.NewRequest("GET", "http://a.example/stream", nil)
		e := &audit.Entry{ID: "0123456789abcdef", ClientIP: "192.0.2.7"}
		req = req.WithContext(audit.WithEntry(context.Background(), e))
		done := make(chan struct{})
		go func() {
			defer close(done)
			rt.ServeHTTP(&failingWriter{ResponseRecorder: httptest.NewRecorder()}, req)
		}()
		select {
		case <-done:
		case <-time.After(time.Minute): // a hang, not a speed limit: fixed, it returns at once
			t.Fatalf("direct=%v: the handler still reads the upstream's endless stream a minute after the client write failed", direct)
		}
	}
}
