// Package explain answers the operator's question about a blocked request
// that should have passed: which exclusion, as narrow as possible, would
// have let exactly this request through? The answer is a ready-to-paste
// snippet for the site's waf.exclusions, proven by judging the recorded
// request again with the exclusion applied.
//
// Place in the request path: none. It sits above audit/ and above the
// pipeline: it works on audit records, through package replay and
// gateway.Inspector, so the proof runs the same code as live traffic.
//
// What it will not do (issue 13): offer an exclusion as a fix for a request
// whose evidence says it was a real attack (see Evidence: executable
// markup, SQL that leaves its literal, a shell command), blame the
// configuration for a request another stage refused (a ban, a list, GeoIP,
// a rate limit, the protocol checks: see StageError), or give up on a
// record from a route in detect mode, where tuning happens (the suggestion
// then removes what would block once the route is switched to block).
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
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/gateway"
	"github.com/portcullis-waf/portcullis/review/replay"
	"github.com/portcullis-waf/portcullis/waf"
)

// Exclusion is one suggested exclusion, in config terms. Exactly one of
// PathPrefix and ExactPath is set: the request's path as a prefix, or, for
// the site root, that path exactly (a prefix "/" would cover the site).
type Exclusion struct {
	RuleID int
	// Class, when set, makes this a detector exclusion (profile
	// portcullis): the findings of this attack class, RuleID unused.
	Class      string
	Target     string // "" removes the whole rule on this path
	PathPrefix string
	ExactPath  string
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
	// Attack is the evidence that the request was a real attack. When it
	// is not empty the exclusions are no fix: YAML comments them out
	// under a warning, and Fix is false.
	Attack []Evidence
	// DetectMode is true when the request's route is in detect mode: it
	// was judged as if in block mode, and the exclusions remove what would
	// block it once the route is switched.
	DetectMode bool
	// Route is the route path of Site that serves the request.
	Route string
	Notes []string // from replay (redacted values, cut bodies) and the search
}

// Fix reports whether the suggestion is a verified fix for a false
// positive: it lets the request through and nothing says it was an attack.
func (s *Suggestion) Fix() bool { return s.Verified && len(s.Attack) == 0 }

// ErrNotBlocked is returned for a record the current configuration does not
// block (any more): nothing to explain.
var ErrNotBlocked = errors.New("the current configuration does not block this request")

// StageError is returned for a request that a stage other than the rules
// decided (or a WAF limit rather than a rule): no rule exclusion can change
// that decision, and the error says what can.
type StageError struct {
	Stage  string // audit.Stage*
	Reason string // the record's (or the replay's) reason
	Action string // the record's action
}

func (e *StageError) Error() string {
	reason := ""
	if e.Reason != "" {
		reason = " (" + e.Reason + ")"
	}
	what := "refused by"
	if e.Action == audit.ActionError {
		what = "failed in"
	}
	var fix string
	switch e.Stage {
	case audit.StageBan:
		fix = "the client address was banned; if the ban was wrong, lift it (the dashboard's Bans page, DELETE /api/bans/{prefix}, or portcullis bans remove ADDRESS)"
	case audit.StageReputation:
		fix = "the client address is on a deny list or feed; change the list (reputation, sites[].filters) or allow-list the client"
	case audit.StageGeoIP:
		fix = "a GeoIP rule refused the client's country or network; change sites[].filters"
	case audit.StageRateLimit:
		fix = "the client went over a rate limit; change the limit (rate_limits) if it is too tight"
	case audit.StageProtocol:
		fix = "the request broke a protocol check before any rule ran; these checks have no exclusions"
	case audit.StageGateway:
		fix = "the gateway refused or failed it before the rules (no site or route for the host, or an internal error)"
	case audit.StageProxy:
		fix = "the rules let the request through; the upstream failed"
	default:
		fix = "a limit or an engine failure of the WAF stage decided, not a matched rule"
	}
	return fmt.Sprintf("%s the %s stage%s, not by a rule: no rule exclusion changes that; %s", what, e.Stage, reason, fix)
}

// maxRounds bounds the widening search; each round compiles a rule set.
const maxRounds = 6

// Explain finds the smallest exclusion that lets the record's request pass
// under cfg. Each judgement compiles a rule set (about a second for the
// full CRS), so a suggestion takes a few seconds.
func Explain(ctx context.Context, cfg *config.Config, e *audit.Entry, opts Options) (*Suggestion, error) {
	// Records another stage decided are not judged again: no rule set
	// needs compiling to say so.
	if err := otherStage(e); err != nil {
		return nil, err
	}
	engines := waf.NewCache()
	defer engines.Close()
	site, asBlock := "", false
	judge := func(ex []Exclusion) (replay.Result, error) {
		candidate, err := withExclusions(cfg, site, asBlock, ex)
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
	if now.After == replay.Detected && now.Now.Stage == audit.StageWAF && now.Now.WAFMode == config.ModeDetect {
		// Detect mode, where tuning happens: judge as if in block mode.
		site, asBlock = now.Now.Site, true
		if now, err = judge(nil); err != nil {
			return nil, err
		}
	}
	if now.After != replay.Blocked {
		return nil, fmt.Errorf("%w (recorded as %s%s)", ErrNotBlocked, e.Action, stageSuffix(e.Stage))
	}
	if now.Now.Stage != audit.StageWAF || len(candidates(now.Now))+len(blockingFindings(now.Now)) == 0 {
		return nil, &StageError{Stage: now.Now.Stage, Reason: now.Now.Reason, Action: audit.ActionBlocked}
	}
	site = now.Now.Site
	siteIndex := slices.IndexFunc(cfg.Sites, func(s *config.SiteConfig) bool { return s.Name == site })
	s := &Suggestion{RecordID: e.ID, Site: site, SiteIndex: siteIndex, Route: now.Now.Route, DetectMode: asBlock, Notes: now.Notes}
	s.Attack = attackEvidence(e, append(candidates(now.Now), findingRules(now.Now)...))
	prefix, exact, pathNote := scopePath(e.URI)
	if pathNote != "" {
		s.Notes = append(s.Notes, pathNote)
	}
	var methods []string
	if !opts.AnyMethod {
		methods = []string{e.Method}
	}

	// Widen until the request passes.
	res := now
	for round := 0; round < maxRounds && res.After == replay.Blocked; round++ {
		added := false
		for _, r := range candidates(res.Now) {
			x := Exclusion{RuleID: r.ID, Target: target(r.MatchedVariable), PathPrefix: prefix, ExactPath: exact, Methods: methods, Message: r.Message}
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
		for _, f := range blockingFindings(res.Now) {
			x := Exclusion{Class: f.Class, Target: findingTarget(f.Variable), PathPrefix: prefix, ExactPath: exact, Methods: methods,
				Message: fmt.Sprintf("%s (detector %s) in %s", f.Class, f.Detector, f.Variable)}
			if x.Target == "" {
				note := fmt.Sprintf("the %s finding is in %s, a variable that cannot be used as a target: the exclusion covers the class on this path; review before use", f.Class, strconv.Quote(f.Variable))
				if !slices.Contains(s.Notes, note) {
					s.Notes = append(s.Notes, note)
				}
			}
			if !slices.ContainsFunc(s.Exclusions, func(y Exclusion) bool { return y.Class == x.Class && y.Target == x.Target }) {
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

// otherStage returns the StageError for a record that a stage other than
// the rules decided, judging by the record alone.
func otherStage(e *audit.Entry) error {
	switch {
	case e.Action == audit.ActionError:
		return &StageError{Stage: e.Stage, Reason: e.Reason, Action: e.Action}
	case e.Action != audit.ActionBlocked && e.Action != audit.ActionDetected:
		return nil // allowed: judged, and most likely still not blocked
	}
	switch e.Stage {
	case audit.StageBan, audit.StageReputation, audit.StageGeoIP, audit.StageRateLimit, audit.StageProxy:
		return &StageError{Stage: e.Stage, Reason: e.Reason, Action: e.Action}
	}
	return nil
}

func stageSuffix(stage string) string {
	if stage == "" {
		return ""
	}
	return " by the " + stage + " stage"
}

// scopePath returns the narrowest path scope the configuration can express
// for a request target: the path as the rules see it (percent-decoded,
// REQUEST_FILENAME) as a prefix, or exactly when it is the site root, where
// a prefix would cover every path. A path holding characters an exclusion
// cannot name is cut back to the directory before them, with a note.
func scopePath(uri string) (prefix, exact, note string) {
	p := requestPath(uri)
	if u, err := url.ParseRequestURI(uri); err == nil && u.Path != "" {
		p = u.Path
	}
	if i := strings.IndexAny(p, "\"'\\ \t\r\n"); i >= 0 {
		cut := p[:strings.LastIndexByte(p[:i], '/')+1]
		if cut == "" {
			cut = "/"
		}
		note = fmt.Sprintf("the request path %s holds characters an exclusion cannot name: the scope is the prefix %s", strconv.Quote(p), strconv.Quote(cut))
		if cut == "/" {
			note += ", the whole site"
		}
		return cut, "", note
	}
	if p == "/" {
		return "", "/", note
	}
	return p, "", note
}

// candidates are the rules to exclude for a blocked judgement: the CRS
// detection rules that added to the inbound score, the custom rules with a
// scoring severity (the record cannot say whether they added points too,
// see audit.RuleScore; narrowing drops them when they did not), and a rule
// that denied on its own (custom rules without a severity). Bookkeeping
// rules are never candidates: excluding 949110 would switch off blocking.
func candidates(e *audit.Entry) []audit.MatchedRule {
	var out []audit.MatchedRule
	denied := deniedBy(e.Reason)
	for _, r := range e.Rules {
		if r.Phase > 2 {
			continue // response rules do not block requests
		}
		role, _ := audit.RuleScore(r)
		switch {
		case role == audit.RoleInbound,
			role == audit.RoleOther && audit.SeverityPoints(r.Severity) > 0,
			role != audit.RoleBookkeeping && r.ID == denied:
			out = append(out, r)
		}
	}
	return out
}

// blockingFindings are the detector findings that blocked (profile
// portcullis); each is a candidate for a class exclusion.
func blockingFindings(e *audit.Entry) []audit.Finding {
	var out []audit.Finding
	for _, f := range e.Findings {
		if f.Blocking {
			out = append(out, f)
		}
	}
	return out
}

// findingRules presents blocking findings as matched rules to the attack
// evidence checks, which read the variable's recorded value.
func findingRules(e *audit.Entry) []audit.MatchedRule {
	var out []audit.MatchedRule
	for _, f := range blockingFindings(e) {
		tag := "attack-" + f.Class
		if f.Class == "shell" {
			tag = "attack-rce" // the CRS's name, which the checks read
		}
		out = append(out, audit.MatchedRule{MatchedVariable: f.Variable, MatchedData: f.Evidence, Tags: []string{tag}})
	}
	return out
}

// findingTarget is the exclusion target for a finding's variable: the
// variable itself when its key can be named literally, else "".
func findingTarget(variable string) string {
	_, key, ok := strings.Cut(variable, ":")
	if ok && (key == "" || !SafeKey(key)) {
		return ""
	}
	return variable
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
// every route, as the YAML snippet would after a reload; with asBlock, its
// routes in detect mode are switched to block mode.
func withExclusions(cfg *config.Config, site string, asBlock bool, ex []Exclusion) (*config.Config, error) {
	if len(ex) == 0 && !asBlock {
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
			if asBlock && route.WAF.Mode == config.ModeDetect {
				route.WAF.Mode = config.ModeBlock
			}
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
// were verified. For a request the evidence calls an attack, the items are
// commented out under a warning: pasting them changes nothing.
func (s *Suggestion) YAML() string {
	var b strings.Builder
	switch {
	case len(s.Attack) > 0:
		fmt.Fprintf(&b, "%s audit record %s looks like a real attack, and the WAF did its job:\n", AttackWarning, s.RecordID)
		for _, ev := range s.Attack {
			fmt.Fprintf(&b, "#   %s holds %s: %s\n", ev.Variable, ev.Reason, strconv.Quote(ev.Value))
		}
		b.WriteString("# These exclusions would let such attacks through, so they are commented out. Use them only if\n")
		b.WriteString("# the application needs exactly this input here and never passes it on unescaped.\n")
		if s.Verified {
			b.WriteString("# (Replay: the request passes with them and is blocked without any one of them.)\n")
		} else {
			b.WriteString("# (Replay: the request is still blocked with them.)\n")
		}
	case s.Verified:
		fmt.Fprintf(&b, "# Verified: audit record %s passes with these exclusions and is blocked without any one of them.\n", s.RecordID)
	default:
		fmt.Fprintf(&b, "# NOT verified: audit record %s is still blocked with these exclusions; review before use.\n", s.RecordID)
	}
	if s.DetectMode {
		fmt.Fprintf(&b, "# Note: route %s of site %s is in detect mode, so nothing was blocked; judged as in block mode, these\n", strconv.Quote(s.Route), strconv.Quote(s.Site))
		b.WriteString("# exclusions remove what would block this request once the route is switched to waf.mode: block.\n")
	}
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "# Note: %s.\n", n)
	}
	fmt.Fprintf(&b, "# Add under sites[%d].waf.exclusions (site %s):\n", s.SiteIndex, strconv.Quote(s.Site))
	item := "- "
	field := "  "
	if len(s.Attack) > 0 {
		item, field = "# - ", "#   "
	}
	// One item per scope: the rules excluded for the same target, path and
	// methods go together.
	for i := 0; i < len(s.Exclusions); {
		x := s.Exclusions[i]
		var ids, messages []string
		j := i
		for ; j < len(s.Exclusions) && sameScope(s.Exclusions[j], x); j++ {
			if x.Class != "" {
				if c := s.Exclusions[j].Class; !slices.Contains(ids, c) {
					ids = append(ids, c)
				}
			} else {
				ids = append(ids, strconv.Quote(strconv.Itoa(s.Exclusions[j].RuleID)))
			}
			if m := s.Exclusions[j].Message; m != "" && !slices.Contains(messages, m) {
				messages = append(messages, m)
			}
		}
		i = j
		if x.Class != "" {
			fmt.Fprintf(&b, "%sclasses: [%s]\n", item, strings.Join(ids, ", "))
		} else {
			fmt.Fprintf(&b, "%srule_ids: [%s]\n", item, strings.Join(ids, ", "))
		}
		if x.Target != "" {
			fmt.Fprintf(&b, "%starget: %s\n", field, strconv.Quote(x.Target))
		}
		if x.ExactPath != "" {
			fmt.Fprintf(&b, "%sexact_path: %s\n", field, strconv.Quote(x.ExactPath))
		} else {
			fmt.Fprintf(&b, "%spath_prefix: %s\n", field, strconv.Quote(x.PathPrefix))
		}
		if len(x.Methods) > 0 {
			fmt.Fprintf(&b, "%smethods: [%s]\n", field, strings.Join(x.Methods, ", "))
		}
		comment := fmt.Sprintf("false positive in audit record %s", s.RecordID)
		if len(s.Attack) > 0 {
			comment = fmt.Sprintf("audit record %s, judged an attack", s.RecordID)
		}
		if len(messages) > 0 {
			comment += ": " + strings.Join(messages, "; ")
		}
		fmt.Fprintf(&b, "%scomment: %s\n", field, strconv.Quote(comment))
	}
	return b.String()
}

// AttackWarning starts the first line of a suggestion for a request the
// evidence calls an attack (the dashboard shows such a one as a warning).
const AttackWarning = "# NOT A FIX:"

func sameScope(a, b Exclusion) bool {
	return (a.Class == "") == (b.Class == "") && a.Target == b.Target && a.PathPrefix == b.PathPrefix && a.ExactPath == b.ExactPath && slices.Equal(a.Methods, b.Methods)
}

func (x Exclusion) config() config.ExclusionConfig {
	if x.Class != "" {
		return config.ExclusionConfig{Path: "explain", Classes: []string{x.Class}, Target: x.Target, PathPrefix: x.PathPrefix, ExactPath: x.ExactPath, Methods: x.Methods}
	}
	return config.ExclusionConfig{
		Path:       "explain",
		RuleIDs:    []config.IDRange{{From: x.RuleID, To: x.RuleID}},
		Target:     x.Target,
		PathPrefix: x.PathPrefix,
		ExactPath:  x.ExactPath,
		Methods:    x.Methods,
	}
}
