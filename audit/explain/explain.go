// Package explain answers the operator's question about a blocked request
// that should have passed: which exclusion, as narrow as possible, would
// have let exactly this request through? The answer is a ready-to-paste
// snippet for the site's waf.exclusions, proven by judging the recorded
// request again with the exclusion applied.
//
// Place in the request path: none. It works on audit records, through
// package replay and gateway.Inspector, so the proof runs the same code as
// live traffic.
//
// The search: start from the detection rules the request matched, each
// excluded only for the variable it matched (ARGS:comment, not the rule)
// on this request path and method; judge again; while the request is still
// blocked, add what newly matched (a rule may match several variables);
// then drop every exclusion the request does not need. What remains is
// minimal in the sense that removing any one of its exclusions blocks the
// request again.
package explain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/replay"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/gateway"
	"github.com/portcullis-waf/portcullis/waf"
)

// Exclusion is one suggested exclusion, in config terms.
type Exclusion struct {
	RuleID     int
	Target     string // "" removes the whole rule on this path
	PathPrefix string
	Methods    []string
	Message    string // the rule's message, for the comment
}

// Options widen a suggestion on purpose.
type Options struct {
	// AnyMethod leaves the method out of the scope (an endpoint that takes
	// the same field by GET and POST).
	AnyMethod bool
}

// Suggestion is the answer for one record.
type Suggestion struct {
	RecordID   string
	Site       string // the config site the exclusions belong to
	SiteIndex  int
	Exclusions []Exclusion
	// Verified is true when the recorded request, judged again with the
	// exclusions, is no longer blocked.
	Verified bool
	Notes    []string // from replay: redacted values, cut bodies
}

// ErrNotBlocked is returned for a record the current configuration does not
// block (any more): nothing to explain.
var ErrNotBlocked = errors.New("the current configuration does not block this request")

// maxRounds bounds the widening search; each round compiles a rule set.
const maxRounds = 6

// Explain finds the smallest exclusion that lets the record's request pass
// under cfg. Each judgement compiles a rule set (about a second for the
// full CRS), so a suggestion takes a few seconds.
func Explain(ctx context.Context, cfg *config.Config, e *audit.Entry, opts Options) (*Suggestion, error) {
	engines := waf.NewCache()
	defer engines.Close()
	site := ""
	judge := func(ex []Exclusion) (replay.Result, error) {
		candidate, err := withExclusions(cfg, site, ex)
		if err != nil {
			return replay.Result{}, err
		}
		in, err := gateway.NewInspector(candidate, engines)
		if err != nil {
			return replay.Result{}, err
		}
		return replay.Judge(ctx, in, e)
	}
	now, err := judge(nil)
	if err != nil {
		return nil, err
	}
	if now.After != replay.Blocked {
		return nil, ErrNotBlocked
	}
	if now.Now.Stage != audit.StageWAF {
		return nil, fmt.Errorf("blocked by the %s stage (%s), not by a rule: no exclusion can let it pass", now.Now.Stage, now.Now.Reason)
	}
	site = now.Now.Site
	siteIndex := slices.IndexFunc(cfg.Sites, func(s *config.SiteConfig) bool { return s.Name == site })
	s := &Suggestion{RecordID: e.ID, Site: site, SiteIndex: siteIndex, Notes: now.Notes}
	path := requestPath(e.URI)
	var methods []string
	if !opts.AnyMethod {
		methods = []string{e.Method}
	}

	// Widen until the request passes.
	res := now
	for round := 0; round < maxRounds && res.After == replay.Blocked; round++ {
		added := false
		for _, r := range candidates(res.Now) {
			x := Exclusion{RuleID: r.ID, Target: target(r.MatchedVariable), PathPrefix: path, Methods: methods, Message: r.Message}
			if _, key, keyed := strings.Cut(r.MatchedVariable, ":"); keyed && key != "" && x.Target == "" && !SafeKey(key) {
				note := fmt.Sprintf("rule %d matched %s, a name that cannot be used as a target: the exclusion covers the whole rule on this path; review before use", r.ID, strconv.Quote(r.MatchedVariable))
				if !slices.Contains(s.Notes, note) {
					s.Notes = append(s.Notes, note)
				}
			}
			if !slices.ContainsFunc(s.Exclusions, func(y Exclusion) bool { return y.RuleID == x.RuleID && y.Target == x.Target }) {
				s.Exclusions = append(s.Exclusions, x)
				added = true
			}
		}
		if !added {
			// The same rule matched again on a variable the record cannot
			// name: widen to the whole rule on this path.
			for i := range s.Exclusions {
				if s.Exclusions[i].Target != "" && slices.ContainsFunc(res.Now.Rules, func(r audit.MatchedRule) bool { return r.ID == s.Exclusions[i].RuleID }) {
					s.Exclusions[i].Target, added = "", true
				}
			}
		}
		if !added {
			break
		}
		if res, err = judge(s.Exclusions); err != nil {
			return nil, err
		}
	}
	if res.After == replay.Blocked {
		return s, nil // not verified: the caller says so
	}
	// Narrow: drop each exclusion the request does not need.
	for i := 0; i < len(s.Exclusions); {
		without := slices.Delete(slices.Clone(s.Exclusions), i, i+1)
		r, err := judge(without)
		if err != nil {
			return nil, err
		}
		if r.After != replay.Blocked {
			s.Exclusions = without
			continue
		}
		i++
	}
	// Same scope together, so YAML renders one item per scope.
	slices.SortStableFunc(s.Exclusions, func(a, b Exclusion) int { return strings.Compare(a.Target, b.Target) })
	s.Verified = true
	return s, nil
}

// candidates are the rules to exclude for a blocked judgement: the
// detection rules that added to the score, and a rule that denied on its
// own (custom rules without a severity).
func candidates(e *audit.Entry) []audit.MatchedRule {
	var out []audit.MatchedRule
	denied := deniedBy(e.Reason)
	for _, r := range e.Rules {
		if r.Phase > 2 {
			continue // response rules do not block requests
		}
		if _, detection := audit.RulePoints(r); detection || r.ID == denied && denied/1000 != 949 {
			out = append(out, r)
		}
	}
	return out
}

// deniedBy returns the rule id in a WAF stage reason ("request denied by
// rule 949110"), or 0.
func deniedBy(reason string) int {
	_, id, ok := strings.Cut(reason, "denied by rule ")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(strings.Fields(id + " ")[0])
	return n
}

// target turns a matched variable into an exclusion target. Keyed
// collections name one member (ARGS_POST:comment → ARGS:comment, which CRS
// rules target); variables without a key (REQUEST_URI, REQUEST_BODY) cannot
// be narrowed, so the whole rule is excluded on this path.
func target(variable string) string {
	name, key, ok := strings.Cut(variable, ":")
	if !ok || key == "" {
		return ""
	}
	switch name {
	case "ARGS_GET", "ARGS_POST":
		name = "ARGS"
	case "ARGS_GET_NAMES", "ARGS_POST_NAMES":
		name = "ARGS_NAMES"
	case "ARGS", "ARGS_NAMES", "REQUEST_COOKIES", "REQUEST_COOKIES_NAMES", "REQUEST_HEADERS", "REQUEST_HEADERS_NAMES", "FILES", "FILES_NAMES", "XML":
	default:
		return ""
	}
	// Keys with characters the config refuses in a target cannot be named,
	// and a key written /like this/ is a regular expression to the engine:
	// the client chose the name, so it must never choose the exclusion's
	// reach.
	if !SafeKey(key) {
		return ""
	}
	return name + ":" + key
}

// SafeKey reports whether a variable key taken from a request may name an
// exclusion target literally.
func SafeKey(key string) bool {
	return !strings.ContainsAny(key, " \t\"',|") && !strings.HasPrefix(key, "/")
}

func requestPath(uri string) string {
	p, _, _ := strings.Cut(uri, "?")
	if p == "" {
		return "/"
	}
	return p
}

// withExclusions returns a copy of cfg whose site named site carries ex in
// every route, as the YAML snippet would after a reload.
func withExclusions(cfg *config.Config, site string, ex []Exclusion) (*config.Config, error) {
	if len(ex) == 0 {
		return cfg, nil
	}
	out := *cfg
	out.Sites = slices.Clone(cfg.Sites)
	for i, sc := range out.Sites {
		if sc.Name != site {
			continue
		}
		site := *sc
		site.Routes = make([]*config.RouteConfig, len(sc.Routes))
		for j, rc := range sc.Routes {
			route := *rc
			route.WAF.Exclusions = slices.Clone(rc.WAF.Exclusions)
			for _, x := range ex {
				route.WAF.Exclusions = append(route.WAF.Exclusions, x.config())
			}
			site.Routes[j] = &route
		}
		out.Sites[i] = &site
		return &out, nil
	}
	return nil, fmt.Errorf("site %q is not in the configuration", site)
}

// YAML renders the suggestion as list items for the site's
// waf.exclusions, with comments that say where they go and whether they
// were verified.
func (s *Suggestion) YAML() string {
	var b strings.Builder
	if s.Verified {
		fmt.Fprintf(&b, "# Verified: audit record %s passes with these exclusions and is blocked without any one of them.\n", s.RecordID)
	} else {
		fmt.Fprintf(&b, "# NOT verified: audit record %s is still blocked with these exclusions; review before use.\n", s.RecordID)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "# Note: %s.\n", n)
	}
	fmt.Fprintf(&b, "# Add under sites[%d].waf.exclusions (site %s):\n", s.SiteIndex, strconv.Quote(s.Site))
	// One item per scope: the rules excluded for the same target, path and
	// methods go together.
	for i := 0; i < len(s.Exclusions); {
		x := s.Exclusions[i]
		var ids, messages []string
		j := i
		for ; j < len(s.Exclusions) && sameScope(s.Exclusions[j], x); j++ {
			ids = append(ids, strconv.Quote(strconv.Itoa(s.Exclusions[j].RuleID)))
			if m := s.Exclusions[j].Message; m != "" && !slices.Contains(messages, m) {
				messages = append(messages, m)
			}
		}
		i = j
		fmt.Fprintf(&b, "- rule_ids: [%s]\n", strings.Join(ids, ", "))
		if x.Target != "" {
			fmt.Fprintf(&b, "  target: %s\n", strconv.Quote(x.Target))
		}
		fmt.Fprintf(&b, "  path_prefix: %s\n", strconv.Quote(x.PathPrefix))
		if len(x.Methods) > 0 {
			fmt.Fprintf(&b, "  methods: [%s]\n", strings.Join(x.Methods, ", "))
		}
		comment := fmt.Sprintf("false positive in audit record %s", s.RecordID)
		if len(messages) > 0 {
			comment += ": " + strings.Join(messages, "; ")
		}
		fmt.Fprintf(&b, "  comment: %s\n", strconv.Quote(comment))
	}
	return b.String()
}

func sameScope(a, b Exclusion) bool {
	return a.Target == b.Target && a.PathPrefix == b.PathPrefix && slices.Equal(a.Methods, b.Methods)
}

func (x Exclusion) config() config.ExclusionConfig {
	return config.ExclusionConfig{
		Path:       "explain",
		RuleIDs:    []config.IDRange{{From: x.RuleID, To: x.RuleID}},
		Target:     x.Target,
		PathPrefix: x.PathPrefix,
		Methods:    x.Methods,
	}
}
