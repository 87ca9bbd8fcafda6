package waf

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/corazawaf/coraza/v3/types"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/waf/inspect"
)

// inspector is shared by every stage: it holds no per-request state.
var inspector = inspect.New(inspect.Limits{})

// native reports whether the route judges requests with the detectors
// (profile portcullis).
func (s *Stage) native() bool {
	return s.settings.Profile == config.ProfilePortcullis
}

// nativeBody returns the request body bytes the detectors judge: the
// stage's own copy when it read the whole body ahead, else the start of
// the engine's buffer, up to request_body.no_files_limit (bodies the
// detectors parse are refused past it, see rules.parsedBodyLimit; what is
// past it in an upload is the application's file). truncated is set when
// there was more.
func (s *Stage) nativeBody(tx types.Transaction, r *http.Request, ahead bodyAhead) (data []byte, truncated bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, false
	}
	if ahead.complete {
		return ahead.data, false
	}
	if !tx.IsRequestBodyAccessible() {
		return nil, false
	}
	body, err := tx.RequestBodyReader()
	if err != nil {
		return nil, false
	}
	limit := s.settings.BodyLimit
	if n := s.settings.BodyNoFilesLimit; n > 0 && n < limit {
		limit = n
	}
	// One buffer of the limit's size: growing one as bytes come would
	// allocate twice as much.
	buf := make([]byte, limit)
	n, _ := io.ReadFull(body, buf)
	var one [1]byte
	more, _ := body.Read(one[:])
	return buf[:n], more > 0
}

// judge runs the detectors on the request and writes their findings into
// the entry. It reports whether the request is to be refused (a finding
// reached the route's threshold in block mode).
func (s *Stage) judge(r *http.Request, entry *audit.Entry, body []byte, truncated bool) bool {
	res := inspector.Request(r, inspect.Body{Data: body, Truncated: truncated, Limit: s.settings.BodyLimit}, inspect.Scope{
		Threshold: s.settings.DetectionThreshold,
		Excluded:  s.excluder(r),
	})
	if len(res.Findings) == 0 {
		return false
	}
	entry.Findings = make([]audit.Finding, 0, len(res.Findings))
	for i := range res.Findings {
		f := &res.Findings[i]
		evidence := f.Evidence
		coll, key, _ := strings.Cut(f.Variable, ":")
		if s.redactor.IsSecretVariable(coll, key) {
			evidence = audit.Redacted
		}
		entry.Findings = append(entry.Findings, audit.Finding{
			Class: string(f.Class), Detector: f.Detector, Confidence: f.Confidence,
			Variable: f.Variable, Chain: f.Chain, Evidence: evidence, Reason: f.Reason,
			Blocking: f.Confidence >= s.settings.DetectionThreshold,
		})
	}
	if res.Blocking == nil {
		return false
	}
	b := res.Blocking
	via := ""
	if b.Chain != "" {
		via = " via " + b.Chain
	}
	reason := fmt.Sprintf("%s in %s%s (detector %s, confidence %d/%d)", b.Class, b.Variable, via, b.Detector, b.Confidence, s.settings.DetectionThreshold)
	if s.settings.Mode == config.ModeDetect {
		entry.Detect(audit.StageWAF, reason+" (detect mode: not blocked)")
		return false
	}
	entry.Block(audit.StageWAF, reason)
	return true
}

// excluder returns the test for the route's detector and class exclusions
// that apply to r (by path and method), or nil when none does.
func (s *Stage) excluder(r *http.Request) func(*inspect.Finding) bool {
	var active []*config.ExclusionConfig
	for i := range s.settings.Exclusions {
		e := &s.settings.Exclusions[i]
		if len(e.Detectors) == 0 && len(e.Classes) == 0 {
			continue // rule exclusions are the engine's
		}
		if !exclusionApplies(e, r) {
			continue
		}
		active = append(active, e)
	}
	if len(active) == 0 {
		return nil
	}
	return func(f *inspect.Finding) bool {
		for _, e := range active {
			if findingMatches(e, f) {
				return true
			}
		}
		return false
	}
}

// exclusionApplies checks an exclusion's path and method conditions the
// way the engine's generated rules do (the path percent-decoded, without
// the query; a prefix covers itself and what is below it).
func exclusionApplies(e *config.ExclusionConfig, r *http.Request) bool {
	p := r.URL.Path
	if e.ExactPath != "" && p != e.ExactPath {
		return false
	}
	if pre := e.PathPrefix; pre != "" {
		if strings.HasSuffix(pre, "/") {
			if !strings.HasPrefix(p, pre) {
				return false
			}
		} else if p != pre && !strings.HasPrefix(p, pre+"/") {
			return false
		}
	}
	if len(e.Methods) > 0 && !slices.Contains(e.Methods, r.Method) {
		return false
	}
	return true
}

// findingMatches reports whether an exclusion names f's detector or class
// and, if it has a target, f's variable.
func findingMatches(e *config.ExclusionConfig, f *inspect.Finding) bool {
	named := slices.Contains(e.Classes, string(f.Class))
	for _, d := range e.Detectors {
		if f.Detector == d || strings.HasPrefix(f.Detector, d+"/") {
			named = true
		}
	}
	if !named {
		return false
	}
	if e.Target == "" {
		return true
	}
	if pre, ok := strings.CutSuffix(e.Target, "*"); ok {
		return len(f.Variable) >= len(pre) && strings.EqualFold(f.Variable[:len(pre)], pre)
	}
	return strings.EqualFold(f.Variable, e.Target)
}
