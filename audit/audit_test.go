package audit

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestWriterWritesEveryRecordAndFlushesOnClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(10000, quietLog(), sink)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if !w.Submit(&Entry{ID: "x", Action: ActionBlocked, Time: time.Now()}) {
					t.Error("dropped with room in the queue")
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Read(f, func(*Entry) error { return nil })
	if err != nil || res.Records != 4000 || res.TornTail {
		t.Fatalf("read back %+v, %v; want 4000 records", res, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, want 0600", st.Mode().Perm())
	}
	if st := w.Stats(); st.Written != 4000 || st.Dropped() != 0 || st.Sinks[0].Written != 4000 {
		t.Errorf("stats %+v", st)
	}
}

// blockingSink holds the writer goroutine so the queue fills.
type blockingSink struct{ release chan struct{} }

func (b *blockingSink) Write(*Entry) error { <-b.release; return nil }
func (b *blockingSink) Flush() error       { return nil }
func (b *blockingSink) Close() error       { return nil }

func TestWriterCountsOverflowInsteadOfBlocking(t *testing.T) {
	sink := &blockingSink{release: make(chan struct{})}
	var logBuf syncBuffer
	w := NewWriter(2, slog.New(slog.NewTextHandler(&logBuf, nil)), sink)
	accepted := 0
	for i := 0; i < 10; i++ {
		if w.Submit(&Entry{ID: "x"}) {
			accepted++
		}
	}
	close(sink.release)
	_ = w.Close()
	st := w.Stats()
	// The writer may have taken one entry off the queue before blocking.
	if accepted < 2 || accepted > 3 || int(st.DroppedQueueFull) != 10-accepted || st.Written != uint64(accepted) {
		t.Errorf("accepted %d, stats %+v", accepted, st)
	}
	if !strings.Contains(logBuf.String(), "audit records dropped") {
		t.Errorf("overflow not logged: %q", logBuf.String())
	}
	if w.Submit(&Entry{}) {
		t.Error("closed writer accepted a record")
	}
	if st := w.Stats(); st.DroppedWriterClosed != 1 {
		t.Errorf("after close: %+v", st)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestReadSkipsTornTail(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		records  int
		torn     bool
		errorMsg string
	}{
		{"complete", `{"id":"a"}` + "\n" + `{"id":"b"}` + "\n", 2, false, ""},
		{"torn tail", `{"id":"a"}` + "\n" + `{"id":"b","ho`, 1, true, ""},
		{"last line without newline but whole", `{"id":"a"}` + "\n" + `{"id":"b"}`, 2, false, ""},
		{"blank lines", "\n" + `{"id":"a"}` + "\n\n", 1, false, ""},
		{"corrupt middle", `{"id":"a"}` + "\n" + `garbage` + "\n" + `{"id":"c"}` + "\n", 1, false, "audit line 2"},
		{"empty", "", 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Read(strings.NewReader(tt.input), func(*Entry) error { return nil })
			if tt.errorMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errorMsg) {
					t.Fatalf("err %v, want %q", err, tt.errorMsg)
				}
				return
			}
			if err != nil || res.Records != tt.records || res.TornTail != tt.torn {
				t.Fatalf("got %+v %v, want %d records torn=%v", res, err, tt.records, tt.torn)
			}
		})
	}
}

func TestReadStopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop")
	_, err := Read(strings.NewReader(`{"id":"a"}`+"\n"+`{"id":"b"}`+"\n"), func(*Entry) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("err %v", err)
	}
}

func TestRedactor(t *testing.T) {
	r := NewRedactor([]string{"x-api-key"}, []string{"pin"})
	h := http.Header{"Authorization": {"Basic abc"}, "Cookie": {"a=1", "b=2"}, "X-Api-Key": {"k"}, "Accept": {"*/*"}}
	got := r.Headers(h)
	if got["Cookie"][1] != Redacted || got["Authorization"][0] != Redacted || got["X-Api-Key"][0] != Redacted || got["Accept"][0] != "*/*" {
		t.Errorf("redacted: %v", got)
	}
	if h["Cookie"][0] != "a=1" {
		t.Error("redaction modified the request's own headers")
	}
	uris := map[string]string{
		"/login?user=ada&password=s3cret&next=%2F": "/login?user=ada&password=[redacted]&next=%2F",
		"/x?PIN=1234":           "/x?PIN=[redacted]",
		"/x?q=password":         "/x?q=password",
		"/plain":                "/plain",
		"/x?access%5Ftoken=abc": "/x?access%5Ftoken=[redacted]",
	}
	for in, want := range uris {
		if got := r.URI(in); got != want {
			t.Errorf("URI(%q) = %q, want %q", in, got, want)
		}
	}
	secretVars := []struct {
		collection, key string
		secret          bool
	}{
		{"REQUEST_HEADERS", "authorization", true}, {"REQUEST_HEADERS", "X-Api-Key", true},
		{"REQUEST_HEADERS", "User-Agent", false}, {"REQUEST_COOKIES", "session", true},
		{"REQUEST_COOKIES_NAMES", "session", false}, {"ARGS", "Password", true},
		{"ARGS_POST", "pin", true}, {"ARGS", "comment", false}, {"REQUEST_URI", "", false},
		{"ARGS_POST", "json.password", true}, {"ARGS_POST", "json.user.Password", true}, {"ARGS", "user[password]", true},
		{"ARGS_POST", "json.pw.0", false}, {"ARGS_POST", "json.passwords_policy", false},
	}
	for _, v := range secretVars {
		if got := r.IsSecretVariable(v.collection, v.key); got != v.secret {
			t.Errorf("IsSecretVariable(%s, %s) = %v", v.collection, v.key, got)
		}
	}
}

func TestRuleLogLineEscapesAttackerInput(t *testing.T) {
	e := &Entry{ID: "id1", ClientIP: "127.0.0.1", Host: "h", URI: "/x\"] [id \"1\"]\n2026 fake line", Time: time.Unix(0, 0)}
	r := &MatchedRule{ID: 942100, Message: "SQL Injection", Data: "a\"b", Tags: []string{"attack-sqli"}}
	line := string(AppendRuleLogLine(nil, e, r))
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Fatalf("line breaks not escaped: %q", line)
	}
	if strings.Count(line, `[id "`) != 1 || !strings.Contains(line, `[id "942100"]`) {
		t.Errorf("forged id field: %q", line)
	}
}

// FuzzRead: any bytes give records or an error, never a panic, and a torn
// tail is only reported for input without a final newline.
func FuzzRead(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.jsonl")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"id":"a","rules":[{"id":1}]}` + "\n" + `{"id":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Read(bytes.NewReader(data), func(e *Entry) error { return nil })
		if err == nil && res.TornTail && bytes.HasSuffix(data, []byte("\n")) {
			t.Fatalf("torn tail reported for input ending in a newline")
		}
	})
}

func TestRedactorHeadersCleansRefererQuery(t *testing.T) {
	r := NewRedactor(nil, nil)
	got := r.Headers(http.Header{"Referer": {"https://app.example/cb?access_token=abc&x=1"}, "Origin": {"https://app.example"}})
	if got["Referer"][0] != "https://app.example/cb?access_token=[redacted]&x=1" || got["Origin"][0] != "https://app.example" {
		t.Errorf("headers %v", got)
	}
}

// TestFileSinkDirectoryIsPrivate: the audit file's directory, when the sink
// creates it, is 0700 (#13).
func TestFileSinkDirectoryIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	s, err := OpenFileSink(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("%s is %v, want 0700", dir, st.Mode().Perm())
	}
}
