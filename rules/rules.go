// Package rules turns a route's WAF settings into the SecLang rule set that the
// rule engine compiles: engine directives, the OWASP Core Rule Set embedded in
// the binary (github.com/corazawaf/coraza-coreruleset/v4), paranoia level,
// anomaly thresholds, custom rules and exclusions.
//
// Place in the request path: none at run time. rules runs when a configuration
// is loaded; waf compiles its output once per distinct rule set (Key) and
// shares the result between every route that has the same settings.
//
// Rule ids: Portcullis generates rules with ids from GeneratedIDBase up; custom
// rules must not use that range. The engine rules use the 200000-200009 ids of
// Coraza's recommended configuration so existing exclusions keep working.
package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"

	"github.com/portcullis-waf/portcullis/config"
)

// GeneratedIDBase is the first id of rules that Portcullis writes itself
// (conditional exclusions). The range is 95000000-95099999.
const GeneratedIDBase = 95000000

// FS is the file system rule sets are loaded from: the embedded CRS.
func FS() fs.FS { return coreruleset.FS }

// Piece is one part of a rule set with where it came from, so that a
// compilation error can name the config field or file at fault.
type Piece struct {
	Origin string
	Text   string
}

// Build returns the rule set for s as ordered pieces. Order matters:
// engine settings, custom rules before the CRS, conditional exclusions (they
// act at run time, so they must run before the rules they disable), the CRS,
// static exclusions (they edit already loaded rules), custom rules after.
func Build(s config.WAFSettings) []Piece {
	pieces := []Piece{{Origin: "engine settings", Text: engineDirectives(s)}}
	for _, r := range s.RulesBefore {
		pieces = append(pieces, Piece{Origin: r.Origin, Text: r.Text})
	}
	if cond := conditionalExclusions(s.Exclusions); cond != "" {
		pieces = append(pieces, Piece{Origin: "exclusions", Text: cond})
	}
	if s.CRS {
		pieces = append(pieces, crsWithPlugins(crsDirectives(s), s.Plugins)...)
	}
	if static := staticExclusions(s.Exclusions); static != "" {
		pieces = append(pieces, Piece{Origin: "exclusions", Text: static})
	}
	for _, r := range s.RulesAfter {
		pieces = append(pieces, Piece{Origin: r.Origin, Text: r.Text})
	}
	// Last, once every rule that picks a body processor has run.
	if limit := parsedBodyLimit(s); limit != "" {
		pieces = append(pieces, Piece{Origin: "request_body.no_files_limit", Text: limit})
	}
	return pieces
}

// ParsedBodyLimitID is the rule that lowers the body limit to
// request_body.no_files_limit for bodies the engine parses.
const ParsedBodyLimitID = 200011

// parsedBodyLimit lowers the engine's body limit for bodies it parses into
// variables (every processor but multipart, whose files go to disk), as
// ModSecurity's SecRequestBodyNoFilesLimit does; Coraza reads that
// directive but does not apply it. A body over it is refused or inspected
// in part, like one over request_body.limit.
func parsedBodyLimit(s config.WAFSettings) string {
	if s.BodyNoFilesLimit <= 0 || s.BodyNoFilesLimit >= s.BodyLimit {
		return ""
	}
	// +1: the engine refuses a body that reaches its limit; ours is the
	// largest accepted (as with SecRequestBodyLimit).
	return fmt.Sprintf(`SecRule REQBODY_PROCESSOR "!@rx ^(?:MULTIPART)?$" "id:%d,phase:1,pass,nolog,noauditlog,t:none,ctl:requestBodyLimit=%d"`, ParsedBodyLimitID, s.BodyNoFilesLimit+1)
}

// Text joins the pieces of Build into one SecLang document.
func Text(pieces []Piece) string {
	var b strings.Builder
	for _, p := range pieces {
		fmt.Fprintf(&b, "# --- %s\n%s\n", p.Origin, p.Text)
	}
	return b.String()
}

// Key identifies a rule set: routes whose settings have equal keys share one
// compiled engine. Everything that changes compilation is part of it.
func Key(s config.WAFSettings) string {
	type keyed struct {
		Mode              string
		CRS               bool
		Paranoia          int
		In, Out           int
		BodyLimit         int64
		BodyOverLimit     string
		ResponseInspect   bool
		ResponseMIMETypes []string
		ResponseLimit     int64
		Vars              [][2]string
		Rules             []string
	}
	k := keyed{
		Mode: s.Mode, CRS: s.CRS, Paranoia: s.Paranoia, In: s.InboundThreshold, Out: s.OutboundThreshold,
		BodyLimit: s.BodyLimit, BodyOverLimit: s.BodyOverLimit,
		ResponseInspect: s.ResponseInspect, ResponseMIMETypes: s.ResponseMIMETypes, ResponseLimit: s.ResponseLimit,
	}
	// The rule texts alone, without where they came from: equal rules
	// written on two routes are one rule set.
	for _, p := range Build(s) {
		k.Rules = append(k.Rules, p.Text)
	}
	for _, name := range slices.Sorted(maps.Keys(s.CRSVariables)) {
		k.Vars = append(k.Vars, [2]string{name, s.CRSVariables[name]})
	}
	b, _ := json.Marshal(k) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// engineDirectives configures the engine the way Coraza's recommended
// configuration does, with the limits taken from the settings.
func engineDirectives(s config.WAFSettings) string {
	var b strings.Builder
	engine := "On"
	if s.Mode == config.ModeDetect {
		engine = "DetectionOnly"
	}
	limitAction := "Reject"
	if s.BodyOverLimit == config.OverLimitPartial {
		limitAction = "ProcessPartial"
	}
	inMemory := min(s.BodyLimit, 128<<10)
	fmt.Fprintf(&b, "SecRuleEngine %s\n", engine)
	b.WriteString("SecRequestBodyAccess On\n")
	// Coraza refuses a body that reaches its limit; ours is the largest body
	// accepted, so a body of exactly request_body.limit bytes passes.
	fmt.Fprintf(&b, "SecRequestBodyLimit %d\n", s.BodyLimit+1)
	fmt.Fprintf(&b, "SecRequestBodyInMemoryLimit %d\n", inMemory)
	fmt.Fprintf(&b, "SecRequestBodyLimitAction %s\n", limitAction)
	b.WriteString("SecRequestBodyJsonDepthLimit 1024\n")
	b.WriteString("SecArgumentsLimit 1000\n")
	if s.ResponseInspect {
		b.WriteString("SecResponseBodyAccess On\n")
		fmt.Fprintf(&b, "SecResponseBodyMimeType %s\n", strings.Join(s.ResponseMIMETypes, " "))
		fmt.Fprintf(&b, "SecResponseBodyLimit %d\n", s.ResponseLimit)
		b.WriteString("SecResponseBodyLimitAction ProcessPartial\n")
	} else {
		b.WriteString("SecResponseBodyAccess Off\n")
	}
	// Rules of phases 3-5 log by default, as in ModSecurity; Coraza only has
	// a built-in default for phase 2, so the CRS response rules (95x) would
	// otherwise match without a trace. (crs-setup sets phases 1 and 2.)
	b.WriteString("SecDefaultAction \"phase:3,log,auditlog,pass\"\n")
	b.WriteString("SecDefaultAction \"phase:4,log,auditlog,pass\"\n")
	b.WriteString("SecDefaultAction \"phase:5,log,auditlog,pass\"\n")
	// Portcullis writes its own audit records; Coraza's audit log stays off.
	b.WriteString("SecAuditEngine Off\n")
	b.WriteString(`SecRule REQUEST_HEADERS:Content-Type "@rx ^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/[a-z0-9.-]+[+]json" "id:200006,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule URI_PARSE_ERROR "@eq 1" "id:200009,phase:1,t:none,log,deny,status:400,msg:'URI failed to parse.'"
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%{reqbody_error_msg}',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation.'"
SecRule ARGUMENTS_LIMIT_REACHED "@eq 1" "id:200004,phase:1,t:none,log,deny,status:400,msg:'Argument limit reached; request rejected (GET/PATH args)'"
SecRule ARGUMENTS_LIMIT_REACHED "@eq 1" "id:200005,phase:2,t:none,log,deny,status:400,msg:'Argument limit reached; request rejected (POST args)'"
`)
	return b.String()
}

// crsDirectives loads the embedded CRS with the settings' paranoia level,
// thresholds and variables. The SecActions run in phase 1 before
// REQUEST-901-INITIALIZATION, which only fills in variables still unset.
func crsDirectives(s config.WAFSettings) string {
	var b strings.Builder
	b.WriteString("Include @crs-setup.conf.example\n")
	fmt.Fprintf(&b, "SecAction \"id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=%d\"\n", s.Paranoia)
	fmt.Fprintf(&b, "SecAction \"id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=%d\"\n",
		s.InboundThreshold, s.OutboundThreshold)
	if len(s.CRSVariables) > 0 {
		var acts []string
		for _, name := range slices.Sorted(maps.Keys(s.CRSVariables)) {
			// Values were checked for quotes and line breaks by config; the
			// single quotes keep spaces (allowed_methods) in one value.
			acts = append(acts, fmt.Sprintf("setvar:'tx.%s=%s'", name, s.CRSVariables[name]))
		}
		fmt.Fprintf(&b, "SecAction \"id:900001,phase:1,pass,t:none,nolog,%s\"\n", strings.Join(acts, ","))
	}
	b.WriteString(crsRulesInclude)
	// CRS 901340 asks for REQUEST_BODY to be filled for bodies of any other
	// type (ModSecurity's forceRequestBodyVariable). Coraza does that by
	// parsing them as a form, so a 10 MB upload becomes a 10 MB argument
	// name that every ARGS_NAMES rule transforms again (gigabytes allocated,
	// seconds of CPU). The raw processor fills REQUEST_BODY alone, as
	// ModSecurity does.
	b.WriteString(`SecRule REQBODY_PROCESSOR "!@rx (?:URLENCODED|MULTIPART|XML|JSON)" "id:200010,phase:1,pass,nolog,noauditlog,t:none,ctl:requestBodyProcessor=RAW"` + "\n")
	return b.String()
}

// crsRulesInclude loads the CRS rule files; CRS plugins go around it.
const crsRulesInclude = "Include @owasp_crs/*.conf\n"

// crsWithPlugins places the plugins' files around the CRS the way the CRS
// orders them (its plugin documentation, and crs-setup.conf's Include
// lines): every plugin's *-config.conf after the CRS setup (crs is setup
// first, then the rules), every *-before.conf next, then the CRS rules,
// then every *-after.conf. Plugins come in the order listed, each plugin's
// files sorted by name.
func crsWithPlugins(crs string, plugins []*config.CRSPlugin) []Piece {
	if len(plugins) == 0 {
		return []Piece{{Origin: "OWASP CRS", Text: crs}}
	}
	setup, rest, found := strings.Cut(crs, crsRulesInclude)
	if !found { // no rule include to put them around: keep the CRS whole
		return []Piece{{Origin: "OWASP CRS", Text: crs}}
	}
	pieces := []Piece{{Origin: "OWASP CRS setup", Text: setup}}
	add := func(files func(*config.CRSPlugin) []config.RuleText) {
		for _, pl := range plugins {
			for _, f := range files(pl) {
				pieces = append(pieces, Piece{Origin: f.Origin, Text: f.Text})
			}
		}
	}
	add(func(pl *config.CRSPlugin) []config.RuleText { return pl.Config })
	add(func(pl *config.CRSPlugin) []config.RuleText { return pl.Before })
	pieces = append(pieces, Piece{Origin: "OWASP CRS", Text: crsRulesInclude + rest})
	add(func(pl *config.CRSPlugin) []config.RuleText { return pl.After })
	return pieces
}

// staticExclusions are exclusions without a path or method condition; they
// edit the loaded rules once, at compile time, and cost nothing per request.
func staticExclusions(exs []config.ExclusionConfig) string {
	var b strings.Builder
	for _, e := range exs {
		if conditional(e) {
			continue
		}
		for _, r := range e.RuleIDs {
			if e.Target == "" {
				fmt.Fprintf(&b, "SecRuleRemoveById %s\n", r)
			} else {
				// One directive per id: Coraza applies only the first id of a list.
				fmt.Fprintf(&b, "SecRuleUpdateTargetById %s \"!%s\"\n", r, e.Target)
			}
		}
		// Coraza compares tags exactly (ModSecurity documents a regular
		// expression); tags are validated to hold no regex or quote characters
		// that would make the two readings differ.
		for _, t := range e.Tags {
			if e.Target == "" {
				fmt.Fprintf(&b, "SecRuleRemoveByTag %s\n", t)
			} else {
				fmt.Fprintf(&b, "SecRuleUpdateTargetByTag %s \"!%s\"\n", t, e.Target)
			}
		}
	}
	return b.String()
}

// pathOperator matches a path prefix the way routes do: "/upload" covers
// "/upload" and "/upload/..." but not "/uploads"; "/upload/" covers
// "/upload/...". (The gateway refuses paths with dot segments, so
// "/upload/../admin" never reaches the rules.)
func pathOperator(prefix string) string {
	if strings.HasSuffix(prefix, "/") {
		return "@beginsWith " + prefix
	}
	return "@rx ^" + regexp.QuoteMeta(prefix) + "(?:/|$)"
}

func conditional(e config.ExclusionConfig) bool {
	return e.PathPrefix != "" || e.ExactPath != "" || len(e.Methods) > 0
}

// conditionalExclusions are exclusions scoped by path prefix or method: a
// phase-1 rule per exclusion that, when the condition holds, removes the rules
// or targets for this transaction only (ctl:ruleRemove*).
func conditionalExclusions(exs []config.ExclusionConfig) string {
	var b strings.Builder
	id := GeneratedIDBase
	for _, e := range exs {
		if !conditional(e) {
			continue
		}
		var ctls []string
		for _, r := range e.RuleIDs {
			if e.Target == "" {
				ctls = append(ctls, "ctl:ruleRemoveById="+r.String())
			} else {
				ctls = append(ctls, fmt.Sprintf("ctl:ruleRemoveTargetById=%s;%s", r, e.Target))
			}
		}
		for _, t := range e.Tags {
			if e.Target == "" {
				ctls = append(ctls, "ctl:ruleRemoveByTag="+t)
			} else {
				ctls = append(ctls, fmt.Sprintf("ctl:ruleRemoveTargetByTag=%s;%s", t, e.Target))
			}
		}
		var conds [][2]string // variable, operator
		if e.PathPrefix != "" {
			conds = append(conds, [2]string{"REQUEST_FILENAME", pathOperator(e.PathPrefix)})
		}
		if e.ExactPath != "" {
			// Validated to hold no quotes, backslashes or spaces.
			conds = append(conds, [2]string{"REQUEST_FILENAME", "@streq " + e.ExactPath})
		}
		if len(e.Methods) > 0 {
			quoted := make([]string, len(e.Methods))
			for i, m := range e.Methods {
				quoted[i] = regexp.QuoteMeta(m)
			}
			conds = append(conds, [2]string{"REQUEST_METHOD", "@rx ^(?:" + strings.Join(quoted, "|") + ")$"})
		}
		for i, c := range conds {
			var acts []string
			if i == 0 {
				acts = append(acts, fmt.Sprintf("id:%d", id), "phase:1", "pass", "nolog")
			}
			acts = append(acts, "t:none")
			if i < len(conds)-1 {
				acts = append(acts, "chain")
			} else {
				acts = append(acts, ctls...)
			}
			fmt.Fprintf(&b, "SecRule %s \"%s\" \"%s\"\n", c[0], c[1], strings.Join(acts, ","))
		}
		id++
	}
	return b.String()
}
