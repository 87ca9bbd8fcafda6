package wire

import (
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

func TestBeyondRequest(t *testing.T) {
	head := "POST / HTTP/1.1\r\nHost: h\r\n\r\n"
	tests := []struct {
		name     string
		capture  string
		cl       int64
		chunked  bool
		leftover string
	}{
		{"nothing beyond", head + "abc", 3, false, ""},
		{"smuggled after content-length", head + "abcGET /x HTTP/1.1\r\n", 3, false, "GET /x HTTP/1.1\r\n"},
		{"body not all captured", head + "ab", 3, false, ""},
		{"chunked then next", head + "3\r\nabc\r\n0\r\n\r\nNEXT", -1, true, "NEXT"},
		{"chunked with trailer", head + "1\r\na\r\n0\r\nX-T: 1\r\n\r\nNEXT", -1, true, "NEXT"},
		{"chunked incomplete", head + "5\r\nab", -1, true, ""},
		{"no head end", "GET / HTTP/1.1\r\nHost", 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{ContentLength: tt.cl}
			if tt.chunked {
				r.TransferEncoding = []string{"chunked"}
			}
			if got := string(beyondRequest([]byte(tt.capture), r)); got != tt.leftover {
				t.Errorf("leftover %q, want %q", got, tt.leftover)
			}
		})
	}
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
		_, _ = chunkedLength(raw)
	})
}
