package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
	"github.com/portcullis-waf/portcullis/tlsmgr"
	"github.com/portcullis-waf/portcullis/waf"
)

// engines is shared by the tests of this package: compiling the CRS takes a
// second, and equal settings give equal keys, exactly as in production.
var engines = waf.NewCache()

// memorySink keeps audit entries for assertions.
type memorySink struct {
	mu      sync.Mutex
	entries []*audit.Entry
}

func (m *memorySink) Write(e *audit.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, e)
	return nil
}
func (m *memorySink) Flush() error { return nil }
func (m *memorySink) Close() error { return nil }

// testProxy is a running pipeline on a loopback port.
type testProxy struct {
	URL     string // the first listener
	HTTPS   string // the first https listener, if any
	Config  string // the configuration file, for reload tests
	server  *Server
	writer  *audit.Writer
	records *memorySink
}

// startProxy runs a pipeline for the YAML config, in which every "UPSTREAM"
// is replaced by upstream. It listens on 127.0.0.1 on a free port. setup
// runs on the server before it serves (e.g. to set clocks).
func startProxy(t *testing.T, yamlText, upstream string, setup ...func(*Server)) *testProxy {
	t.Helper()
	yamlText = strings.ReplaceAll(yamlText, "UPSTREAM", upstream)
	if !strings.Contains(yamlText, "listeners:") {
		yamlText = "listeners:\n  - address: \"127.0.0.1:0\"\n" + yamlText
	}
	path := filepath.Join(t.TempDir(), "portcullis.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	records := &memorySink{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	writer := audit.NewWriter(1024, log, records)
	p, err := Build(cfg, engines, writer, log)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	certs, err := tlsmgr.Build(cfg.Certificates(), log)
	if err != nil {
		t.Fatalf("certificates: %v", err)
	}
	s := NewServer(p, certs, log)
	lns, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	if certs != nil {
		certs.Start()
	}
	p.Start()
	for _, f := range setup {
		f(s)
	}
	s.Serve(lns)
	tp := &testProxy{URL: "http://" + s.Addrs()[0].String(), Config: path, server: s, writer: writer, records: records}
	for i, l := range cfg.Listeners {
		if l.HTTPS && tp.HTTPS == "" {
			tp.HTTPS = "https://" + s.Addrs()[i].String()
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if certs != nil {
			certs.Stop()
		}
		p.Close()
		_ = writer.Close()
	})
	return tp
}

// entryFor returns the record of the request with the given id.
func (tp *testProxy) entryFor(t *testing.T, id string) *audit.Entry {
	t.Helper()
	var found *audit.Entry
	if !waitfor.True(5*time.Second, func() bool {
		tp.records.mu.Lock()
		defer tp.records.mu.Unlock()
		for _, e := range tp.records.entries {
			if e.ID == id {
				found = e
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no audit record for request %s", id)
	}
	return found
}

// noEntryFor asserts that the request left no record. A finished request
// has submitted its record, if any, once the pipeline counts no request in
// flight; a marker submitted after that is written after it (one queue,
// one writer), so once the marker is in, the request's record would be too.
func (tp *testProxy) noEntryFor(t *testing.T, id string) {
	t.Helper()
	if !waitfor.True(5*time.Second, func() bool { return tp.server.Pipeline().ActiveRequests() == 0 }) {
		t.Fatalf("requests still in flight after 5s")
	}
	marker := "marker-after-" + id
	if !tp.writer.Submit(&audit.Entry{ID: marker}) {
		t.Fatal("marker record dropped")
	}
	tp.entryFor(t, marker)
	tp.records.mu.Lock()
	defer tp.records.mu.Unlock()
	for _, e := range tp.records.entries {
		if e.ID == id {
			t.Fatalf("unexpected audit record for %s: action=%s reason=%s rules=%v", id, e.Action, e.Reason, ruleIDs(e))
		}
	}
}

func ruleIDs(e *audit.Entry) []int {
	var ids []int
	for _, r := range e.Rules {
		ids = append(ids, r.ID)
	}
	return ids
}

func hasRule(e *audit.Entry, id int) bool {
	for _, r := range e.Rules {
		if r.ID == id {
			return true
		}
	}
	return false
}

// do sends a request and returns status, body and request id.
func do(t *testing.T, method, url string, body string, header http.Header) (int, string, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	// A host name, not the numeric loopback address: CRS 920350 flags
	// numeric Host headers, which real browsers do not send.
	req.Host = "portcullis.test"
	for k, vs := range header {
		req.Header[k] = vs
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("X-Request-Id")
}

// echoUpstream answers with what it received: method, URI, headers and body.
func echoUpstream(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	b.WriteString(r.Method + " " + r.RequestURI + "\n")
	_ = r.Header.Write(&b)
	b.WriteString("Host: " + r.Host + "\n\n")
	_, _ = io.Copy(&b, r.Body)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write(b.Bytes())
}

// eventually polls cond for up to 3 s and reports whether it became true:
// for effects that happen off the request path.
func eventually(cond func() bool) bool { return waitfor.True(3*time.Second, cond) }
