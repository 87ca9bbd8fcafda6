package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/portcullis-waf/portcullis/audit"
)

// h2Client is a raw HTTP/2 client on one TLS connection.
type h2Client struct {
	conn  *tls.Conn
	fr    *http2.Framer
	block bytes.Buffer
	enc   *hpack.Encoder
}

func dialH2(t *testing.T, tp *testProxy, roots *x509.CertPool) *h2Client {
	t.Helper()
	c, err := tls.Dial("tcp", strings.TrimPrefix(tp.HTTPS, "https://"), &tls.Config{ServerName: "shop.test", RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	h := &h2Client{conn: c, fr: http2.NewFramer(c, c)}
	h.enc = hpack.NewEncoder(&h.block)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	_, _ = io.WriteString(c, http2.ClientPreface)
	_ = h.fr.WriteSettings()
	return h
}

// request encodes a POST for path with extra fields.
func (h *h2Client) request(path string, extra ...string) []byte {
	h.block.Reset()
	kv := append([]string{":method", "POST", ":scheme", "https", ":authority", "shop.test", ":path", path,
		"user-agent", "Mozilla/5.0", "accept", "text/html", "content-type", "application/x-www-form-urlencoded"}, extra...)
	for i := 0; i+1 < len(kv); i += 2 {
		_ = h.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return bytes.Clone(h.block.Bytes())
}

// closed reads until the server closes the connection or sends GOAWAY,
// and reports whether it did (false: the connection's deadline, set by
// dialH2 against a hung test, ran out first).
func (h *h2Client) closed() bool {
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			return true
		}
	}
}

// h2Proxy runs a proxy with an https listener (site shop.test) in front of
// handler; extra is appended to the configuration.
func h2Proxy(t *testing.T, handler http.Handler, extra string, setup ...func(*Server)) (*testProxy, *x509.CertPool) {
	t.Helper()
	up := httptest.NewServer(handler)
	t.Cleanup(up.Close)
	certFile, keyFile, roots := writeCert(t, t.TempDir(), "shop.test", "api.test")
	cfg := strings.NewReplacer("CERTFILE", certFile, "KEYFILE", keyFile).Replace(tlsConfig) + extra
	return startProxy(t, cfg, up.URL, setup...), roots
}

// recordsWhere waits until n records satisfy match and returns them.
func (tp *testProxy) recordsWhere(t *testing.T, n int, match func(*audit.Entry) bool) []*audit.Entry {
	t.Helper()
	var found []*audit.Entry
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		found = found[:0]
		tp.records.mu.Lock()
		for _, e := range tp.records.entries {
			if match(e) {
				found = append(found, e)
			}
		}
		tp.records.mu.Unlock()
		if len(found) >= n {
			break
		}
	}
	return found
}

// inspectedRule logs every request the rule engine inspects.
const inspectedRule = `waf:
  rules_before:
    - inline: 'SecRule REQUEST_METHOD "@rx ." "id:10020,phase:1,pass,log,msg:''inspected''"'
`

// TestHTTP2CancelledStreamIsNeitherInspectedNorForwarded (issue 18): a
// stream reset by its client before its inspection began runs no rule and
// never reaches the upstream; its record has a fixed stage and reason.
func TestHTTP2CancelledStreamIsNeitherInspectedNorForwarded(t *testing.T) {
	var reached atomic.Int64
	tp, roots := h2Proxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cancelled" {
			reached.Add(1)
		}
	}), inspectedRule)
	h := dialH2(t, tp, roots)
	// The body never comes: the request waits for it, then the stream is
	// reset.
	_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, BlockFragment: h.request("/cancelled", "content-length", "3")})
	_ = h.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	found := tp.recordsWhere(t, 1, func(e *audit.Entry) bool { return e.URI == "/cancelled" })
	if len(found) != 1 {
		t.Fatalf("%d records for the cancelled stream", len(found))
	}
	if e := found[0]; e.Stage != audit.StageProtocol || e.Reason != "stream cancelled by the client before inspection" || len(e.Rules) != 0 || e.Status != 499 {
		t.Errorf("record stage=%s reason=%q status=%d rules=%v", e.Stage, e.Reason, e.Status, ruleIDs(e))
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the upstream got the cancelled request %d times", n)
	}
}

// TestHTTP2RapidResetIsCut (issue 18): a connection that opens and resets
// streams in a loop is closed once it goes past its budget, with one record
// that counts the streams instead of one per stream. The budgets' clock is
// held still, so no token comes back while the client sends, whatever the
// machine's speed: the stream past the per-connection burst (200 resets,
// wire's connResetBurst) is the one that cuts.
func TestHTTP2RapidResetIsCut(t *testing.T) {
	frozen := time.Now()
	tp, roots := h2Proxy(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), "",
		func(s *Server) { s.h2clients.SetClock(func() time.Time { return frozen }) })
	h := dialH2(t, tp, roots)
	block := h.request("/")
	sent := 0
	for id := uint32(1); sent < 5000; id += 2 {
		if h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true, BlockFragment: block}) != nil ||
			h.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
		sent++
	}
	if !h.closed() {
		t.Fatalf("the connection is still open after %d streams opened and reset", sent)
	}
	found := tp.recordsWhere(t, 1, func(e *audit.Entry) bool { return e.Method == "PRI" })
	if len(found) != 1 {
		t.Fatalf("%d connection records", len(found))
	}
	if e := found[0]; e.Stage != audit.StageProtocol || e.Action != audit.ActionBlocked || !strings.Contains(e.Reason, "rapid reset") ||
		!strings.Contains(e.Reason, "(201 streams opened, 201 reset by the client in 0s)") || e.Host != "shop.test" || e.Protocol != "HTTP/2.0" {
		t.Errorf("record action=%s stage=%s host=%q reason=%q", e.Action, e.Stage, e.Host, e.Reason)
	}
}

// TestHTTP2ContinuationFloodIsCut (issue 18): a header block that goes on in
// CONTINUATION frames that decode to nothing is cut, and recorded once.
func TestHTTP2ContinuationFloodIsCut(t *testing.T) {
	for _, tt := range []struct {
		name    string
		payload []byte
	}{
		{"empty frames", nil},
		{"table size updates", bytes.Repeat([]byte{0x20}, 1000)}, // "dynamic table size: 0"
	} {
		t.Run(tt.name, func(t *testing.T) {
			tp, roots := h2Proxy(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), "")
			h := dialH2(t, tp, roots)
			// The block never holds a field (the decoder's table stays
			// empty, where size updates are allowed anywhere).
			_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: tt.payload})
			for i := 0; i < 100000; i++ {
				if h.fr.WriteContinuation(1, false, tt.payload) != nil {
					break
				}
			}
			if !h.closed() {
				t.Fatal("the connection is still open")
			}
			found := tp.recordsWhere(t, 1, func(e *audit.Entry) bool { return e.Method == "PRI" })
			if len(found) != 1 || !strings.Contains(found[0].Reason, "CONTINUATION flood") || found[0].Stage != audit.StageProtocol {
				for _, e := range found {
					t.Logf("record: %s %q", e.Stage, e.Reason)
				}
				t.Fatalf("%d connection records", len(found))
			}
		})
	}
}
