package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// The running process's endpoints: reload, cache purge, liveness,
// readiness and metrics. The admin server does not know the process; it
// serves what the composition (package instance) hands it through these
// small interfaces, each optional (Options).

// Reloader reloads the running configuration (Options.Reload).
type Reloader interface {
	// Reload reads the configuration file again and switches to it; a bad
	// file changes nothing. trigger says who asked ("admin API").
	Reload(trigger string) ReloadResult
	// Reloads is the history since the start.
	Reloads() ReloadHistory
}

// ReloadResult is the outcome of one reload: the answer of POST
// /api/reload, and the last one in GET /api/reload.
type ReloadResult struct {
	Time     time.Time `json:"time"`
	Trigger  string    `json:"trigger"` // SIGHUP, admin API, file change
	OK       bool      `json:"ok"`
	Duration string    `json:"duration"`
	Error    string    `json:"error,omitempty"` // the `portcullis check` text of a refused file
}

// ReloadHistory answers GET /api/reload: {"succeeded": 2, "failed": 1,
// "last": {...}}.
type ReloadHistory struct {
	OK     int           `json:"succeeded"`
	Failed int           `json:"failed"`
	Last   *ReloadResult `json:"last"`
}

// CachePurger empties the response cache (Options.Cache).
type CachePurger interface {
	// PurgeCache removes the entry with key ("https://host/path?query", as
	// the cache keys it), or every entry whose key starts with it when
	// prefix is set, and reports how many it removed.
	PurgeCache(key string, prefix bool) int
}

// ReadinessReporter tells whether the process should get traffic
// (Options.Ready).
type ReadinessReporter interface {
	Readiness() Readiness
}

// Readiness is what GET /readyz reports.
type Readiness struct {
	// NotReady lists why the process should get no new traffic; any entry
	// makes /readyz answer 503.
	NotReady []string
	// Degraded lists problems it serves despite: reported, still 200.
	Degraded []string
}

// Add appends o's reasons to r.
func (r *Readiness) Add(o Readiness) {
	r.NotReady = append(r.NotReady, o.NotReady...)
	r.Degraded = append(r.Degraded, o.Degraded...)
}

// processRoutes mounts the endpoints of the interfaces that opts provides.
// Liveness and readiness need no authentication: load balancers and
// container runtimes ask them, and they tell nothing an attacker could use.
func (s *Server) processRoutes() {
	api := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.authenticated(h, false)) }
	if s.opts.Ready != nil {
		s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("ok\n"))
		})
		s.mux.HandleFunc("GET /readyz", s.readyz)
	}
	if s.opts.Reload != nil {
		api("POST /api/reload", s.apiReload)
		api("GET /api/reload", s.apiReloads)
	}
	if s.opts.Cache != nil {
		api("POST /api/cache/purge", s.apiPurgeCache)
	}
	if s.opts.Metrics != nil {
		s.mux.Handle("GET /metrics", s.authenticated(s.opts.Metrics, false))
	}
}

// readyz answers "ready" (200) or one "not ready: why" line per reason
// (503), then one "degraded: what" line per problem served despite.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	st := s.opts.Ready.Readiness()
	var b strings.Builder
	status := http.StatusOK
	if len(st.NotReady) == 0 {
		b.WriteString("ready\n")
	}
	for _, why := range st.NotReady {
		status = http.StatusServiceUnavailable
		b.WriteString("not ready: " + why + "\n")
	}
	for _, what := range st.Degraded {
		b.WriteString("degraded: " + what + "\n")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// apiReload reloads and answers the result: 200, or 422 when the file was
// refused (its problems in "error", as `portcullis check` prints them).
func (s *Server) apiReload(w http.ResponseWriter, r *http.Request) {
	res := s.opts.Reload.Reload("admin API")
	s.record(Action{User: who(r), Via: via(r), What: "reload", OK: res.OK, Result: firstLine(res.Error, "reloaded in "+res.Duration),
		Problems: problemLines(res.Error)})
	status := http.StatusOK
	if !res.OK {
		status = http.StatusUnprocessableEntity
	}
	writeCompactJSON(w, status, res)
}

func (s *Server) apiReloads(w http.ResponseWriter, r *http.Request) {
	writeCompactJSON(w, http.StatusOK, s.opts.Reload.Reloads())
}

// apiPurgeCache answers POST /api/cache/purge {"key": "https://host/path",
// "prefix": false} with {"removed": N}.
func (s *Server) apiPurgeCache(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Key    string `json:"key"`    // "https://host/path?query", as the cache keys it
		Prefix bool   `json:"prefix"` // every key starting with Key
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes)).Decode(&req); err != nil || req.Key == "" {
		http.Error(w, `body must be {"key": "https://host/path", "prefix": false}`, http.StatusBadRequest)
		return
	}
	n := s.opts.Cache.PurgeCache(req.Key, req.Prefix)
	s.log.Info("cache purged", "key", req.Key, "prefix", req.Prefix, "removed", n)
	writeCompactJSON(w, http.StatusOK, map[string]int{"removed": n})
}

// writeCompactJSON answers v on one line, as these endpoints always have
// (scripts match on it), unlike the indented dashboard API.
func writeCompactJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing left to tell it
}

// firstLine is the first line of msg, or ok when msg is empty.
func firstLine(msg, ok string) string {
	if msg == "" {
		return ok
	}
	line, _, _ := strings.Cut(msg, "\n")
	return line
}

// problemLines splits a refused reload's message into its lines.
func problemLines(msg string) []string {
	if msg == "" {
		return nil
	}
	return strings.Split(msg, "\n")
}
