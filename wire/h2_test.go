package wire

//lint:file-ignore SA1019 the test needs x/net/http2's Server.ServeConn to run a real HTTP/2 server on one net.Pipe connection; net/http has no equivalent.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// request is a well-formed request's fields with extra appended.
func request(extra ...string) []hpack.HeaderField {
	f := []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":authority", Value: "shop.test"}, {Name: ":path", Value: "/a?b=c"}}
	return append(f, pairs(extra...)...)
}

func pairs(kv ...string) []hpack.HeaderField {
	var f []hpack.HeaderField
	for i := 0; i+1 < len(kv); i += 2 {
		f = append(f, hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return f
}

var refusalCases = []struct {
	name   string
	fields []hpack.HeaderField
	reason string // "" for a request the server takes
}{
	{"well-formed", request("user-agent", "x", "te", "trailers"), ""},
	{"CONNECT", pairs(":method", "CONNECT", ":authority", "shop.test:443"), ""},
	{"asterisk", pairs(":method", "OPTIONS", ":scheme", "https", ":authority", "shop.test", ":path", "*"), ""},
	{"host equal to authority", request("host", "shop.test"), ""},
	{"host instead of authority", pairs(":method", "GET", ":scheme", "http", ":path", "/", "host", "shop.test"), ""},
	{"empty te", request("te", ""), ""},
	{"upper-case name", request("User-Agent", "x"), "invalid header field name"},
	{"space in name", request("x y", "1"), "invalid header field name"},
	{"empty name", request("", "1"), "invalid header field name"},
	{"NUL in value", request("x-a", "a\x00b"), "invalid value"},
	{"LF in value", request("x-a", "a\nb"), "invalid value"},
	{"pseudo after regular", append(request("x-a", "1"), hpack.HeaderField{Name: ":path", Value: "/x"}), "after a regular header"},
	{"unknown pseudo", append(pairs(":foo", "1"), request()...), "unknown pseudo-header"},
	{"status in request", append(pairs(":status", "200"), request()...), ":status"},
	{"duplicate path", append(request()[:4:4], hpack.HeaderField{Name: ":path", Value: "/b"}), "duplicate pseudo-header"},
	{"missing scheme", pairs(":method", "GET", ":authority", "shop.test", ":path", "/"), "missing :method"},
	{"scheme ftp", pairs(":method", "GET", ":scheme", "ftp", ":authority", "shop.test", ":path", "/"), "missing :method"},
	{"missing path", pairs(":method", "GET", ":scheme", "https", ":authority", "shop.test"), "missing :method"},
	{"CONNECT with path", pairs(":method", "CONNECT", ":authority", "shop.test:443", ":path", "/"), "CONNECT"},
	{"CONNECT without authority", pairs(":method", "CONNECT"), "CONNECT"},
	{"protocol", append(pairs(":protocol", "websocket"), request()...), "extended CONNECT"},
	{"host differs", request("host", "other.test"), "differ"},
	{"two hosts", request("host", "shop.test", "host", "shop.test"), "more than one host"},
	{"userinfo", pairs(":method", "GET", ":scheme", "https", ":authority", "user@shop.test", ":path", "/"), "userinfo"},
	{"bad authority", pairs(":method", "GET", ":scheme", "https", ":authority", "shop test", ":path", "/"), "invalid :authority"},
	{"relative path", pairs(":method", "GET", ":scheme", "https", ":authority", "shop.test", ":path", "a/b"), "bad :path"},
	{"transfer-encoding", request("transfer-encoding", "chunked"), "connection-specific header \"transfer-encoding\""},
	{"connection", request("connection", "keep-alive"), "connection-specific"},
	{"upgrade", request("upgrade", "h2c"), "connection-specific"},
	{"te gzip", request("te", "gzip"), "te other than"},
	{"two te", request("te", "trailers", "te", "trailers"), "te other than"},
}

// scanRefusal is the scanner's report on one request with these fields, or
// "" if it has none.
func scanRefusal(fields []hpack.HeaderField) string {
	c := newClientStream()
	c.headers(1, fields)
	reports, _ := scanReports(c.buf.Bytes(), c.buf.Len())
	if len(reports[1]) == 0 {
		return ""
	}
	return reports[1][0]
}

// TestH2RefusalMatchesTheServer: the scanner names the requests that x/net's
// HTTP/2 server refuses before its handler, and only those (a request both
// reported here and handled there would be recorded twice).
func TestH2RefusalMatchesTheServer(t *testing.T) {
	for _, tc := range refusalCases {
		t.Run(tc.name, func(t *testing.T) {
			got := scanRefusal(tc.fields)
			if (tc.reason == "") != (got == "") || !strings.Contains(got, tc.reason) {
				t.Errorf("the scanner reports %q, want %q", got, tc.reason)
			}
			if answer := serverAnswer(t, tc.fields); answer != expectedAnswer(got) {
				t.Errorf("the server's answer: %s; the scanner reports %q", answer, got)
			}
		})
	}
}

// expectedAnswer is the server's answer that a report's reason announces.
func expectedAnswer(reason string) string {
	switch {
	case reason == "":
		return "handler"
	case strings.HasSuffix(reason, "(the server resets the stream)"):
		return "reset"
	case strings.HasSuffix(reason, "(the server answers 400)"):
		return "400"
	case strings.HasSuffix(reason, "(the server answers 431)"):
		return "431"
	}
	return "unknown"
}

// serverAnswer reports how x/net's HTTP/2 server answers one request with
// these fields (see serverAnswers).
func serverAnswer(t *testing.T, fields []hpack.HeaderField) string {
	t.Helper()
	c := newClientStream()
	c.headers(1, fields)
	return serverAnswers(t, c.buf.Bytes(), map[uint32]int{1: 1})[1][0]
}

// FuzzH2Refusal compares the scanner with the server on arbitrary fields:
// the input is name=value lines appended to a well-formed request's
// pseudo-headers (or replacing them when it starts with "!").
func FuzzH2Refusal(f *testing.F) {
	f.Add("user-agent=x")
	f.Add("Transfer-Encoding=chunked")
	f.Add("!:method=CONNECT\n:authority=a:1")
	f.Add("te=trailers\nhost=shop.test")
	f.Add("!:method=GET\n:scheme=http\n:path=/%zz\n:authority=a")
	f.Add("x=a\x7fb")
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 4096 {
			return // far below the server's header list limit
		}
		var fields []hpack.HeaderField
		if rest, ok := strings.CutPrefix(in, "!"); ok {
			in = rest
		} else {
			fields = request()
		}
		for _, line := range strings.Split(in, "\n") {
			name, value, _ := strings.Cut(line, "=")
			fields = append(fields, hpack.HeaderField{Name: name, Value: value})
		}
		got := scanRefusal(fields)
		if answer := serverAnswer(t, fields); answer != expectedAnswer(got) {
			t.Fatalf("fields %q: the server's answer: %s; the scanner reports %q", fields, answer, got)
		}
	})
}

// clientStream is what an HTTP/2 client sends: the preface, SETTINGS and
// the frames write adds, with one HPACK encoder for all header blocks (so
// later blocks refer to the dynamic table).
type clientStream struct {
	buf   bytes.Buffer
	fr    *http2.Framer
	block bytes.Buffer
	enc   *hpack.Encoder
}

func newClientStream() *clientStream {
	c := &clientStream{}
	c.buf.WriteString(http2Preface)
	c.fr = http2.NewFramer(&c.buf, nil)
	c.enc = hpack.NewEncoder(&c.block)
	_ = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	return c
}

// headers writes one request's whole header block on stream id.
func (c *clientStream) headers(id uint32, fields []hpack.HeaderField) {
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.encode(fields), EndHeaders: true, EndStream: true})
}

func (c *clientStream) encode(fields []hpack.HeaderField) []byte {
	c.block.Reset()
	for _, f := range fields {
		_ = c.enc.WriteField(f)
	}
	return bytes.Clone(c.block.Bytes())
}

// scanReports runs the scanner over a client's bytes, delivered in pieces
// of the given size, and returns its reports by stream, in order.
func scanReports(stream []byte, piece int) (map[uint32][]string, *h2Scanner) {
	got := map[uint32][]string{}
	s := newH2Scanner(0, nil)
	s.refused = func(fields []hpack.HeaderField, reason string) {
		var size uint32
		for _, f := range fields {
			size += f.Size()
		}
		if size > s.listLimit {
			reason = fmt.Sprintf("kept %d bytes of fields, over the limit: %s", size, reason)
		}
		got[s.stream] = append(got[s.stream], reason)
	}
	for p := stream; len(p) > 0; {
		n := min(piece, len(p))
		s.scan(p[:n])
		p = p[n:]
	}
	return got, &s
}

// serverAnswers sends a client's bytes to x/net's HTTP/2 server over an
// in-memory connection and returns its answers to the requests on each of
// the given streams, in order (a stream id may be used again after the
// framer refused it): "handler" (the request reached the handler), its own
// status ("400", "431"), "reset", or "gone" (the connection ended first).
// want is how many answers to wait for.
func serverAnswers(t *testing.T, client []byte, want map[uint32]int) map[uint32][]string {
	t.Helper()
	srv, cli := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&http2.Server{}).ServeConn(srv, &http2.ServeConnOpts{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(299) // only the handler answers 299
		})})
	}()
	defer func() { cli.Close(); <-done }()
	_ = cli.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = cli.Write(client) }()
	fr := http2.NewFramer(io.Discard, cli)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	answers := map[uint32][]string{}
	complete := func() bool {
		for id, n := range want {
			if len(answers[id]) < n {
				return false
			}
		}
		return true
	}
	for !complete() {
		f, err := fr.ReadFrame()
		if err != nil {
			break // GOAWAY and close, or the deadline
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			status := f.PseudoValue("status")
			if status == "299" {
				status = "handler"
			}
			answers[f.StreamID] = append(answers[f.StreamID], status)
		case *http2.RSTStreamFrame:
			// A reset after a response closes that request's stream (the
			// client left it open); only a reset alone answers a request.
			if a := answers[f.StreamID]; len(a) == 0 || a[len(a)-1] == "reset" {
				answers[f.StreamID] = append(answers[f.StreamID], "reset")
			}
		}
	}
	for id, n := range want {
		for len(answers[id]) < n {
			answers[id] = append(answers[id], "gone")
		}
	}
	return answers
}

// TestH2ScannerMatchesTheServer sends frame sequences to x/net's server and
// to the scanner: every stream that did not reach the handler is reported
// (except where the server drops the whole connection: "gone"), none that
// did is, and each report names the server's answer. The bytes reach the
// scanner in pieces of 1, 7, 100 bytes and whole.
func TestH2ScannerMatchesTheServer(t *testing.T) {
	bigValue := strings.Repeat("v", 4000)
	tests := []struct {
		name     string
		write    func(c *clientStream)
		requests map[uint32]int // requests per stream
	}{
		{"frames of every shape", func(c *clientStream) {
			c.headers(1, request("user-agent", "a"))
			smuggle := c.encode(request("user-agent", "a", "transfer-encoding", "chunked", "x-pad", strings.Repeat("p", 300)))
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: smuggle[:10], PadLength: 7, Priority: http2.PriorityParam{StreamDep: 1, Weight: 9}})
			_ = c.fr.WriteContinuation(3, false, smuggle[10:100])
			_ = c.fr.WriteContinuation(3, true, smuggle[100:])
			_ = c.fr.WritePing(false, [8]byte{1})
			_ = c.fr.WriteWindowUpdate(0, 1000)
			c.headers(5, request("User-Agent", "a"))
			c.headers(7, request("user-agent", "a", "te", "gzip"))
			c.headers(9, pairs(":method", "GET", ":scheme", "https", ":authority", "shop.test", ":path", "a"))
			c.headers(11, request("user-agent", "a"))
		}, map[uint32]int{1: 1, 3: 1, 5: 1, 7: 1, 9: 1, 11: 1}},
		{"bad padding skips one frame", func(c *clientStream) {
			c.buf.Write([]byte{0, 0, 1, frameHeaders, flagEndHeaders | flagPadded, 0, 0, 0, 1, 5})
			c.headers(3, request("transfer-encoding", "chunked"))
			c.headers(5, request("user-agent", "a"))
		}, map[uint32]int{1: 1, 3: 1, 5: 1}},
		{"header list over the limit by reference", func(c *clientStream) {
			// One big field, then referred to with one byte per copy: the
			// list grows past the limit while the frame stays small.
			c.headers(1, request("x-big", bigValue))
			fields := request()
			for range 300 {
				fields = append(fields, hpack.HeaderField{Name: "x-big", Value: bigValue})
			}
			c.headers(3, append(fields, hpack.HeaderField{Name: "connection", Value: "close"}))
			c.headers(5, request("user-agent", "a"))
		}, map[uint32]int{1: 1, 3: 1, 5: 1}},
		{"table size updates in a large block", func(c *clientStream) {
			block := append(bytes.Repeat([]byte{0x20}, 200<<10), c.encode(request("user-agent", "a"))...)
			for i := 0; i < len(block); i += 16 << 10 {
				end := min(i+16<<10, len(block))
				if i == 0 {
					_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[i:end], EndHeaders: end == len(block), EndStream: true})
				} else {
					_ = c.fr.WriteContinuation(1, end == len(block), block[i:end])
				}
			}
			c.headers(3, request("transfer-encoding", "chunked"))
		}, map[uint32]int{1: 1, 3: 1}},
		{"a broken literal after an invalid field is skipped, as the server skips it", func(c *clientStream) {
			// A literal without indexing whose Huffman value is invalid:
			// the server no longer decodes it once its emission is off.
			block := append(c.encode(request("User-Agent", "a")), 0x00, 0x01, 'x', 0x81, 0xff)
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true, EndStream: true})
			c.headers(3, request("transfer-encoding", "chunked"))
		}, map[uint32]int{1: 1, 3: 1}},
		{"bad padding on a block that continues", func(c *clientStream) {
			c.buf.Write([]byte{0, 0, 1, frameHeaders, flagPadded, 0, 0, 0, 1, 5})
			c.buf.Write([]byte{0, 0, 3, frameContinuation, flagEndHeaders, 0, 0, 0, 1, 0xff, 0xff, 0xff})
			c.headers(3, request("transfer-encoding", "chunked"))
			c.headers(5, request("User-Agent", "a"))
		}, map[uint32]int{1: 1, 3: 1, 5: 1}},
		{"a stream that depends on itself", func(c *clientStream) {
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.encode(request("user-agent", "a")), EndHeaders: true, EndStream: true, Priority: http2.PriorityParam{StreamDep: 1, Weight: 3}})
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: c.encode(request("transfer-encoding", "chunked")), EndHeaders: true, EndStream: true, PadLength: 2, Priority: http2.PriorityParam{StreamDep: 3}})
			c.headers(5, request("user-agent", "a"))
		}, map[uint32]int{1: 1, 3: 1, 5: 1}},
		{"an invalid field before CONTINUATION closes the connection", func(c *clientStream) {
			block := c.encode(request("User-Agent", "a", "x-pad", strings.Repeat("p", 100)))
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:len(block)-50], EndStream: true})
			_ = c.fr.WriteContinuation(1, true, block[len(block)-50:])
		}, map[uint32]int{1: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClientStream()
			tc.write(c)
			answers := serverAnswers(t, c.buf.Bytes(), tc.requests)
			for _, piece := range []int{1, 7, 100, c.buf.Len()} {
				reports, s := scanReports(c.buf.Bytes(), piece)
				for id := range tc.requests {
					// The scanner reports refused requests only: line the
					// reports up with the answers that are not "handler".
					var refused []string
					for _, a := range answers[id] {
						if a != "handler" {
							refused = append(refused, a)
						}
					}
					got := reports[id]
					for i, answer := range refused {
						reason := ""
						if i < len(got) {
							reason = got[i]
						}
						switch {
						case answer == "gone" && (reason != "" || s.stopped):
							// No answer: the server dropped the connection
							// (the scanner reported the request, or stopped
							// following too), or ignored a stream id used
							// again; either way no handler ran.
						case answer != expectedAnswer(reason):
							t.Errorf("pieces of %d, stream %d: the server's answer %s, the scanner's report %q", piece, id, answer, reason)
						}
					}
					if len(got) > len(refused) {
						t.Errorf("pieces of %d, stream %d: reports %q for answers %v", piece, id, got, answers[id])
					}
				}
				// Where the server kept the connection, the scanner must
				// still be following it.
				gone := false
				for _, as := range answers {
					gone = gone || slices.Contains(as, "gone")
				}
				if !gone && s.stopped {
					t.Errorf("pieces of %d: the scanner stopped following a connection the server kept", piece)
				}
				for _, f := range s.fields {
					if f.Size() > s.listLimit {
						t.Errorf("kept a field of %d bytes", f.Size())
					}
				}
			}
		})
	}

	// A stream the framer refused was never opened, so the server takes
	// its id again for a new request (which it answers with 400 here, or
	// ignores: x/net is not consistent about it; no handler runs either
	// way). Both requests are reported.
	c := newClientStream()
	c.headers(1, request("User-Agent", "a"))
	c.headers(1, request("transfer-encoding", "chunked"))
	c.headers(3, request("connection", "close"))
	if reports, _ := scanReports(c.buf.Bytes(), c.buf.Len()); len(reports[1]) != 2 || len(reports[3]) != 1 {
		t.Errorf("stream id used again after a refusal: reports %v", reports)
	}

	// What it cannot follow ends the reading-along, never with a report.
	for name, bad := range map[string][]byte{
		"not HTTP/2":           []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
		"HPACK garbage":        append([]byte(http2Preface), 0, 0, 3, frameHeaders, flagEndHeaders, 0, 0, 0, 1, 0xff, 0xff, 0xff),
		"frame over the limit": append([]byte(http2Preface), 0x10, 0, 1, frameHeaders, 0, 0, 0, 0, 1),
		"stray continuation":   append([]byte(http2Preface), 0, 0, 0, frameContinuation, flagEndHeaders, 0, 0, 0, 1),
		"data inside a block":  append([]byte(http2Preface), 0, 0, 0, frameHeaders, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1),
		"priority cut short":   append([]byte(http2Preface), 0, 0, 2, frameHeaders, flagEndHeaders|flagPriority, 0, 0, 0, 1, 0, 0),
	} {
		reports, s := scanReports(bad, len(bad))
		if !s.stopped || len(reports) != 0 {
			t.Errorf("%s: stopped %v, reports %v", name, s.stopped, reports)
		}
	}
}

// TestH2ConnClosesAfterTooManyRefusals: like HTTP/1, which closes the
// connection after a refused request, an HTTP/2 connection ends after
// maxRefusals.
func TestH2ConnClosesAfterTooManyRefusals(t *testing.T) {
	c := newClientStream()
	for i := range uint32(maxRefusals + 2) {
		c.headers(1+2*i, request("transfer-encoding", "chunked"))
	}
	reports, s := scanReports(c.buf.Bytes(), c.buf.Len())
	if len(reports) != maxRefusals+2 || s.refusals != maxRefusals+2 {
		t.Fatalf("%d reports", len(reports))
	}
	conn := &H2Conn{scan: *s}
	if _, err := conn.Read(make([]byte, 10)); err != errTooManyRefusals {
		t.Errorf("read after %d refusals: %v", s.refusals, err)
	}
}

// FuzzH2Scanner: arbitrary client bytes never panic the scanner (feed
// would hide it; scan does not), a report always has a reason, and what it
// keeps of a block stays within the header list limit.
func FuzzH2Scanner(f *testing.F) {
	c := newClientStream()
	c.headers(1, request("transfer-encoding", "chunked"))
	f.Add(c.buf.Bytes()[len(http2Preface):])
	f.Add([]byte{0, 0, 1, frameHeaders, flagPadded, 0, 0, 0, 1, 9})
	f.Fuzz(func(t *testing.T, in []byte) {
		s := newH2Scanner(1024, nil)
		s.abuse = &h2Abuse{now: time.Now} // the budgets never panic either
		s.refused = func(fields []hpack.HeaderField, reason string) {
			if reason == "" {
				t.Fatal("a report without a reason")
			}
			// The server's accounting: trailer names have a budget of
			// their own, at 32 bytes and a comma's worth per name.
			var headers, trailers uint32
			for _, f := range fields {
				if f.Name == "trailer" {
					n := uint32(strings.Count(f.Value, ",") + 1)
					trailers += uint32(len(f.Value)) - n + 1 + 32*n
				} else {
					headers += f.Size()
				}
			}
			if headers > s.listLimit || trailers > s.listLimit {
				t.Fatalf("kept %d + %d bytes of fields, limit %d each", headers, trailers, s.listLimit)
			}
		}
		s.scan([]byte(http2Preface))
		s.scan(in)
	})
}

// BenchmarkH2ReadAlong compares the read-along's cost with what x/net's
// framer spends reading the same frames (ReadFrame with HPACK decoding, a
// part of the HTTP/2 server's own work): browser-like requests, 100 on one
// connection; one op is the 100 requests. Run both in one invocation and
// compare: -bench H2ReadAlong.
func BenchmarkH2ReadAlong(b *testing.B) {
	c := newClientStream()
	for i := uint32(0); i < 100; i++ {
		fields := request("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
			"accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "accept-language", "en-GB,en;q=0.9",
			"accept-encoding", "gzip, deflate, br", "cookie", "session=0123456789abcdef0123456789abcdef; theme=dark",
			"referer", "https://shop.test/items/"+strings.Repeat("x", int(i%7)))
		_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1 + 2*i, BlockFragment: c.encode(fields), EndHeaders: true, EndStream: true})
	}
	stream := c.buf.Bytes()
	b.Run("read-along", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := newH2Scanner(0, func([]hpack.HeaderField, string) { b.Fatal("reported a valid request") })
			s.feed(stream)
		}
	})
	b.Run("x-net-framer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fr := http2.NewFramer(io.Discard, bytes.NewReader(stream[len(http2Preface):]))
			fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			for {
				if _, err := fr.ReadFrame(); err != nil {
					break
				}
			}
		}
	})
}

// TestH2AbuseBudgets (issue 18): the read-along cuts a connection, once,
// when its client resets streams past the per-connection budget, opens or
// resets them past the per-client budget (shared by its connections, none
// for exempt addresses), or sends a header block past its frame or byte
// bounds, whatever the frames decode to. A clock that does not move makes
// the budgets exact.
func TestH2AbuseBudgets(t *testing.T) {
	client := netip.MustParseAddr("192.0.2.1")
	frozen := time.Unix(1e9, 0)
	run := func(stream []byte, clients *H2Clients) (*h2Scanner, []H2Abuse) {
		var reports []H2Abuse
		a := h2Abuse{clients: clients, addr: client, now: func() time.Time { return frozen }, started: frozen,
			report: func(r H2Abuse) { reports = append(reports, r) }}
		s := newH2Scanner(64<<10, func([]hpack.HeaderField, string) {})
		s.abuse = &a
		s.scan(stream)
		return &s, reports
	}
	resets := func(n int) []byte {
		c := newClientStream()
		for i := range uint32(n) {
			c.headers(1+2*i, request())
			_ = c.fr.WriteRSTStream(1+2*i, http2.ErrCodeCancel)
		}
		return c.buf.Bytes()
	}
	flood := func(frames int, payload []byte) []byte {
		c := newClientStream()
		_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: payload})
		for range frames {
			_ = c.fr.WriteContinuation(1, false, payload)
		}
		return c.buf.Bytes()
	}
	tests := []struct {
		name    string
		stream  []byte
		clients *H2Clients
		cut     string // "" for no cut
		opened  int
		reset   int
	}{
		{"resets within the connection budget", resets(connResetBurst), nil, "", connResetBurst, connResetBurst},
		{"one reset past it", resets(connResetBurst + 1), nil, "on one connection", connResetBurst + 1, connResetBurst + 1},
		{"exempt client", resets(connResetBurst), NewH2Clients(func(netip.Addr) bool { return true }), "", connResetBurst, connResetBurst},
		{"empty CONTINUATION frames", flood(maxBlockFrames, nil), nil, "CONTINUATION flood", 1, 0},
		{"table size updates", flood(10, bytes.Repeat([]byte{0x20}, 40000)), nil, "CONTINUATION flood", 1, 0},
		{"a block within the bounds", flood(maxBlockFrames-2, nil), nil, "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, reports := run(tt.stream, tt.clients)
			switch {
			case tt.cut == "" && len(reports) != 0:
				t.Fatalf("cut: %+v", reports)
			case tt.cut != "" && (len(reports) != 1 || !strings.Contains(reports[0].Reason, tt.cut)):
				t.Fatalf("reports %+v, want one about %q", reports, tt.cut)
			case tt.cut != "" && (reports[0].Opened != tt.opened || reports[0].Reset != tt.reset):
				t.Errorf("counts %d opened, %d reset; want %d, %d", reports[0].Opened, reports[0].Reset, tt.opened, tt.reset)
			}
			if tt.cut != "" && s.abuse.cut == nil {
				t.Error("reported but not cut")
			}
		})
	}
	// Per client: the client's budget spans its connections.
	clients := NewH2Clients(nil)
	var total int
	for conn := 0; conn < clientResetBurst/connResetBurst+1; conn++ {
		_, reports := run(resets(connResetBurst), clients)
		total += connResetBurst
		if cut := len(reports) > 0; cut != (total > clientResetBurst) {
			t.Fatalf("connection %d (%d resets from the client): cut %v", conn, total, cut)
		}
	}
}

func TestH2ConnReadFailsOnceCut(t *testing.T) {
	conn := &H2Conn{}
	conn.abuse.cutFor("test")
	if _, err := conn.Read(make([]byte, 10)); err == nil || !strings.Contains(err.Error(), "test") {
		t.Errorf("read after a cut: %v", err)
	}
}
