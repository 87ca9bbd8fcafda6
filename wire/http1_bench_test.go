package wire

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// memConn is a net.Conn that reads from a buffer and discards writes.
type memConn struct{ r *bytes.Reader }

func (c *memConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error)        { return len(p), nil }
func (c *memConn) Close() error                       { return nil }
func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// browserHead is a typical browser request head.
const browserHead = "POST /cart/items?ref=home HTTP/1.1\r\nHost: shop.test\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-GB,en;q=0.9\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\nCookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n" +
	"Referer: https://shop.test/items/\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nitem=1234"

// BenchmarkHTTP1Head compares what wire adds to each HTTP/1 request (the
// capture of the head, BeginRequest with its framing facts, the return to
// idle) with net/http's own parse of the same head, measured in the same
// run: the ratio of "wire" to "net-http-parse" is the overhead.
func BenchmarkHTTP1Head(b *testing.B) {
	raw := []byte(browserHead)
	parsed, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 4096)
		mc := &memConn{r: bytes.NewReader(raw)}
		for b.Loop() {
			mc.r.Reset(raw)
			c := &Conn{Conn: mc, limit: 64 << 10}
			_, _ = c.Read(buf)
			r := parsed.WithContext(context.WithValue(context.Background(), connKey{}, c))
			BeginRequest(r)
			ConnState(c, http.StateIdle)
			_ = c.Close()
		}
	})
	b.Run("net-http-parse", func(b *testing.B) {
		b.ReportAllocs()
		br := bufio.NewReader(nil)
		rd := bytes.NewReader(raw)
		for b.Loop() {
			rd.Reset(raw)
			br.Reset(rd)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}
