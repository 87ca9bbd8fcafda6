package wire

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestParseHead(t *testing.T) {
	tests := []struct {
		name               string
		raw                string
		method, uri, proto string
		host               string
		simple             bool
		header, value      string
	}{
		{"ordinary", "GET /a?b=1 HTTP/1.1\r\nHost: shop.test\r\nX-A: 1\r\n\r\n", "GET", "/a?b=1", "HTTP/1.1", "shop.test", false, "X-A", "1"},
		{"http/0.9 simple", "GET /\r\n", "GET", "/", "HTTP/0.9", "", true, "", ""},
		{"trailing space no version", "GET / \r\nHost: h\r\n\r\n", "GET", "/", "HTTP/0.9", "h", true, "", ""},
		{"odd version", "GET \\index.html HTTP\\1.0\r\nHost: h\r\n\r\n", "GET", "\\index.html", "HTTP\\1.0", "h", false, "", ""},
		{"future version", "GET / HTTP/4.0\r\nHost: h\r\n\r\n", "GET", "/", "HTTP/4.0", "h", false, "", ""},
		{"space in target", "GET /a b HTTP/1.1\r\n\r\n", "GET", "/a b", "HTTP/1.1", "", false, "", ""},
		{"bare LF", "POST /x HTTP/1.0\nContent-Type: a\n\n", "POST", "/x", "HTTP/1.0", "", false, "Content-Type", "a"},
		{"empty host kept", "GET / HTTP/1.0\r\nHost:\r\n\r\n", "GET", "/", "HTTP/1.0", "", false, "Host", ""},
		{"folded header", "GET / HTTP/1.1\r\nX-F: a\r\n b\r\n\r\n", "GET", "/", "HTTP/1.1", "", false, "X-F", "a b"},
		{"line without colon skipped", "GET / HTTP/1.1\r\ngarbage\r\nX-A: 2\r\n\r\n", "GET", "/", "HTTP/1.1", "", false, "X-A", "2"},
		{"CR inside value", "GET / HTTP/1.1\r\nX-A: a\rInjected: b\r\n\r\n", "GET", "/", "HTTP/1.1", "", false, "X-A", "a\rInjected: b"},
		{"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", "GET", "/", "HTTP/1.1", "", false, "", ""},
		{"empty", "", "GET", "/", "HTTP/0.9", "", true, "", ""},
		{"truncated head", "GET /long HTTP/1.1\r\nX-A: 1", "GET", "/long", "HTTP/1.1", "", false, "X-A", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, simple := ParseHead([]byte(tt.raw))
			if r.Method != tt.method || r.RequestURI != tt.uri || r.Proto != tt.proto || r.Host != tt.host || simple != tt.simple {
				t.Errorf("got %q %q %q host=%q simple=%v", r.Method, r.RequestURI, r.Proto, r.Host, simple)
			}
			if tt.header != "" {
				if vs, ok := r.Header[tt.header]; !ok || vs[0] != tt.value {
					t.Errorf("header %s = %q", tt.header, vs)
				}
			}
			if r.Body != http.NoBody || r.URL == nil {
				t.Error("body or URL missing")
			}
		})
	}
}

func TestServerErrorReadsStatusAndReason(t *testing.T) {
	tests := []struct {
		in     string
		status int
		reason string
		ok     bool
	}{
		{"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request", 400, "Bad Request", true},
		{"HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n505", 505, "unsupported protocol version", true},
		{"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431", 431, "Request Header Fields Too Large", true},
		{"HTTP/1.1 417 Expectation Failed\r\nDate: x\r\nConnection: close\r\n\r\n", 417, "Expectation Failed", true},
		{"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n", 0, "", false},
		{"partial body bytes HTTP/1.1 400 x\r\n", 0, "", false},
		{"HTTP/1.1 100 Continue\r\n\r\n", 0, "", false},
		{"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n", 0, "", false},
	}
	for _, tt := range tests {
		status, reason, ok := serverError([]byte(tt.in))
		if ok != tt.ok || status != tt.status || reason != tt.reason {
			t.Errorf("%q: got %d %q %v", tt.in[:20], status, reason, ok)
		}
	}
}

// TestNextHeadIsCapturedBehindTheBody: whatever part of a request's body
// and of the next request net/http reads before or while the handler runs,
// the next capture starts exactly at the next request's head.
func TestNextHeadIsCapturedBehindTheBody(t *testing.T) {
	const head = "POST / HTTP/1.1\r\nHost: h\r\n"
	const next = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
	tests := []struct {
		name    string
		framing string // framing header lines
		body    string
	}{
		{"content-length", "Content-Length: 3\r\n", "abc"},
		{"no body", "", ""},
		{"chunked", "Transfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"},
		{"chunked with extension and trailer", "Transfer-Encoding: chunked\r\n", "3;x=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n"},
		{"long body", "Content-Length: 100000\r\n", strings.Repeat("x", 100000)},
	}
	for _, tt := range tests {
		whole := head + tt.framing + "\r\n" + tt.body + next
		headLen := len(head + tt.framing + "\r\n")
		// Every split: the first part is read before the handler starts
		// (at least the head), the rest while it runs.
		// net/http reads at most 4 KiB past the head before the handler.
		for split := headLen; split <= min(len(whole), headLen+4096); split += max(1, len(whole)/97, 4096/97) {
			t.Run(fmt.Sprintf("%s/%d", tt.name, split), func(t *testing.T) {
				c := &Conn{Conn: &memConn{r: bytes.NewReader(nil)}, limit: 64 << 10, rejected: func(http.ResponseWriter, *http.Request, int, string) {}}
				feed := func(p string) {
					c.Conn.(*memConn).r.Reset([]byte(p))
					buf := make([]byte, len(p)+1)
					for n := 0; n < len(p); {
						k, _ := c.Read(buf[:min(len(buf), 4096)])
						n += k
					}
				}
				feed(whole[:split])
				r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(whole)))
				if err != nil {
					t.Fatal(err)
				}
				r = r.WithContext(context.WithValue(context.Background(), connKey{}, c))
				BeginRequest(r)
				if f, _ := RawFraming(r.Context()); !f.Observed {
					t.Fatal("head not observed")
				}
				if split < len(whole) {
					feed(whole[split:])
				}
				ConnState(c, http.StateIdle)
				if got := string(c.capture); got != next {
					t.Fatalf("next capture %q, want %q", got, next)
				}
			})
		}
	}
}

func TestScanHeadFraming(t *testing.T) {
	tests := []struct {
		name string
		head string
		want Framing
	}{
		{"plain", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n", Framing{Observed: true, ContentLengths: 1}},
		{"CL and TE", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", Framing{Observed: true, ContentLengths: 1, TransferEncodings: 1}},
		{"identical CLs", "POST / HTTP/1.1\r\ncontent-length: 3\r\nCONTENT-LENGTH:3 \r\n\r\n", Framing{Observed: true, ContentLengths: 2}},
		{"differing CLs", "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", Framing{Observed: true, ContentLengths: 2, ContentLengthsDiffer: true}},
		{"bare LF", "POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n", Framing{Observed: true, TransferEncodings: 1}},
		{"leading empty lines", "\r\nPOST / HTTP/1.1\r\n\r\n", Framing{Observed: true}},
		{"look-alike names", "POST / HTTP/1.1\r\nX-Content-Length: 3\r\nContent-Lengths: 3\r\nTransfer-Encodings: x\r\n\r\n", Framing{Observed: true}},
		{"another request's head", "GET /other HTTP/1.1\r\nContent-Length: 3\r\n\r\n", Framing{}},
		{"cut head", "POST / HTTP/1.1\r\nContent-Length: 3\r\n", Framing{}},
	}
	r := &http.Request{Method: "POST", RequestURI: "/"}
	for _, tt := range tests {
		if got, _ := scanHead([]byte(tt.head), r); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// FuzzBodyTracker: wherever net/http ends a chunked body it reads, the
// tracker ends it at the same byte, or gives up; it never ends it elsewhere
// and never waits for more.
func FuzzBodyTracker(f *testing.F) {
	for _, s := range []string{"3\r\nabc\r\n0\r\n\r\n", "3;a=b\r\nabc\r\n0\r\nX: y\r\n\r\n", "0\n\n", "1\r\na\n0\r\n\r\n", "0\r\nX: 1\r\n\r\r\n", "F\r\n"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, body []byte, step uint8) {
		const head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		br := bufio.NewReader(bytes.NewReader(append([]byte(head), body...)))
		r, err := http.ReadRequest(br)
		if err != nil {
			t.Skip()
		}
		_, err = io.Copy(io.Discard, r.Body)
		end := len(body) - br.Buffered()
		tr := newBodyTracker(r)
		n, rest := 0, body
		for len(rest) > 0 && tr.state != trackDone && tr.state != trackLost {
			piece := rest[:min(len(rest), int(step)+1)]
			k := tr.feed(piece)
			n += k
			rest = rest[k:]
			if k < len(piece) && tr.state != trackDone && tr.state != trackLost {
				t.Fatalf("stopped inside a piece in state %d", tr.state)
			}
		}
		// Where net/http fails the body it closes the connection, so what
		// the tracker makes of those bytes never matters.
		if err == nil && tr.state == trackDone && n != end {
			t.Fatalf("net/http ends the body at %d, the tracker at %d (%q)", end, n, body)
		}
		if err == nil && tr.state != trackDone && tr.state != trackLost {
			t.Fatalf("net/http read the whole body, the tracker is still in state %d (%q)", tr.state, body)
		}
	})
}

func TestHasHeaderLine(t *testing.T) {
	raw := []byte("GET / HTTP/1.0\r\nhost:\r\nX-A: 1\r\n\r\n")
	if !hasHeaderLine(raw, "Host") || hasHeaderLine(raw, "Cookie") {
		t.Error("hasHeaderLine")
	}
	if hasHeaderLine([]byte("Host: x\r\n\r\n"), "Host") {
		t.Error("the request line is not a header line")
	}
}

// FuzzParseHead: any bytes parse without panic into a request that the
// pipeline can use (method, URL, header map, empty body).
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET /\r\n", "\x00\xff\r\n\r\n", "GET  /  HTTP/1.1  \r\n : x\r\n\r\n",
		" \tGET / HTTP/1.1\r\n\tfold\r\n\r\n", "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, _ := ParseHead(raw)
		if r.Method == "" || r.URL == nil || r.Header == nil || r.Body != http.NoBody || r.Proto == "" {
			t.Fatalf("unusable request from %q: %+v", raw, r)
		}
		if strings.Contains(r.Method, " ") {
			t.Fatalf("method with space: %q", r.Method)
		}
		_ = hasHeaderLine(raw, "Host")
		_, _ = scanHead(raw, r)
	})
}
