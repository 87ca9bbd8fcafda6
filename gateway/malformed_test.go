package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

// rawExchange sends raw bytes on a new connection and returns everything the
// server answers until it closes (bounded by a deadline). It does not close
// its sending side: net/http takes a half-closed connection for a client
// that went away and cancels the request.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestMalformedRequestsAreRefusedInspectedAndAudited: requests that net/http
// would refuse silently, or accept oddly, get a 400 (431 for huge heads) with
// a request id, and an audit record that the rule engine contributed to.
func TestMalformedRequestsAreRefusedInspectedAndAudited(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig, up.URL)
	addr := strings.TrimPrefix(tp.URL, "http://")
	// Browser-like headers, so that the rules have nothing to say about them.
	const host = "Host: portcullis.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n"
	tests := []struct {
		name   string
		raw    string
		status string // status line prefix, or "" for an HTTP/0.9 body-only answer
		reason string // substring of the record's reason
		rule   int    // a rule that must be in the record, 0 for none required
	}{
		{"fragment in target", "GET /a#frag HTTP/1.1\r\n" + host + "\r\n", "HTTP/1.1 400", "fragment", 0},
		{"HTTP/3.0 on HTTP/1", "GET / HTTP/3.0\r\n" + host + "\r\n", "HTTP/1.1 400", "unsupported protocol version", 0},
		{"HTTP/4.0", "GET / HTTP/4.0\r\n" + host + "\r\n", "HTTP/1.1 400", "unsupported protocol version", 920430},
		{"invalid Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: 12abc\r\n\r\n", "HTTP/1.1 400", "Content-Length", 0},
		{"conflicting Content-Type", "POST / HTTP/1.1\r\n" + host + "Content-Type: application/json\r\nContent-Type: text/xml\r\nContent-Length: 2\r\n\r\n{}", "HTTP/1.1 400", "Content-Type", 920620},
		{"header line without colon", "GET / HTTP/1.1\r\n" + host + "this is not a header\r\n\r\n", "HTTP/1.1 400", "", 0},
		{"missing Host", "GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", "HTTP/1.1 400", "Host", 920280},
		{"invalid Host", "GET / HTTP/1.1\r\nHost: evil%00.test\r\n\r\n", "HTTP/1.1 400", "Host", 0},
		{"HTTP/0.9 simple request", "GET /\r\n\r\n", "", "", 920430},
		{"head too large", "GET / HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", "HTTP/1.1 431", "Too Large", 0},
		// Issue 13: a request line over the head limit got an HTTP/0.9-style
		// page without status line.
		{"request line too long", "GET /" + strings.Repeat("a", 70<<10) + " HTTP/1.1\r\n" + host + "\r\n", "HTTP/1.1 414", "request line longer than server.max_header_bytes", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawExchange(t, addr, tt.raw)
			var id string
			if tt.status == "" {
				if strings.HasPrefix(resp, "HTTP/") || !strings.Contains(resp, "request id") {
					t.Fatalf("want an HTTP/0.9 body-only answer, got %q", resp)
				}
				id = resp[strings.Index(resp, "<code>")+6 : strings.Index(resp, "</code>")]
			} else {
				if !strings.HasPrefix(resp, tt.status) {
					t.Fatalf("want %q, got %q", tt.status, firstLine(resp))
				}
				r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(resp)), nil)
				if err != nil {
					t.Fatal(err)
				}
				id = r.Header.Get("X-Request-Id")
				body, _ := io.ReadAll(r.Body)
				if id == "" || !strings.Contains(string(body), id) {
					t.Fatalf("no request id on the answer: %q", resp)
				}
			}
			e := tp.entryFor(t, id)
			if e.Action != audit.ActionBlocked || e.Stage != audit.StageProtocol {
				t.Errorf("record action=%s stage=%s reason=%q", e.Action, e.Stage, e.Reason)
			}
			if !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", e.Reason, tt.reason)
			}
			if tt.rule != 0 && !hasRule(e, tt.rule) {
				t.Errorf("rules %v lack %d", ruleIDs(e), tt.rule)
			}
		})
	}
}

// TestConnectIsRefusedInEveryMode: CONNECT gets 405 and a protocol record
// whatever the WAF mode, and never reaches the upstream (which would see
// "CONNECT /" and could open a raw pipe with a 2xx). A CONNECT whose target
// is not host:port is malformed: 400.
func TestConnectIsRefusedInEveryMode(t *testing.T) {
	var reached atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer up.Close()
	for _, mode := range []string{"block", "detect", "off"} {
		tp := startProxy(t, basicConfig+"waf:\n  mode: \""+mode+"\"\n", up.URL)
		addr := strings.TrimPrefix(tp.URL, "http://")
		for _, tt := range []struct{ target, status, reason string }{
			{"portcullis.test:443", "HTTP/1.1 405", "CONNECT is not served"},
			{"portcullis.test", "HTTP/1.1 400", "CONNECT target is not host:port"},
		} {
			resp := rawExchange(t, addr, "CONNECT "+tt.target+" HTTP/1.1\r\nHost: "+tt.target+"\r\nUser-Agent: Mozilla/5.0\r\n\r\n")
			if !strings.HasPrefix(resp, tt.status) {
				t.Fatalf("%s, CONNECT %s: want %q, got %q", mode, tt.target, tt.status, firstLine(resp))
			}
			r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(resp)), nil)
			if err != nil {
				t.Fatal(err)
			}
			e := tp.entryFor(t, r.Header.Get("X-Request-Id"))
			if e.Action != audit.ActionBlocked || e.Stage != audit.StageProtocol || !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("%s, CONNECT %s: record action=%s stage=%s reason=%q", mode, tt.target, e.Action, e.Stage, e.Reason)
			}
		}
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the upstream got %d CONNECT requests", n)
	}
}

// TestSmuggledRequestAfterBodyIsAudited: bytes after a Content-Length body
// form a second request on the same connection; when net/http refuses it, its
// record shows what was smuggled.
func TestSmuggledRequestAfterBodyIsAudited(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig, up.URL)
	raw := "POST /ok HTTP/1.1\r\nHost: portcullis.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\nContent-Length: 4\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\na=bcGPOST /smuggled HTTP/1.1\r\nHost: portcullis.test\r\nContent-Length: nope\r\n\r\n"
	resp := rawExchange(t, strings.TrimPrefix(tp.URL, "http://"), raw)
	br := bufio.NewReader(strings.NewReader(resp))
	first, err := http.ReadResponse(br, nil)
	if err != nil || first.StatusCode != 200 {
		if first != nil {
			e := tp.entryFor(t, first.Header.Get("X-Request-Id"))
			t.Fatalf("first request: %d %s %v", first.StatusCode, e.Reason, ruleIDs(e))
		}
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, first.Body)
	second, err := http.ReadResponse(br, nil)
	if err != nil || second.StatusCode != 400 {
		t.Fatalf("second response: %v %v (%q)", second, err, resp)
	}
	e := tp.entryFor(t, second.Header.Get("X-Request-Id"))
	if e.Method != "GPOST" || e.URI != "/smuggled" {
		t.Errorf("record of the smuggled request: method %q uri %q", e.Method, e.URI)
	}
}

// TestAmbiguousFramingIsRefused (issue 13): heads whose framing net/http
// normalises before any handler runs — Content-Length beside
// Transfer-Encoding (it drops the length), identical duplicate
// Content-Length lines (it merges them), Transfer-Encoding in HTTP/1.0 (it
// ignores it) — are refused with 400 and a record, never forwarded, and the
// connection is closed, so the bytes a front end might frame differently
// never become a request here.
func TestAmbiguousFramingIsRefused(t *testing.T) {
	var reached atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer up.Close()
	tp := startProxy(t, basicConfig, up.URL)
	addr := strings.TrimPrefix(tp.URL, "http://")
	const head = "Host: portcullis.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\nContent-Type: application/x-www-form-urlencoded\r\n"
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: portcullis.test\r\n\r\n"
	tests := []struct{ name, raw, reason string }{
		{"CL.TE", "POST / HTTP/1.1\r\n" + head + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, "both Transfer-Encoding and Content-Length"},
		{"TE.CL", "POST / HTTP/1.1\r\n" + head + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\na=b\r\n0\r\n\r\n" + smuggled, "both Transfer-Encoding and Content-Length"},
		{"identical Content-Length lines", "POST / HTTP/1.1\r\n" + head + "Content-Length: 3\r\nContent-Length: 3\r\n\r\na=b" + smuggled, "more than one Content-Length header"},
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\n" + head + "Transfer-Encoding: chunked\r\n\r\n3\r\na=b\r\n0\r\n\r\n" + smuggled, "Transfer-Encoding in an HTTP/1.0 request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawExchange(t, addr, tt.raw)
			r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(resp)), nil)
			if err != nil {
				t.Fatalf("%v: %q", err, resp)
			}
			body, _ := io.ReadAll(r.Body)
			if r.StatusCode != http.StatusBadRequest || !r.Close {
				t.Fatalf("status %d, close %v: %q", r.StatusCode, r.Close, resp)
			}
			if rest := resp[strings.Index(resp, string(body))+len(body):]; rest != "" {
				t.Errorf("more after the refusal: %q", rest)
			}
			e := tp.entryFor(t, r.Header.Get("X-Request-Id"))
			if e.Action != audit.ActionBlocked || e.Stage != audit.StageProtocol || !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("record action=%s stage=%s reason=%q", e.Action, e.Stage, e.Reason)
			}
		})
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}

// TestSlowHeadIsRecordedWithItsCause (issue 13): a client that does not
// finish its head within server.read_header_timeout (slowloris) gets a 408
// with a status line, and its record names the timeout rather than a
// generic "Bad Request" (or nothing at all).
func TestSlowHeadIsRecordedWithItsCause(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig+"server:\n  read_header_timeout: 300ms\n", up.URL)
	addr := strings.TrimPrefix(tp.URL, "http://")
	for _, partial := range []string{
		"GET /aaaa", // inside the request line
		"GET / HTTP/1.1\r\nHost: portcullis.test\r\n",             // between header lines
		"GET / HTTP/1.1\r\nHost: portcullis.test\r\nX-A: b\r\n\r", // before the last LF
	} {
		resp := rawExchange(t, addr, partial) // the server closes after its timeout
		r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(resp)), nil)
		if err != nil {
			t.Fatalf("%q: %v: %q", partial, err, resp)
		}
		if r.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("%q: status %d", partial, r.StatusCode)
		}
		e := tp.entryFor(t, r.Header.Get("X-Request-Id"))
		if e.Stage != audit.StageProtocol || e.Status != http.StatusRequestTimeout ||
			e.Reason != "request head not received within server.read_header_timeout (300ms)" {
			t.Errorf("%q: record stage=%s status=%d reason=%q", partial, e.Stage, e.Status, e.Reason)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// TestPipelinedRequestsBehindBodiesAreServed: the raw-head checks follow
// each body to the next head, so requests pipelined behind chunked and
// fixed-length bodies are checked and served, not refused for want of an
// observed head.
func TestPipelinedRequestsBehindBodiesAreServed(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig, up.URL)
	const head = "Host: portcullis.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\nContent-Type: application/x-www-form-urlencoded\r\n"
	raw := "POST /one HTTP/1.1\r\n" + head + "Transfer-Encoding: chunked\r\n\r\n7\r\nname=ok\r\n0\r\n\r\n" +
		"POST /two HTTP/1.1\r\n" + head + "Content-Length: 7\r\n\r\nname=ok" +
		"POST /three HTTP/1.1\r\n" + head + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n7\r\nname=ok\r\n0\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(rawExchange(t, strings.TrimPrefix(tp.URL, "http://"), raw)))
	for _, path := range []string{"/one", "/two", "/three"} {
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || !strings.HasPrefix(string(body), "POST "+path) {
			t.Fatalf("%s: %d %q", path, r.StatusCode, body)
		}
	}
}
