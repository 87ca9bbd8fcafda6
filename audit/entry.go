// Package audit defines the one record that travels with every request and the
// sinks that persist it.
//
// Place in the request path: the gateway creates an Entry when a request
// arrives and stores it in the request context; a stage that blocks or flags
// annotates it; after the response ends the gateway completes it and hands it to
// a Writer, which writes it asynchronously. Data flows outward once: no stage
// reads what another stage wrote.
//
// # Record schema (JSON lines, one object per line)
//
//	id                     request id, also sent as X-Request-Id and shown on the block page
//	time                   RFC 3339 time the request arrived (UTC, nanoseconds)
//	client_ip, client_port the client address Portcullis decided on
//	peer                   the TCP peer when it differs (a trusted proxy)
//	country, asn, as_org   GeoIP of client_ip, when databases are configured
//	allow_listed           "list: entry" when an allow list let the client skip filters
//	host, method, uri, protocol  as received (uri is the raw request target)
//	site, route            the configured site name and route path that served it
//	status                 status code sent to the client
//	action                 blocked | detected | error | allowed
//	stage                  the stage that decided: protocol | ban | reputation | geoip |
//	                       ratelimit | waf | proxy | gateway
//	reason                 short human text: why it was blocked, flagged or failed
//	waf_mode               block | detect | off (the effective mode for the route)
//	fail_open              true when an engine error was let through by an explicit fail-open policy
//	inbound_anomaly_score, outbound_anomaly_score   CRS blocking anomaly scores
//	rules                  matched rules: id, message, data, variable, matched_data,
//	                       severity, tags, paranoia_level, phase
//	request_headers        header name → values; credentials redacted as "[redacted]"
//	request_body           the body up to audit.body_limit, credentials redacted
//	request_body_truncated true when the body was longer than what was kept
//	sampled                an allowed request kept by audit.sample_allowed (never
//	                       set on blocked, flagged or failed records)
//	upstream               the upstream target URL that was called, if any
//	bytes_sent             response body bytes written to the client
//	duration_us            {waf, upstream, total} in microseconds
//	summary                only on a summary record (see AggregateOptions), which
//	                       stands for requests that were counted instead of
//	                       recorded in full; the fields above are those of the
//	                       first of them (no headers, body or matched data):
//	  count                how many requests it stands for (not counting the
//	                       samples, which have records of their own)
//	  first, last          request times of the first and last of them
//	  window_start, window_end  the aggregation window
//	  source               the client address, or the /64 of an IPv6 client
//	  key                  what the requests shared: source, site, route, stage,
//	                       action, status, reason (numbers and quoted values
//	                       blanked) and rule ids
//	  samples              ids of the records of the same key and window kept
//	                       in full (one the full queue dropped is counted in
//	                       the writer's dropped counter instead)
//	  overflow             true when the key table was full (audit.aggregate.
//	                       max_keys): the count spans many sources, grouped by
//	                       stage, action and status only
package audit

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Actions recorded in Entry.Action.
const (
	ActionBlocked  = "blocked"
	ActionDetected = "detected"
	ActionError    = "error"
	ActionAllowed  = "allowed"
)

// Stages recorded in Entry.Stage.
const (
	StageProtocol   = "protocol"
	StageBan        = "ban"
	StageReputation = "reputation"
	StageGeoIP      = "geoip"
	StageRateLimit  = "ratelimit"
	StageWAF        = "waf"
	StageProxy      = "proxy"
	StageGateway    = "gateway"
	StageChallenge  = "challenge" // a proof-of-work challenge page instead of the content
)

// Redacted replaces the value of every redacted header.
const Redacted = "[redacted]"

// Entry is one audit record. Fields are exported for JSON; only the gateway and
// the stage that decides write to it, and only on the request's own goroutine.
type Entry struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	// Instance names the instance that served the request
	// (cluster.postgres.instance); set by the shared audit store, empty
	// elsewhere.
	Instance      string              `json:"instance,omitempty"`
	ClientIP      string              `json:"client_ip"`
	ClientPort    int                 `json:"client_port,omitempty"`
	Peer          string              `json:"peer,omitempty"`
	Country       string              `json:"country,omitempty"`
	ASN           uint                `json:"asn,omitempty"`
	ASOrg         string              `json:"as_org,omitempty"`
	AllowListed   string              `json:"allow_listed,omitempty"`
	Host          string              `json:"host"`
	Method        string              `json:"method"`
	URI           string              `json:"uri"`
	Protocol      string              `json:"protocol"`
	Site          string              `json:"site,omitempty"`
	Route         string              `json:"route,omitempty"`
	Status        int                 `json:"status"`
	Action        string              `json:"action"`
	Stage         string              `json:"stage,omitempty"`
	Reason        string              `json:"reason,omitempty"`
	WAFMode       string              `json:"waf_mode,omitempty"`
	FailOpen      bool                `json:"fail_open,omitempty"`
	InboundScore  int                 `json:"inbound_anomaly_score"`
	OutboundScore int                 `json:"outbound_anomaly_score"`
	Rules         []MatchedRule       `json:"rules,omitempty"`
	Headers       map[string][]string `json:"request_headers,omitempty"`
	// RequestBody is the request body as received, up to the configured
	// audit body limit, with credential arguments redacted; it lets
	// `portcullis audit replay` re-evaluate the request.
	RequestBody          string `json:"request_body,omitempty"`
	RequestBodyTruncated bool   `json:"request_body_truncated,omitempty"`
	// Sampled marks an allowed request kept by audit.sample_allowed. While
	// the request runs it holds the sampling draw (so the WAF stage keeps
	// the body of a request that may end up sampled); the gateway clears
	// it when a stage decided, so it is never true on a blocked, flagged
	// or failed record.
	Sampled   bool      `json:"sampled,omitempty"`
	Upstream  string    `json:"upstream,omitempty"`
	BytesSent int64     `json:"bytes_sent"`
	Durations Durations `json:"duration_us"`
	// Summary is set only on a summary record: the record then stands for
	// Summary.Count requests that were counted instead of recorded in full.
	Summary *Summary `json:"summary,omitempty"`
}

// Summary describes what a summary record counted (see AggregateOptions).
type Summary struct {
	Count       int       `json:"count"`
	First       time.Time `json:"first"`
	Last        time.Time `json:"last"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Source      string    `json:"source,omitempty"`
	Key         string    `json:"key"`
	Samples     []string  `json:"samples,omitempty"`
	Overflow    bool      `json:"overflow,omitempty"`
}

// Weight is how many requests the record stands for: Summary.Count for a
// summary record, otherwise 1. Counts and rollups add weights, so a summary
// of 5,000 refusals counts 5,000.
func (e *Entry) Weight() int {
	if e.Summary != nil && e.Summary.Count > 0 {
		return e.Summary.Count
	}
	return 1
}

// MatchedRule is one rule that matched during inspection.
type MatchedRule struct {
	ID              int      `json:"id"`
	Message         string   `json:"message,omitempty"`
	Data            string   `json:"data,omitempty"`
	MatchedVariable string   `json:"variable,omitempty"`
	MatchedData     string   `json:"matched_data,omitempty"`
	Severity        string   `json:"severity,omitempty"`
	Tags            []string `json:"tags,omitempty"`
	ParanoiaLevel   int      `json:"paranoia_level,omitempty"`
	Phase           int      `json:"phase"`
}

// Durations are in microseconds: precise enough for a WAF evaluation and still
// readable by humans and log shippers without unit conversion.
type Durations struct {
	WAF      int64 `json:"waf"`
	Upstream int64 `json:"upstream"`
	Total    int64 `json:"total"`
}

// Decided reports whether a stage marked the entry as blocked, detected or
// failed, i.e. whether it must be written even when log_all is off.
func (e *Entry) Decided() bool {
	return e.Action == ActionBlocked || e.Action == ActionDetected || e.Action == ActionError
}

// Block marks the entry as blocked by stage for reason. A later Block keeps the
// first decision: the first stage that stopped the request is the one to blame.
func (e *Entry) Block(stage, reason string) {
	if e.Action == ActionBlocked || e.Action == ActionError {
		return
	}
	e.Action, e.Stage, e.Reason = ActionBlocked, stage, reason
}

// Fail marks the entry as failed (an error, not a verdict) in stage.
func (e *Entry) Fail(stage, reason string) {
	if e.Action == ActionBlocked || e.Action == ActionError {
		return
	}
	e.Action, e.Stage, e.Reason = ActionError, stage, reason
}

// Detect marks the entry as flagged but let through (detect mode).
func (e *Entry) Detect(stage, reason string) {
	if e.Action != "" && e.Action != ActionAllowed {
		return
	}
	e.Action, e.Stage, e.Reason = ActionDetected, stage, reason
}

// alwaysRedacted are headers that carry credentials in every deployment.
var alwaysRedacted = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"}

// DefaultRedactedArgs are request argument names (query or body) whose values
// are credentials in most applications. A rule that matches one of them (a
// password with quote characters trips SQL rules) must not copy the password
// into the audit log.
var DefaultRedactedArgs = []string{"password", "passwd", "pass", "pwd", "passphrase", "secret", "client_secret", "token", "access_token", "refresh_token", "id_token", "api_key", "apikey"}

// Redactor removes credentials from what a record keeps: header values,
// matched data of rules, and query-string values in the URI. It is immutable
// after NewRedactor.
type Redactor struct {
	headers map[string]struct{} // canonical header names
	args    map[string]struct{} // lower-case argument names
}

// NewRedactor returns a Redactor for the built-in credential headers and
// argument names plus extra ones (case-insensitive).
func NewRedactor(extraHeaders, extraArgs []string) *Redactor {
	r := &Redactor{headers: map[string]struct{}{}, args: map[string]struct{}{}}
	for _, n := range append(append([]string(nil), alwaysRedacted...), extraHeaders...) {
		r.headers[http.CanonicalHeaderKey(strings.TrimSpace(n))] = struct{}{}
	}
	for _, n := range append(append([]string(nil), DefaultRedactedArgs...), extraArgs...) {
		r.args[strings.ToLower(strings.TrimSpace(n))] = struct{}{}
	}
	return r
}

// Headers returns a redacted copy of h.
func (r *Redactor) Headers(h http.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		if r.IsSecret(k) {
			red := make([]string, len(vs))
			for i := range red {
				red[i] = Redacted
			}
			out[k] = red
			continue
		}
		if k == "Referer" || k == "Origin" {
			// A previous page's URL may carry a token in its query.
			red := make([]string, len(vs))
			for i, v := range vs {
				red[i] = r.URI(v)
			}
			out[k] = red
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// IsSecret reports whether header name is redacted.
func (r *Redactor) IsSecret(name string) bool {
	_, ok := r.headers[http.CanonicalHeaderKey(name)]
	return ok
}

// IsSecretVariable reports whether a rule variable (a SecLang collection and
// key, e.g. REQUEST_COOKIES and "session") holds a credential. Cookie values
// always do: a session cookie that trips a rule must not land in the log;
// the variable name still says which cookie it was.
func (r *Redactor) IsSecretVariable(collection, key string) bool {
	switch collection {
	case "REQUEST_HEADERS":
		return r.IsSecret(key)
	case "REQUEST_COOKIES":
		return true
	case "ARGS", "ARGS_GET", "ARGS_POST":
		return r.secretName(key)
	}
	return false
}

// secretName reports whether an argument name is a credential, also when
// it is nested: the engine names JSON members "json.user.password" and
// frameworks name form fields "user[password]", so every part of the
// name counts.
func (r *Redactor) secretName(name string) bool {
	name = strings.ToLower(name)
	if _, ok := r.args[name]; ok {
		return true
	}
	for _, part := range strings.FieldsFunc(name, func(c rune) bool { return c == '.' || c == '[' || c == ']' }) {
		if _, ok := r.args[part]; ok {
			return true
		}
	}
	return false
}

// URI returns the request target with the values of redacted query
// arguments replaced, keeping everything else byte for byte.
func (r *Redactor) URI(uri string) string {
	path, query, ok := strings.Cut(uri, "?")
	if !ok || query == "" {
		return uri
	}
	if red, changed := r.form(query); changed {
		return path + "?" + red
	}
	return uri
}

// form redacts the values of secret arguments in an urlencoded form or
// query string, keeping everything else byte for byte.
func (r *Redactor) form(query string) (string, bool) {
	parts := strings.Split(query, "&")
	changed := false
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		if !hasValue {
			continue
		}
		if r.isSecretArg(name) {
			parts[i] = p[:strings.IndexByte(p, '=')+1] + Redacted
			changed = true
		}
	}
	if !changed {
		return query, false
	}
	return strings.Join(parts, "&"), true
}

// isSecretArg reports whether an argument name, possibly percent- or
// plus-encoded, is a credential.
func (r *Redactor) isSecretArg(name string) bool {
	if decoded, err := url.QueryUnescape(name); err == nil {
		name = decoded
	}
	return r.secretName(name)
}

// Names returns the redacted header names, sorted, for documentation and tests.
func (r *Redactor) Names() []string {
	out := make([]string, 0, len(r.headers))
	for n := range r.headers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

type ctxKey struct{}

// WithEntry returns a context that carries e.
func WithEntry(ctx context.Context, e *Entry) context.Context {
	return context.WithValue(ctx, ctxKey{}, e)
}

// FromContext returns the request's entry. It never returns nil: outside the
// gateway (tests, misuse) it returns a throwaway entry so callers need no checks.
func FromContext(ctx context.Context) *Entry {
	if e, ok := ctx.Value(ctxKey{}).(*Entry); ok {
		return e
	}
	return &Entry{}
}
