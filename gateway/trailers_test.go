package gateway

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
)

// trailerUpstream records the trailer fields of every request it receives.
type trailerUpstream struct {
	mu       sync.Mutex
	trailers []http.Header
}

func (u *trailerUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	u.mu.Lock()
	u.trailers = append(u.trailers, r.Trailer.Clone())
	u.mu.Unlock()
}

func (u *trailerUpstream) received() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.trailers...)
}

const sqliTrailer = "X-Cmd: 1' UNION SELECT password FROM users--\r\n"

// chunkedWithTrailers is a form POST whose chunked body ends with the given
// trailer lines; declare lists them in a Trailer header (or not).
func chunkedWithTrailers(trailers string, declare string) string {
	head := "POST /form HTTP/1.1\r\nHost: portcullis.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n" +
		"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
	if declare != "" {
		head += "Trailer: " + declare + "\r\n"
	}
	return head + "\r\n7\r\nname=ok\r\n0\r\n" + trailers + "\r\n"
}

// TestRequestTrailersAreInspected (issue 13): trailer fields are judged by
// the rule engine like header fields (and as input) before anything goes
// upstream: an attack in a trailer is blocked in block mode and recorded in
// detect mode, declared in a Trailer header or not. Clean trailers are
// forwarded, less client-address claims, which are always removed.
func TestRequestTrailersAreInspected(t *testing.T) {
	for _, tt := range []struct {
		name, mode, trailers, declare string
		status                        int
		action                        string
		rule                          int
		forwarded                     http.Header // nil: not forwarded at all
	}{
		{"attack, declared, block", "block", sqliTrailer, "X-Cmd", 403, audit.ActionBlocked, 942100, nil},
		{"attack, undeclared, block", "block", sqliTrailer, "", 403, audit.ActionBlocked, 942100, nil},
		{"attack, detect", "detect", sqliTrailer, "X-Cmd", 200, audit.ActionDetected, 942100,
			http.Header{"X-Cmd": {"1' UNION SELECT password FROM users--"}}},
		{"clean, with client-address claims", "block",
			"X-Checksum: 5d41402abc4b2a76\r\nX-Forwarded-For: 203.0.113.7\r\nForwarded: for=203.0.113.7\r\nX-Real-Ip: 203.0.113.7\r\n",
			"X-Checksum, X-Forwarded-For, Forwarded, X-Real-Ip", 200, "", 0,
			http.Header{"X-Checksum": {"5d41402abc4b2a76"}}},
		// A merging upstream would see Content-Length beside
		// Transfer-Encoding: the rules say so (920181), and the field is
		// never forwarded in a trailer.
		{"framing field", "block", "X-Checksum: 5d41402abc4b2a76\r\nContent-Length: 99\r\n", "", 200, audit.ActionDetected, 920181,
			http.Header{"X-Checksum": {"5d41402abc4b2a76"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := &trailerUpstream{}
			server := httptest.NewServer(up)
			defer server.Close()
			tp := startProxy(t, basicConfig+"waf:\n  mode: "+tt.mode+"\n", server.URL)
			resp := rawExchange(t, strings.TrimPrefix(tp.URL, "http://"), chunkedWithTrailers(tt.trailers, tt.declare))
			r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(resp)), nil)
			if err != nil {
				t.Fatalf("%v: %q", err, resp)
			}
			if r.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tt.status)
			}
			got := up.received()
			switch {
			case tt.forwarded == nil && len(got) != 0:
				t.Errorf("the upstream got the request (trailers %v)", got[0])
			case tt.forwarded != nil && (len(got) != 1 || !sameHeader(got[0], tt.forwarded)):
				t.Errorf("the upstream got trailers %v, want %v", got, tt.forwarded)
			}
			id := r.Header.Get("X-Request-Id")
			if tt.action == "" {
				tp.noEntryFor(t, id)
				return
			}
			e := tp.entryFor(t, id)
			if e.Action != tt.action || e.Stage != audit.StageWAF || !hasRule(e, tt.rule) {
				t.Errorf("record action=%s stage=%s reason=%q rules=%v", e.Action, e.Stage, e.Reason, ruleIDs(e))
			}
			if tt.action == audit.ActionBlocked && !strings.HasPrefix(e.Reason, "request trailers denied by rule") {
				t.Errorf("record reason %q", e.Reason)
			}
		})
	}
}

// TestUninspectedTrailersAreNeverForwarded (issue 13): where the body goes
// upstream before the rule engine has read it all (WAF mode off, a body
// past the limit with inspect_partial), its trailers were never judged, and
// they are dropped.
func TestUninspectedTrailersAreNeverForwarded(t *testing.T) {
	for _, tt := range []struct{ name, waf, body string }{
		{"waf off", "waf:\n  mode: off\n", "7\r\nname=ok\r\n"},
		{"inspect_partial past the limit", "waf:\n  request_body:\n    limit: 1KiB\n    over_limit: inspect_partial\n",
			"800\r\nname=" + strings.Repeat("a", 0x800-5) + "\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := &trailerUpstream{}
			server := httptest.NewServer(up)
			defer server.Close()
			tp := startProxy(t, basicConfig+tt.waf, server.URL)
			raw := "POST /form HTTP/1.1\r\nHost: portcullis.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n" +
				"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nTrailer: X-Cmd\r\nConnection: close\r\n\r\n" +
				tt.body + "0\r\n" + sqliTrailer + "\r\n"
			resp := rawExchange(t, strings.TrimPrefix(tp.URL, "http://"), raw)
			if !strings.HasPrefix(resp, "HTTP/1.1 200") {
				t.Fatalf("%q", firstLine(resp))
			}
			if got := up.received(); len(got) != 1 || len(got[0]) != 0 {
				t.Errorf("the upstream got trailers %v", got)
			}
		})
	}
}

func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, vs := range b {
		if strings.Join(a[k], "\x00") != strings.Join(vs, "\x00") {
			return false
		}
	}
	return true
}

// trailerBody is a request body that fills in the request's trailer when
// its client has sent it all, as a streaming client would.
type trailerBody struct {
	io.Reader
	req    *http.Request
	fields http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		for k, vs := range b.fields {
			b.req.Trailer[k] = vs
		}
	}
	return n, err
}

// TestHTTP2RequestTrailersAreInspected (issue 13): the same over HTTP/2,
// where the trailers come in a HEADERS frame after the DATA frames.
func TestHTTP2RequestTrailersAreInspected(t *testing.T) {
	up := &trailerUpstream{}
	server := httptest.NewServer(up)
	defer server.Close()
	certFile, keyFile, roots := writeCert(t, t.TempDir(), "shop.test", "api.test")
	tp := startProxy(t, strings.NewReplacer("CERTFILE", certFile, "KEYFILE", keyFile).Replace(tlsConfig), server.URL)
	client := httpsClient(strings.TrimPrefix(tp.HTTPS, "https://"), roots, true)
	send := func(fields http.Header) *http.Response {
		t.Helper()
		req, err := http.NewRequest("POST", "https://shop.test/form", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", "Mozilla/5.0")
		req.Header.Set("Accept", "text/html")
		req.Trailer = http.Header{}
		for k := range fields {
			req.Trailer[k] = nil
		}
		req.Body = io.NopCloser(&trailerBody{Reader: strings.NewReader("name=ok"), req: req, fields: fields})
		req.ContentLength = -1
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("protocol %s", resp.Proto)
		}
		return resp
	}
	resp := send(http.Header{"X-Cmd": {"1' UNION SELECT password FROM users--"}})
	if resp.StatusCode != 403 {
		t.Fatalf("attack in a trailer: status %d", resp.StatusCode)
	}
	if e := tp.entryFor(t, resp.Header.Get("X-Request-Id")); !strings.HasPrefix(e.Reason, "request trailers denied by rule") || !hasRule(e, 942100) {
		t.Errorf("record reason %q rules %v", e.Reason, ruleIDs(e))
	}
	if got := up.received(); len(got) != 0 {
		t.Fatalf("the upstream got the blocked request")
	}
	resp = send(http.Header{"X-Checksum": {"5d41402abc4b2a76"}, "X-Forwarded-For": {"203.0.113.7"}})
	if resp.StatusCode != 200 {
		t.Fatalf("clean trailers: status %d", resp.StatusCode)
	}
	if got := up.received(); len(got) != 1 || !sameHeader(got[0], http.Header{"X-Checksum": {"5d41402abc4b2a76"}}) {
		t.Errorf("the upstream got trailers %v", got)
	}
}
