package waf

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

// gateSettings is a small rule set: phase 1 denies X-Deny: 1, phase 2
// flags (logs, passes) an argument "q" equal to "flag".
func gateSettings(responseInspect bool) config.WAFSettings {
	s := stockCRS()
	s.CRS = false
	s.ResponseInspect = responseInspect
	s.RulesBefore = []config.RuleText{
		{Origin: "test", Text: `SecRule REQUEST_HEADERS:X-Deny "@streq 1" "id:10101,phase:1,deny,status:403,log"`},
		{Origin: "test", Text: `SecRule ARGS:q "@streq flag" "id:10102,phase:2,pass,log,msg:'flagged'"`},
	}
	return s
}

func gateStage(t *testing.T, s config.WAFSettings, g *Gate, next http.Handler) *Stage {
	t.Helper()
	e, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return NewStage(e, s, next, Recording{Redactor: audit.NewRedactor(nil, nil)}).WithGate(g)
}

func serveOne(stage http.Handler, r *http.Request, id string) (*httptest.ResponseRecorder, *audit.Entry) {
	entry := &audit.Entry{ID: id}
	r = r.WithContext(audit.WithEntry(r.Context(), entry))
	w := httptest.NewRecorder()
	stage.ServeHTTP(w, r)
	return w, entry
}

// A request that gets no inspection slot is answered 503, audited, and
// never forwarded, whether the wait ran out or the client left while it
// waited.
func TestStageRefusesWithoutSlot(t *testing.T) {
	for _, tt := range []struct {
		name   string
		wait   time.Duration
		leave  bool // the client leaves once the request waits
		reason string
	}{
		{"wait ran out", 20 * time.Millisecond, false, "no inspection slot free within server.inspection_wait (1 slots)"},
		{"client left", time.Minute, true, "the client went away while waiting for an inspection slot"},
	} {
		g := NewGate(1, tt.wait)
		forwarded := false
		stage := gateStage(t, gateSettings(false), g, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { forwarded = true }))
		if err := g.Enter(context.Background()); err != nil { // the only slot is taken
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if tt.leave {
			go func() {
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); runtime.Gosched() {
					if _, waiting := g.Busy(); waiting == 1 {
						break
					}
				}
				cancel()
			}()
		}
		r := httptest.NewRequest("POST", "/?q=1", strings.NewReader("q=flag")).WithContext(ctx)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w, entry := serveOne(stage, r, "busy")
		cancel()
		g.Leave()
		if w.Code != http.StatusServiceUnavailable || forwarded {
			t.Errorf("%s: status %d, forwarded %v; want 503, not forwarded", tt.name, w.Code, forwarded)
		}
		if entry.Stage != audit.StageWAF || !strings.Contains(entry.Reason, tt.reason) || len(entry.Rules) != 0 {
			t.Errorf("%s: record stage %q reason %q rules %v", tt.name, entry.Stage, entry.Reason, entry.Rules)
		}
	}
}

// TestStageSkipsCancelledRequests (issue 18, rapid reset): a request whose
// client cancelled it before its inspection began (an HTTP/2 stream reset
// right after its HEADERS) takes no slot, runs no rule and is not
// forwarded; its record says so in fixed words, so that a flood of them can
// be counted together.
func TestStageSkipsCancelledRequests(t *testing.T) {
	s := gateSettings(false)
	s.RulesBefore = append(s.RulesBefore, config.RuleText{Origin: "test", Text: `SecRule REQUEST_METHOD "@rx ." "id:10103,phase:1,pass,log,msg:'inspected'"`})
	g := NewGate(1, time.Minute)
	forwarded := false
	stage := gateStage(t, s, g, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { forwarded = true }))
	for _, tt := range []struct {
		proto  int
		body   string
		reason string
	}{
		{2, "", "stream cancelled by the client before inspection"},
		{2, "q=1", "stream cancelled by the client before inspection"},
		{1, "q=1", "connection closed by the client before inspection"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body)).WithContext(ctx)
		r.ProtoMajor = tt.proto
		_, entry := serveOne(stage, r, "gone")
		if forwarded {
			t.Fatalf("HTTP/%d: a cancelled request was forwarded", tt.proto)
		}
		if entry.Stage != audit.StageProtocol || entry.Reason != tt.reason || entry.Status != 499 || len(entry.Rules) != 0 || entry.Durations.WAF != 0 {
			t.Errorf("HTTP/%d: record stage %q reason %q status %d rules %v", tt.proto, entry.Stage, entry.Reason, entry.Status, entry.Rules)
		}
		if in, waiting := g.Busy(); in != 0 || waiting != 0 {
			t.Errorf("HTTP/%d: the gate has %d inside, %d waiting", tt.proto, in, waiting)
		}
	}
	// The same request, not cancelled, is inspected: the rule is there.
	_, entry := serveOne(stage, httptest.NewRequest("GET", "/", nil), "live")
	if !forwarded || len(entry.Rules) != 1 || entry.Rules[0].ID != 10103 {
		t.Errorf("a live request: forwarded %v, rules %v", forwarded, entry.Rules)
	}
}

// Without response inspection the transaction's findings are recorded and
// its slot is free before the request goes upstream; the body forwarded is
// the stage's own copy, intact. With response inspection (and a rule for
// responses to run) the transaction lives on for phases 3 and 4, but the
// slot is still free upstream.
func TestStageReleasesBeforeUpstream(t *testing.T) {
	for _, inspectResponses := range []bool{false, true} {
		g := NewGate(1, time.Second)
		var got string
		var rulesUpstream, insideUpstream int
		var entry *audit.Entry
		settings := gateSettings(inspectResponses)
		if inspectResponses {
			settings.RulesAfter = []config.RuleText{{Origin: "test", Text: `SecRule RESPONSE_STATUS "@streq 599" "id:10106,phase:3,pass,log"`}}
		}
		stage := gateStage(t, settings, g, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got = string(b)
			rulesUpstream = len(entry.Rules)
			insideUpstream, _ = g.Busy()
		}))
		body := "q=flag&pad=" + strings.Repeat("x", 1000)
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		entry = &audit.Entry{ID: "flagged"}
		r = r.WithContext(audit.WithEntry(r.Context(), entry))
		w := httptest.NewRecorder()
		stage.ServeHTTP(w, r)
		if w.Code != http.StatusOK || got != body {
			t.Fatalf("response inspection %v: status %d, upstream got %d of %d bytes", inspectResponses, w.Code, len(got), len(body))
		}
		if insideUpstream != 0 {
			t.Errorf("response inspection %v: %d slot(s) held while upstream", inspectResponses, insideUpstream)
		}
		wantEarly := 1
		if inspectResponses {
			wantEarly = 0 // recorded after phases 3-5
		}
		if rulesUpstream != wantEarly || len(entry.Rules) != 1 || entry.Rules[0].ID != 10102 {
			t.Errorf("response inspection %v: %d rule(s) recorded before upstream (want %d), %v after", inspectResponses, rulesUpstream, wantEarly, entry.Rules)
		}
		if in, _ := g.Busy(); in != 0 {
			t.Errorf("response inspection %v: slot not given back", inspectResponses)
		}
	}
}

// Bodies past the read-ahead bound are read outside the slot into the
// engine's buffer and forwarded from it; the slot is entered again for
// phase 2. A 100-continue request is not read ahead: phase 1 decides before
// the client is told to send, and a request phase 1 denies gets its 403
// even if its body would have failed.
func TestStageBodyPaths(t *testing.T) {
	g := NewGate(1, time.Second)
	var got string
	stage := gateStage(t, gateSettings(false), g, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	big := "q=flag&pad=" + strings.Repeat("y", readAheadMax+5000)
	tests := []struct {
		name    string
		body    io.Reader
		length  int64
		headers map[string]string
		status  int
		want    string // forwarded body; "-" not forwarded
		rules   int
	}{
		{"small, declared length", strings.NewReader("q=flag"), 6, nil, 200, "q=flag", 1},
		{"small, chunked", strings.NewReader("q=flag"), -1, nil, 200, "q=flag", 1},
		{"past read-ahead, declared", strings.NewReader(big), int64(len(big)), nil, 200, big, 1},
		{"past read-ahead, chunked", strings.NewReader(big), -1, nil, 200, big, 1},
		{"100-continue", strings.NewReader("q=flag"), 6, map[string]string{"Expect": "100-continue"}, 200, "q=flag", 1},
		{"phase 1 deny wins over a broken body", &failingReader{}, -1, map[string]string{"X-Deny": "1"}, 403, "-", 1},
		{"broken body", &failingReader{}, -1, nil, 400, "-", 0},
	}
	for _, tt := range tests {
		got = "-"
		r := httptest.NewRequest("POST", "/", tt.body)
		r.ContentLength = tt.length
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range tt.headers {
			r.Header.Set(k, v)
		}
		w, entry := serveOne(stage, r, "body")
		if w.Code != tt.status || got != tt.want || len(entry.Rules) != tt.rules {
			t.Errorf("%s: status %d (want %d), forwarded %d bytes (want %d), rules %v", tt.name, w.Code, tt.status, len(got), len(tt.want), entry.Rules)
		}
		if in, _ := g.Busy(); in != 0 {
			t.Fatalf("%s: slot not given back", tt.name)
		}
	}
}

// A body too large to read ahead, whose engine stops taking bytes early (a
// phase 1 ctl), still reaches the upstream whole: what was read ahead, what
// the engine buffered and what was never read, in order.
func TestStageLongBodyKeepsEveryByte(t *testing.T) {
	tests := []struct {
		name, rule, overLimit string
	}{
		{"ctl:ruleEngine=Off", `SecRule REQUEST_URI "@beginsWith /trusted" "id:10002,phase:1,pass,nolog,ctl:ruleEngine=Off"`, config.OverLimitReject},
		{"ctl:requestBodyLimit lowered, inspect_partial", `SecRule REQUEST_URI "@beginsWith /trusted" "id:10003,phase:1,pass,nolog,ctl:requestBodyLimit=1000"`, config.OverLimitPartial},
		{"no ctl", `SecRule REQUEST_URI "@beginsWith /elsewhere" "id:10004,phase:1,pass,nolog"`, config.OverLimitReject},
	}
	body := make([]byte, 200<<10) // past the 128 KiB read-ahead
	for i := range body {
		body[i] = 'a' + byte(i/1024%26) // each KiB its own letter: order shows
	}
	for _, tt := range tests {
		for _, chunked := range []bool{true, false} {
			s := stockCRS()
			s.CRS = false
			s.BodyOverLimit = tt.overLimit
			s.RulesBefore = []config.RuleText{{Origin: "test", Text: tt.rule}}
			var got []byte
			stage := gateStage(t, s, NewGate(2, time.Second), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, _ = io.ReadAll(r.Body) }))
			r := httptest.NewRequest("POST", "/trusted", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/octet-stream")
			if chunked {
				r.ContentLength = -1
			}
			w, _ := serveOne(stage, r, "long")
			if w.Code != http.StatusOK || !bytes.Equal(got, body) {
				t.Errorf("%s, chunked %v: status %d, upstream got %d of %d bytes (equal %v)", tt.name, chunked, w.Code, len(got), len(body), bytes.Equal(got, body))
			}
		}
	}
}

// The proxy's transport may still be sending the request body when the
// handler returns. A body streamed from the engine's buffer must then fail,
// not end early as if complete (a chunked upstream request would look
// whole) nor race the pooled transaction's next request.
func TestStageBodyReadAfterInspection(t *testing.T) {
	for _, inspectResponses := range []bool{false, true} {
		s := stockCRS()
		s.CRS = false
		s.ResponseInspect = inspectResponses
		late := make(chan error, 1)
		served := make(chan struct{})
		stage := gateStage(t, s, NewGate(2, time.Second), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, 100)
			_, _ = io.ReadFull(r.Body, buf)
			go func() { // the transport's write loop, still sending after the stage returned
				<-served
				_, err := io.ReadAll(r.Body)
				late <- err
			}()
			w.WriteHeader(http.StatusUnauthorized)
		}))
		r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("z", 10000)))
		r.Header.Set("Content-Type", "application/octet-stream")
		r.Header.Set("Expect", "100-continue") // not read ahead: forwarded from the engine
		serveOne(stage, r, "late")
		close(served)
		if err := <-late; !errors.Is(err, errBodyGone) {
			t.Errorf("response inspection %v: late read ended with %v, want errBodyGone", inspectResponses, err)
		}
	}
}

// grabbingReader takes the gate's only slot the first time the stage reads
// the body (outside its own slot), then serves the body.
type grabbingReader struct {
	g    *Gate
	r    io.Reader
	took bool
}

func (b *grabbingReader) Read(p []byte) (int, error) {
	if !b.took {
		b.took = true
		if err := b.g.Enter(context.Background()); err != nil {
			return 0, err
		}
	}
	return b.r.Read(p)
}

// With inspect_partial the engine runs phase 2 as the limit is reached:
// that must wait for a slot like every other phase. Here another request
// takes the only slot while the body is read; the request waits for it
// (Resume has no time limit) and phase 2 runs once it is given back.
func TestStagePartialPhase2WaitsForSlot(t *testing.T) {
	s := stockCRS()
	s.CRS = false
	s.BodyLimit = 1000
	s.BodyOverLimit = config.OverLimitPartial
	s.RulesAfter = []config.RuleText{{Origin: "test", Text: `SecRule REQUEST_BODY "@contains q=" "id:10009,phase:2,pass,log,msg:'phase 2 ran'"`}}
	g := NewGate(1, time.Hour)
	ran := make(chan int, 1)
	stage := gateStage(t, s, g, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	body := &grabbingReader{g: g, r: strings.NewReader("q=" + strings.Repeat("a", 5000))}
	r := httptest.NewRequest("POST", "/", body)
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Expect", "100-continue") // not read ahead
	go func() {
		_, entry := serveOne(stage, r, "partial")
		ran <- len(entry.Rules)
	}()
	for { // the request now waits for the slot the reader took
		if _, w := g.Busy(); w == 1 {
			break
		}
		runtime.Gosched()
	}
	select {
	case n := <-ran:
		t.Fatalf("finished (%d rules) while another request held the only slot", n)
	default:
	}
	g.Leave()
	if n := <-ran; n != 1 {
		t.Errorf("%d rules matched after the slot was free, want phase 2's 1", n)
	}
}

// request_body.no_files_limit bounds the bodies the engine parses (forms,
// JSON, and with the CRS every other type but multipart), with the
// over_limit behaviour of request_body.limit; multipart bodies may be
// larger, up to request_body.limit.
func TestParsedBodyLimit(t *testing.T) {
	const parsed = 64 << 10
	big := strings.Repeat("x", parsed+10)
	huge := strings.Repeat("y", readAheadMax+10) // read in two steps
	multipart := func(disposition, value string) string {
		return "--b\r\nContent-Disposition: form-data; " + disposition + "\r\nContent-Type: application/octet-stream\r\n\r\n" + value + "\r\n--b--\r\n"
	}
	const bodyOver = "request body larger than request_body.no_files_limit (65536 bytes)"
	const fieldsOver = "multipart fields larger than request_body.no_files_limit (65536 bytes)"
	tests := []struct {
		name, ctype, body, overLimit string
		chunked                      bool
		status                       int
		reason                       string
	}{
		{"form under the limit", "application/x-www-form-urlencoded", "a=" + strings.Repeat("x", parsed-10), config.OverLimitReject, false, 200, ""},
		{"form over it", "application/x-www-form-urlencoded", "a=" + big, config.OverLimitReject, false, 413, bodyOver},
		{"form over it, chunked", "application/x-www-form-urlencoded", "a=" + big, config.OverLimitReject, true, 413, bodyOver},
		{"JSON over it", "application/json", `{"a":"` + big + `"}`, config.OverLimitReject, false, 413, bodyOver},
		{"octet-stream over it (CRS: raw processor)", "application/octet-stream", big, config.OverLimitReject, false, 413, bodyOver},
		{"form over it, inspect_partial", "application/x-www-form-urlencoded", "a=" + big, config.OverLimitPartial, true, 200, ""},
		{"multipart file over it", "multipart/form-data; boundary=b", multipart(`name="f"; filename="a.bin"`, big), config.OverLimitReject, false, 200, ""},
		{"multipart file past the read-ahead", "multipart/form-data; boundary=b", multipart(`name="f"; filename="a.bin"`, huge), config.OverLimitReject, true, 200, ""},
		{"multipart field over it", "multipart/form-data; boundary=b", multipart(`name="f"`, big), config.OverLimitReject, false, 413, fieldsOver},
		{"multipart field past the read-ahead", "multipart/form-data; boundary=b", multipart(`name="f"`, huge), config.OverLimitReject, true, 413, fieldsOver},
		{"multipart field over it, inspect_partial", "multipart/form-data; boundary=b", multipart(`name="f"`, big), config.OverLimitPartial, false, 413, fieldsOver},
	}
	for _, tt := range tests {
		s := stockCRS()
		s.BodyNoFilesLimit = parsed
		s.BodyOverLimit = tt.overLimit
		s.CRSVariables = map[string]string{"allowed_request_content_type": "|application/x-www-form-urlencoded| |multipart/form-data| |application/json| |application/octet-stream|"}
		var got string
		stage := gateStage(t, s, NewGate(2, time.Second), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got = string(b)
		}))
		got = "-"
		r := httptest.NewRequest("POST", "/upload", strings.NewReader(tt.body))
		r.Header.Set("Content-Type", tt.ctype)
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0")
		r.Header.Set("Accept", "*/*")
		if tt.chunked {
			r.ContentLength = -1
		}
		w, entry := serveOne(stage, r, "parsed")
		if w.Code != tt.status {
			t.Errorf("%s: status %d, want %d (reason %q, rules %v)", tt.name, w.Code, tt.status, entry.Reason, entry.Rules)
			continue
		}
		switch {
		case tt.status == 413 && entry.Reason != tt.reason:
			t.Errorf("%s: reason %q, want %q", tt.name, entry.Reason, tt.reason)
		case tt.status == 200 && got != tt.body:
			t.Errorf("%s: upstream got %d of %d bytes", tt.name, len(got), len(tt.body))
		case tt.status == 413 && got != "-":
			t.Errorf("%s: refused body reached the upstream", tt.name)
		}
	}
}

// A request whose transaction was closed before it went upstream, and that
// a later stage then decided on (an upstream failure here), still keeps its
// (redacted) body for replay, from the stage's own copy.
func TestStageKeepsBodyDecidedAfterEarlyClose(t *testing.T) {
	s := gateSettings(false)
	e, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	stage := NewStage(e, s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entry := audit.FromContext(r.Context())
		if entry.RequestBody != "" {
			t.Errorf("body kept before any decision: %q", entry.RequestBody)
		}
		entry.Fail(audit.StageProxy, "upstream unavailable")
		w.WriteHeader(http.StatusBadGateway)
	}), Recording{Redactor: audit.NewRedactor(nil, []string{"password"}), BodyLimit: 64}).WithGate(NewGate(1, time.Second))
	r := httptest.NewRequest("POST", "/", strings.NewReader("user=ada&password=hunter2&q=x"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, entry := serveOne(stage, r, "later")
	if !strings.Contains(entry.RequestBody, "user=ada") || strings.Contains(entry.RequestBody, "hunter2") {
		t.Errorf("kept body %q: want it kept, with the password redacted", entry.RequestBody)
	}
}

// A phase 1 rule that raises the engine's body limit (ctl:requestBodyLimit)
// past request_body.limit must not let the rest of a long body go upstream
// uninspected. The engine is fed on to its own limit; its buffer cannot hold
// more than request_body.limit, so the request fails closed (500, nothing
// forwarded), as it did before the stage read bodies in two steps.
func TestStageRaisedBodyLimitFailsClosed(t *testing.T) {
	s := stockCRS()
	s.CRS = false
	s.BodyLimit = 200 << 10
	s.RulesBefore = []config.RuleText{{Origin: "test", Text: `SecRule REQUEST_URI "@beginsWith /upload" "id:10011,phase:1,pass,nolog,ctl:requestBodyLimit=10000000"`}}
	s.RulesAfter = []config.RuleText{{Origin: "test", Text: `SecRule ARGS:q "@streq attack" "id:10012,phase:2,deny,status:403,log"`}}
	forwarded := false
	stage := gateStage(t, s, NewGate(2, time.Second), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { forwarded = true }))
	body := "a=" + strings.Repeat("x", 300<<10) + "&q=attack"
	r := httptest.NewRequest("POST", "/upload", strings.NewReader(body))
	r.ContentLength = -1 // chunked: no declared length to refuse early
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w, entry := serveOne(stage, r, "raised")
	if forwarded || w.Code != http.StatusInternalServerError || !strings.Contains(entry.Reason, "request body lost") {
		t.Errorf("status %d, forwarded %v, reason %q; want 500 and nothing forwarded", w.Code, forwarded, entry.Reason)
	}
}

// Phase 5 waits for a slot like other in-flight work even when the client
// has left: the engine's concurrency stays bounded, and the record still
// gets phase 5's findings. Here the upstream takes the only slot and the
// client leaves before the response; the request must not finish (run
// phase 5) until the slot is given back.
func TestStagePhase5WaitsForSlotAfterClientLeft(t *testing.T) {
	s := gateSettings(true)
	s.RulesAfter = []config.RuleText{{Origin: "test", Text: `SecAction "id:10105,phase:5,pass,log,msg:'phase 5 ran'"`}}
	g := NewGate(1, time.Hour)
	client, leave := context.WithCancel(context.Background())
	defer leave()
	stage := gateStage(t, s, g, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.Enter(context.Background()); err != nil { // another request takes the only slot
			t.Error(err)
		}
		leave()
		w.WriteHeader(http.StatusOK)
	}))
	done := make(chan *audit.Entry, 1)
	go func() {
		_, entry := serveOne(stage, httptest.NewRequest("GET", "/", nil).WithContext(client), "left")
		done <- entry
	}()
	for { // the request now waits for the slot, or (wrongly) finished without one
		if _, w := g.Busy(); w == 1 {
			break
		}
		select {
		case entry := <-done:
			g.Leave()
			t.Fatalf("finished while another request held the only slot: rules %v", entry.Rules)
		default:
		}
		runtime.Gosched()
	}
	g.Leave()
	entry := <-done
	ran := false
	for _, m := range entry.Rules {
		ran = ran || m.ID == 10105
	}
	if !ran || !strings.Contains(entry.Reason, "client went away") {
		t.Errorf("record: reason %q rules %v; want phase 5's rule and the client's leaving", entry.Reason, entry.Rules)
	}
	if in, w := g.Busy(); in != 0 || w != 0 {
		t.Errorf("gate after the request: %d inside, %d waiting", in, w)
	}
}
