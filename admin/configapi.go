package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// The configuration endpoints: GET /api/config shows the configuration in
// force with every secret masked; POST /api/config checks a new one and
// applies it exactly as a reload does (all or nothing).

// ConfigManager reads and replaces the running configuration
// (Options.Config).
type ConfigManager interface {
	// EffectiveConfig is the configuration in force, secrets masked
	// (config.Config.Effective), and the file it came from.
	EffectiveConfig() (doc map[string]any, source string)
	// ApplyConfig checks text as the configuration file's new content and,
	// when it is valid, switches to it as a reload does; persist also
	// writes it to the configuration file. by names who asked, for the log.
	ApplyConfig(text []byte, persist bool, by string) ConfigApplyResult
}

// ConfigApplyResult answers POST /api/config.
type ConfigApplyResult struct {
	OK        bool   `json:"ok"`
	Applied   bool   `json:"applied"`
	Persisted bool   `json:"persisted"`
	Duration  string `json:"duration,omitempty"`
	// Problems are every problem of a refused configuration, one per
	// line of `portcullis check` (file:line: field: reason).
	Problems []string `json:"problems,omitempty"`
	// Error is a failure after the configuration was found valid (the new
	// pipeline could not start, the file could not be written): nothing
	// was changed.
	Error string `json:"error,omitempty"`
}

// maxConfigBytes bounds a posted configuration: the configuration file's
// own limit (config.MaxFileSize) plus the JSON envelope's escaping.
const maxConfigBytes = 10 << 20

func (s *Server) configRoutes() {
	if s.opts.Config == nil {
		return
	}
	api := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.authenticated(h, false)) }
	api("GET /api/config", s.apiConfig)
	api("POST /api/config", s.apiApplyConfig)
}

// apiConfig answers {"source": "/etc/portcullis.yaml", "config": {...}}.
func (s *Server) apiConfig(w http.ResponseWriter, r *http.Request) {
	doc, source := s.opts.Config.EffectiveConfig()
	writeJSON(w, http.StatusOK, struct {
		Source string         `json:"source"`
		Config map[string]any `json:"config"`
	}{source, doc})
}

// apiApplyConfig takes {"config": "<YAML text>", "persist": false} (or the
// YAML itself with Content-Type application/yaml and ?persist=true, for
// token clients) and answers ConfigApplyResult: 200 applied, 400 refused
// with every problem, 500 valid but not applied.
func (s *Server) apiApplyConfig(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Config  string `json:"config"`
		Persist bool   `json:"persist"`
	}
	body := http.MaxBytesReader(w, r.Body, maxConfigBytes)
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	switch strings.ToLower(strings.TrimSpace(ct)) {
	case "application/json":
		dec := json.NewDecoder(body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.Config == "" {
			s.fail(w, r, http.StatusBadRequest, `body must be JSON: {"config": "<YAML text>", "persist": false}`)
			return
		}
	case "application/yaml", "application/x-yaml", "text/yaml":
		data, err := io.ReadAll(body)
		if err != nil || len(data) == 0 {
			s.fail(w, r, http.StatusBadRequest, "body must be the YAML configuration (at most 10 MiB)")
			return
		}
		req.Config = string(data)
		req.Persist = r.URL.Query().Get("persist") == "true"
	default:
		s.fail(w, r, http.StatusUnsupportedMediaType, "send Content-Type: application/json or application/yaml")
		return
	}
	user := principalFrom(r.Context()).Name
	res := s.opts.Config.ApplyConfig([]byte(req.Config), req.Persist, "admin API ("+user+")")
	status := http.StatusOK
	switch {
	case len(res.Problems) > 0:
		status = http.StatusBadRequest
	case !res.OK:
		status = http.StatusInternalServerError
	}
	a := Action{User: user, Via: via(r), What: "config", Target: "not saved to the file", OK: res.OK, Result: "applied in " + res.Duration, Problems: res.Problems}
	if req.Persist {
		a.Target = "saved to the file"
	}
	switch {
	case len(res.Problems) > 0:
		a.Result = "refused: " + strconv.Itoa(len(res.Problems)) + " problem(s)"
	case !res.OK:
		a.Result = firstLine(res.Error, "failed")
	}
	s.record(a)
	s.log.Info("configuration posted", "user", user, "peer", r.RemoteAddr, "ok", res.OK, "applied", res.Applied, "persisted", res.Persisted, "problems", len(res.Problems))
	writeJSON(w, status, res)
}
