package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/bans"
	"github.com/portcullis-waf/portcullis/review/score"
)

// JSON API under /api/. Filters are the dashboard's URL parameters (the
// CLI's filter language); the answers are documented on each type.

// EventsResponse answers GET /api/events.
type EventsResponse struct {
	Events []*audit.Entry `json:"events"`
	// Next is the cursor for the following page (?after=...); empty at the end.
	Next string `json:"next,omitempty"`
}

// EventResponse answers GET /api/events/{id}.
type EventResponse struct {
	Event *audit.Entry    `json:"event"`
	Score score.Breakdown `json:"score"`
	// Exclusion is the suggested rule exclusion (YAML) when Explain is
	// configured and the record was blocked or flagged. One that starts
	// with "# NOT A FIX:" is for a request judged a real attack.
	Exclusion string `json:"exclusion,omitempty"`
	// ExclusionError says why no suggestion could be made.
	ExclusionError string `json:"exclusion_error,omitempty"`
}

// SummaryResponse answers GET /api/summary.
type SummaryResponse struct {
	Since      time.Time `json:"since"`
	Until      time.Time `json:"until"`
	BucketSecs int64     `json:"bucket_seconds"`
	// Total counts every matching record: blocked + detected + errors +
	// allowed (+ other, records with an action this version does not know).
	Total    int `json:"total"`
	Blocked  int `json:"blocked"`
	Detected int `json:"detected"`
	Errors   int `json:"errors"`
	// Allowed records are kept with audit.log_all or audit.sample_allowed.
	Allowed      int             `json:"allowed"`
	Other        int             `json:"other,omitempty"`
	Series       []SeriesPoint   `json:"series"`
	TopRules     []RuleCountJSON `json:"top_rules"`
	TopClients   []CountJSON     `json:"top_clients"`
	TopPaths     []CountJSON     `json:"top_paths"`
	TopCountries []CountJSON     `json:"top_countries"`
	TopHosts     []CountJSON     `json:"top_hosts"`
}

// SeriesPoint is one bucket of the time series.
type SeriesPoint struct {
	Start    time.Time `json:"start"`
	Blocked  int       `json:"blocked"`
	Detected int       `json:"detected"`
	Errors   int       `json:"errors"`
}

// RuleCountJSON is one row of the top rules.
type RuleCountJSON struct {
	ID      int    `json:"id"`
	Message string `json:"message"`
	Count   int    `json:"count"`
}

// CountJSON is one row of a top list.
type CountJSON struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// BanResponse answers POST /api/bans.
type BanResponse struct {
	Ban bans.Ban `json:"ban"`
	// Saved is false when the ban is in effect but could not be written to
	// the state file, so it will not survive a restart.
	Saved bool `json:"saved"`
}

func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	f, err := s.parseFilter(v, s.now())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	res, err := s.opts.Store.Search(ctx, f, store.Page{Limit: pageSize(v.Get("limit")), After: v.Get("after")})
	if err != nil {
		s.storeError(w, r, "search", err)
		return
	}
	out := EventsResponse{Events: res.Entries, Next: res.Next}
	if out.Events == nil {
		out.Events = []*audit.Entry{}
	}
	writeJSON(w, http.StatusOK, out)
}

// AmbiguousResponse answers GET /api/events/{id} (409) when {id} is a
// prefix of several record ids.
type AmbiguousResponse struct {
	Error string `json:"error"`
	// Candidates are ids that start with the prefix (at most
	// store.MaxIDCandidates); More says there are others.
	Candidates []string `json:"candidates"`
	More       bool     `json:"more,omitempty"`
}

// event fetches the record named by the {id} path value — a full id or a
// unique prefix of at least store.MinIDPrefix characters — answering 404,
// 409 with the candidates of an ambiguous prefix, or the store's error
// itself.
func (s *Server) event(w http.ResponseWriter, r *http.Request) (*audit.Entry, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	e, err := s.opts.Store.Get(ctx, r.PathValue("id"))
	var amb *store.AmbiguousIDError
	if errors.As(err, &amb) {
		n := strconv.Itoa(len(amb.Candidates))
		if amb.More {
			n = "more than " + n
		}
		msg := n + " audit records have an id starting with this prefix; give more characters"
		if strings.HasPrefix(r.URL.Path, "/api/") {
			writeJSON(w, http.StatusConflict, AmbiguousResponse{Error: msg, Candidates: amb.Candidates, More: amb.More})
			return nil, false
		}
		v := errorView{Status: http.StatusConflict, Text: http.StatusText(http.StatusConflict), Message: msg}
		for _, id := range amb.Candidates {
			v.Links = append(v.Links, navLink{Label: id, URL: "/events/" + url.PathEscape(id)})
		}
		w.Header().Set("Cache-Control", "no-store")
		s.render(w, r, http.StatusConflict, "error", "Ambiguous record id", v)
		return nil, false
	}
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("no audit record with this id (a prefix needs at least %d characters)", store.MinIDPrefix))
		return nil, false
	}
	if err != nil {
		s.storeError(w, r, "get", err)
		return nil, false
	}
	return e, true
}

func (s *Server) apiEvent(w http.ResponseWriter, r *http.Request) {
	e, ok := s.event(w, r)
	if !ok {
		return
	}
	out := EventResponse{Event: e, Score: score.Of(e)}
	if s.explainable(e) {
		var err error
		if out.Exclusion, err = s.opts.Explain(e); err != nil {
			out.ExclusionError = err.Error()
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// explainable reports whether the event page offers an explanation: for
// every blocked or flagged record, also one another stage decided (the
// answer then names that stage).
func (s *Server) explainable(e *audit.Entry) bool {
	return s.opts.Explain != nil && (e.Action == audit.ActionBlocked || e.Action == audit.ActionDetected)
}

// apiSummary aggregates the filtered records. Without a since filter it
// covers the last 24 hours (or ?range=1h|6h|24h|7d|30d); ?bucket= sets the
// series step (default about 60 points), ?top= the length of the lists.
func (s *Server) apiSummary(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	v := r.URL.Query()
	f, err := s.parseFilter(v, now)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if f.Since.IsZero() {
		span := 24 * time.Hour
		for _, tr := range timeRanges {
			if tr.Key == v.Get("range") {
				span = tr.D
			}
		}
		f.Since = now.Add(-span)
	}
	until := f.Until
	if until.IsZero() {
		until = now
	}
	opts := store.SummaryOptions{Bucket: bucketFor(until.Sub(f.Since)), Top: 10}
	if b := v.Get("bucket"); b != "" {
		d, err := parseDuration(b)
		if err != nil || d < time.Second || until.Sub(f.Since)/d > 10000 {
			s.fail(w, r, http.StatusBadRequest, "bucket must be a duration of at least 1s giving at most 10000 points")
			return
		}
		opts.Bucket = d
	}
	if t := v.Get("top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 1000 {
			s.fail(w, r, http.StatusBadRequest, "top must be a number from 1 to 1000")
			return
		}
		opts.Top = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	sum, err := s.opts.Store.Summary(ctx, f, opts)
	if err != nil {
		s.storeError(w, r, "summary", err)
		return
	}
	out := SummaryResponse{Since: f.Since.UTC(), Until: until.UTC(), BucketSecs: int64(opts.Bucket / time.Second),
		Total: sum.Total, Blocked: sum.Blocked, Detected: sum.Detected, Errors: sum.Errors,
		Allowed: sum.Allowed, Other: sum.Other,
		Series: []SeriesPoint{}, TopRules: []RuleCountJSON{}}
	for _, b := range sum.Series {
		out.Series = append(out.Series, SeriesPoint{Start: b.Start.UTC(), Blocked: b.Blocked, Detected: b.Detected, Errors: b.Errors})
	}
	for _, rc := range sum.TopRules {
		out.TopRules = append(out.TopRules, RuleCountJSON{ID: rc.ID, Message: rc.Message, Count: rc.Count})
	}
	out.TopClients, out.TopPaths = counts(sum.TopClients), counts(sum.TopPaths)
	out.TopCountries, out.TopHosts = counts(sum.TopCountries), counts(sum.TopHosts)
	writeJSON(w, http.StatusOK, out)
}

func counts(cs []store.Count) []CountJSON {
	out := make([]CountJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, CountJSON{Value: c.Value, Count: c.Count})
	}
	return out
}

func (s *Server) apiBans(w http.ResponseWriter, r *http.Request) {
	if s.opts.Bans == nil {
		s.fail(w, r, http.StatusNotFound, "bans are not enabled")
		return
	}
	list := s.opts.Bans.List(s.now())
	if list == nil {
		list = []bans.Ban{}
	}
	writeJSON(w, http.StatusOK, map[string][]bans.Ban{"bans": list})
}

// apiAddBan adds a manual ban: {"prefix": "203.0.113.7", "duration": "24h",
// "reason": "..."}; 201 with the ban.
func (s *Server) apiAddBan(w http.ResponseWriter, r *http.Request) {
	if s.opts.Bans == nil {
		s.fail(w, r, http.StatusNotFound, "bans are not enabled")
		return
	}
	if !isJSON(r) {
		s.fail(w, r, http.StatusUnsupportedMediaType, "send Content-Type: application/json")
		return
	}
	var req banRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.fail(w, r, http.StatusBadRequest, "body must be JSON: {\"prefix\": ..., \"duration\": ..., \"reason\": ...}")
		return
	}
	user := principalFrom(r.Context()).Name
	b, err := parseBan(req, user, s.now())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	done, err := s.addBan(b, user)
	s.recordBan(r, "ban", b.Prefix, done, err)
	if err != nil {
		s.fail(w, r, http.StatusConflict, err.Error())
		return
	}
	b.Prefix = b.Prefix.Masked()
	writeJSON(w, http.StatusCreated, BanResponse{Ban: b, Saved: done != "notsaved"})
}

// apiLiftBan lifts the ban of exactly the prefix in the path
// (DELETE /api/bans/203.0.113.0/24): 204, or 404 when there was none.
func (s *Server) apiLiftBan(w http.ResponseWriter, r *http.Request) {
	if s.opts.Bans == nil {
		s.fail(w, r, http.StatusNotFound, "bans are not enabled")
		return
	}
	p, err := parsePrefix(r.PathValue("prefix"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	done, err := s.liftBan(p, principalFrom(r.Context()).Name)
	s.recordBan(r, "lift ban", p, done, err)
	switch done {
	case "gone":
		s.fail(w, r, http.StatusNotFound, "no ban of exactly "+p.String())
	case "notsaved":
		s.fail(w, r, http.StatusInternalServerError, "the ban is lifted but could not be saved; it will come back at restart")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
