package waf

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

// gateSettings is a small rule set: phase 1 denies X-Deny: 1, phase 2
// flags (logs, passes) an argument "q" equal to "flag".
func gateSettings(responseInspect bool) config.WAFSettings {
	s := config.DefaultWAF()
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
// never forwarded, whether the wait ran out or the client left.
func TestStageRefusesWithoutSlot(t *testing.T) {
	g := NewGate(1, 20*time.Millisecond)
	forwarded := false
	stage := gateStage(t, gateSettings(false), g, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { forwarded = true }))
	if err := g.Enter(context.Background()); err != nil { // the only slot is taken
		t.Fatal(err)
	}
	defer g.Leave()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		reason string
	}{
		{"wait ran out", context.Background(), "no inspection slot free within server.inspection_wait (1 slots)"},
		{"client left", gone, "the client went away while waiting for an inspection slot"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "/?q=1", strings.NewReader("q=flag")).WithContext(tt.ctx)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w, entry := serveOne(stage, r, "busy")
		if w.Code != http.StatusServiceUnavailable || forwarded {
			t.Errorf("%s: status %d, forwarded %v; want 503, not forwarded", tt.name, w.Code, forwarded)
		}
		if entry.Stage != audit.StageWAF || !strings.Contains(entry.Reason, tt.reason) || len(entry.Rules) != 0 {
			t.Errorf("%s: record stage %q reason %q rules %v", tt.name, entry.Stage, entry.Reason, entry.Rules)
		}
	}
}

// Without response inspection the transaction's findings are recorded and
// its slot is free before the request goes upstream; the body forwarded is
// the stage's own copy, intact. With response inspection the transaction
// lives on for phases 3 and 4, but the slot is still free upstream.
func TestStageReleasesBeforeUpstream(t *testing.T) {
	for _, inspectResponses := range []bool{false, true} {
		g := NewGate(1, time.Second)
		var got string
		var rulesUpstream, insideUpstream int
		var entry *audit.Entry
		stage := gateStage(t, gateSettings(inspectResponses), g, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
