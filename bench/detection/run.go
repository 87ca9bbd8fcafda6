package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/gateway"
)

// Profile is a named Portcullis configuration to measure.
type Profile struct {
	Name string
	// Path is the YAML file it was read from.
	Path string
	// Text is the configuration with ${UPSTREAM} still in it.
	Text string
}

// loadProfiles resolves names: "NAME" reads profiles/NAME.yaml beside this
// program (dir), "NAME=FILE" reads FILE.
func loadProfiles(dir, list string) ([]Profile, error) {
	var out []Profile
	for _, spec := range strings.Split(list, ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		name, path, ok := strings.Cut(spec, "=")
		if !ok {
			path = filepath.Join(dir, name+".yaml")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", name, err)
		}
		out = append(out, Profile{Name: name, Path: path, Text: string(b)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no profiles given")
	}
	return out, nil
}

// Verdict is what one profile did with one item.
type Verdict struct {
	Status  int
	Blocked bool
	Stage   string
	Reason  string
	Rules   []int
	Score   int
	Err     string
	Micros  int64 // time in ServeHTTP
}

// entrySink keeps every finished audit entry by request id. It writes
// synchronously, so the entry is there when ServeHTTP returns.
type entrySink struct {
	mu      sync.Mutex
	entries map[string]*audit.Entry
}

func (s *entrySink) Write(e *audit.Entry) error {
	s.mu.Lock()
	s.entries[e.ID] = e
	s.mu.Unlock()
	return nil
}
func (s *entrySink) Flush() error         { return nil }
func (s *entrySink) Close() error         { return nil }
func (s *entrySink) WritesSynchronously() {}

func (s *entrySink) take(id string) *audit.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	delete(s.entries, id)
	return e
}

// upstream answers 200 to everything after reading the body, like an
// application that accepts every request.
func newUpstream() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	}))
}

// runProfile sends every item through a pipeline built from the profile's
// configuration, with workers goroutines, and returns the verdicts in item
// order and the requests per second.
func runProfile(p Profile, upstreamURL string, items []Item, workers int) ([]Verdict, float64, error) {
	text := strings.ReplaceAll(p.Text, "${UPSTREAM}", upstreamURL)
	cfg, err := config.Parse(p.Path, []byte(text))
	if err != nil {
		return nil, 0, fmt.Errorf("profile %s: %w", p.Name, err)
	}
	// Every request's entry is wanted, allowed ones too (their matched
	// rules show what almost fired). This changes what is recorded, not
	// what is decided.
	cfg.Audit.LogAll = true
	sink := &entrySink{entries: map[string]*audit.Entry{}}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	records := audit.NewWriter(0, log, sink)
	defer records.Close()
	pipe, err := gateway.Build(cfg, nil, records, log)
	if err != nil {
		return nil, 0, fmt.Errorf("profile %s: build: %w", p.Name, err)
	}
	pipe.Start()
	defer pipe.Close()

	verdicts := make([]Verdict, len(items))
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) {
					return
				}
				verdicts[i] = judge(pipe, sink, &items[i], i)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	return verdicts, float64(len(items)) / elapsed, nil
}

// judge runs one item through the pipeline.
func judge(pipe *gateway.Pipeline, sink *entrySink, it *Item, i int) Verdict {
	r, err := it.Request()
	if err != nil {
		// Go's HTTP server, which Portcullis listens with, answers such a
		// request 400 before any stage sees it (an invalid escape in the
		// path, for one): nothing reaches the application.
		return Verdict{Blocked: true, Status: http.StatusBadRequest, Stage: "http-server", Err: err.Error()}
	}
	// A documentation-range client address per item: no filter keys on
	// it by default, and none may ever see one client send everything.
	r.RemoteAddr = "192.0.2." + strconv.Itoa(1+i%250) + ":" + strconv.Itoa(40000+i%20000)
	rec := httptest.NewRecorder()
	t0 := time.Now()
	pipe.ServeHTTP(rec, r)
	v := Verdict{Status: rec.Code, Micros: time.Since(t0).Microseconds()}
	if e := sink.take(rec.Header().Get("X-Request-Id")); e != nil {
		v.Blocked = e.Action == audit.ActionBlocked
		v.Stage, v.Reason, v.Score = e.Stage, e.Reason, e.InboundScore
		for _, m := range e.Rules {
			v.Rules = append(v.Rules, m.ID)
		}
		sort.Ints(v.Rules)
	} else {
		v.Blocked = rec.Code == http.StatusForbidden
	}
	return v
}

// firing names the rules (or detector) behind a verdict for listings.
func (v Verdict) firing() string {
	var parts []string
	if v.Stage != "" && v.Stage != audit.StageWAF {
		parts = append(parts, "stage="+v.Stage)
	}
	if len(v.Rules) > 0 {
		ids := make([]string, 0, len(v.Rules))
		for _, id := range v.Rules {
			ids = append(ids, strconv.Itoa(id))
		}
		parts = append(parts, "rules="+strings.Join(ids, ","))
	}
	if v.Reason != "" && len(v.Rules) == 0 {
		parts = append(parts, "reason="+v.Reason)
	}
	if v.Err != "" {
		parts = append(parts, "error="+v.Err)
	}
	return strings.Join(parts, " ")
}
