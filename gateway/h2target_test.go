package gateway

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2MethodAndTargetAreChecked: HTTP/2's :method and :path are free
// strings (the server refuses only CR, LF and NUL), and the proxy writes
// them into an HTTP/1.1 request line. A space there would split that line
// differently upstream than the gateway routed and recorded it, so such
// requests are refused with 400 and never forwarded, whatever the WAF mode.
func TestH2MethodAndTargetAreChecked(t *testing.T) {
	// A raw upstream: a Go server would itself refuse a request line with
	// a space too many, and hide what was sent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var forwarded atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					forwarded.Add(1)
					t.Logf("upstream got %q", strings.TrimSpace(line))
					for {
						l, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if l == "\r\n" {
							break
						}
					}
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				}
			}()
		}
	}()
	certFile, keyFile, roots := writeCert(t, t.TempDir(), "shop.test", "api.test")
	cfg := strings.NewReplacer("CERTFILE", certFile, "KEYFILE", keyFile, "profile: stock-crs # the records checked name CRS rules", "mode: off").Replace(tlsConfig)
	tp := startProxy(t, cfg, "http://"+ln.Addr().String())
	for _, tc := range []struct {
		name, method, path string
		want               string
	}{
		{"space in the method", "GET /admin?", "/public", "400"},
		{"tab in the method", "GET\t/admin", "/public", "400"},
		{"space in the query", "GET", "/a?x=1 HTTP/1.0 y", "400"},
		{"an ordinary request", "GET", "/a?x=1", "200"},
		{"an extension method", "PURGE", "/a", "200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := forwarded.Load()
			h := dialH2(t, tp, roots)
			h.block.Reset()
			for _, kv := range [][2]string{{":method", tc.method}, {":scheme", "https"}, {":authority", "shop.test"}, {":path", tc.path}} {
				_ = h.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
			}
			if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true, BlockFragment: h.block.Bytes()}); err != nil {
				t.Fatal(err)
			}
			status := ""
			for status == "" {
				f, err := h.fr.ReadFrame()
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				switch f := f.(type) {
				case *http2.MetaHeadersFrame:
					status = f.PseudoValue("status")
				case *http2.RSTStreamFrame:
					t.Fatalf("stream reset (%v), want an answer", f.ErrCode)
				case *http2.GoAwayFrame:
					t.Fatalf("GOAWAY (%v), want an answer", f.ErrCode)
				}
			}
			if status != tc.want {
				t.Errorf("status %s, want %s", status, tc.want)
			}
			if got := forwarded.Load() - before; tc.want == "400" && got != 0 {
				t.Errorf("forwarded %d times, want never", got)
			}
		})
	}
}
