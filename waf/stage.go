package waf

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/respond"
)

// Stage is the rule-engine stage for one route's engine.
type Stage struct {
	engine   *Engine
	next     http.Handler
	redactor *audit.Redactor
}

var _ http.Handler = (*Stage)(nil)

// NewStage returns a handler that inspects each request with e and passes
// clean ones to next. redactor decides which matched values are credentials.
func NewStage(e *Engine, next http.Handler, redactor *audit.Redactor) *Stage {
	return &Stage{engine: e, next: next, redactor: redactor}
}

// ServeHTTP runs phases 1 and 2, then next, then (optionally) phases 3 and 4
// on the response, and phase 5. Every outcome is written into the audit entry.
func (s *Stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	entry := audit.FromContext(r.Context())
	settings := &s.engine.Settings
	entry.WAFMode = settings.Mode
	if s.engine.waf == nil { // mode off
		s.next.ServeHTTP(w, r)
		return
	}

	start := time.Now()
	tx := s.engine.waf.(experimental.WAFWithOptions).NewTransactionWithOptions(experimental.Options{
		ID: entry.ID, Context: r.Context(),
	})
	inspected := false
	defer func() {
		// Phase 5 (CRS correlation rules) runs after the response, then the
		// findings go into the record, even when a later stage panicked.
		tx.ProcessLogging()
		s.record(entry, tx, inspected)
		_ = tx.Close()
	}()

	it, err := s.inspectRequest(tx, r)
	entry.Durations.WAF = time.Since(start).Microseconds()
	switch {
	case errors.Is(err, errClientBody):
		entry.Block(audit.StageProtocol, err.Error())
		respond.Error(w, r, http.StatusBadRequest, entry.ID)
		return
	case err != nil:
		if settings.OnError == config.OnErrorPass {
			entry.FailOpen = true
			entry.Fail(audit.StageWAF, "rule engine error, passed by on_error: pass: "+err.Error())
			break
		}
		entry.Fail(audit.StageWAF, "rule engine error: "+err.Error())
		respond.Error(w, r, http.StatusInternalServerError, entry.ID)
		return
	case it != nil:
		s.deny(w, r, entry, it, "request")
		return
	}
	inspected = true

	if !settings.ResponseInspect {
		s.next.ServeHTTP(w, r)
		return
	}
	rw := newResponseInspector(w, r, tx, entry, s)
	s.next.ServeHTTP(rw, r)
	rw.finish()
}

// errClientBody marks a failure to read the request body from the client:
// a protocol error of the client (bad chunking, early close), not the engine's.
var errClientBody = errors.New("request body could not be read")

// trackedBody remembers whether reading the client's body failed, so that
// such failures are told apart from engine failures.
type trackedBody struct {
	io.Reader
	err error
}

func (t *trackedBody) Read(p []byte) (int, error) {
	n, err := t.Reader.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// inspectRequest feeds the request to the transaction. It returns the
// interruption if a rule denied the request.
func (s *Stage) inspectRequest(tx types.Transaction, r *http.Request) (*types.Interruption, error) {
	entry := audit.FromContext(r.Context())
	serverIP, serverPort := localAddr(r)
	tx.ProcessConnection(entry.ClientIP, entry.ClientPort, serverIP, serverPort)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	for k, vs := range r.Header {
		for _, v := range vs {
			tx.AddRequestHeader(k, v)
		}
	}
	// net/http moves Host and Transfer-Encoding out of the header map; the
	// rules need them (e.g. CRS 920171 on Transfer-Encoding smuggling).
	if r.Host != "" {
		tx.AddRequestHeader("Host", r.Host)
		tx.SetServerName(hostOnly(r.Host))
	}
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return it, nil
	}

	if r.Body != nil && r.Body != http.NoBody && tx.IsRequestBodyAccessible() {
		settings := &s.engine.Settings
		// A declared length over the limit is refused before reading a byte.
		if settings.BodyOverLimit == config.OverLimitReject && r.ContentLength > settings.BodyLimit {
			return &types.Interruption{Action: "deny", Status: http.StatusRequestEntityTooLarge}, nil
		}
		body := &trackedBody{Reader: r.Body}
		it, _, err := tx.ReadRequestBodyFrom(body)
		if body.err != nil {
			return nil, fmt.Errorf("%w: %v", errClientBody, body.err)
		}
		if err != nil {
			return nil, fmt.Errorf("buffer request body: %w", err)
		}
		if it != nil {
			return it, nil
		}
		buffered, err := tx.RequestBodyReader()
		if err != nil {
			return nil, fmt.Errorf("read back request body: %w", err)
		}
		// What the engine buffered goes first; anything past the limit (only
		// with inspect_partial) streams on from the client.
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(buffered, r.Body), r.Body}
	}
	it, err := tx.ProcessRequestBody()
	if err != nil {
		return nil, fmt.Errorf("process request body: %w", err)
	}
	return it, nil
}

// deny answers an interruption with the neutral page.
func (s *Stage) deny(w http.ResponseWriter, r *http.Request, entry *audit.Entry, it *types.Interruption, what string) {
	status := it.Status
	if status < 400 || status > 599 {
		status = http.StatusForbidden
	}
	entry.Block(audit.StageWAF, fmt.Sprintf("%s denied by rule %d", what, it.RuleID))
	switch it.Action {
	case "redirect":
		if it.Data != "" && (it.Status == 0 || (it.Status >= 300 && it.Status < 400)) {
			code := it.Status
			if code == 0 {
				code = http.StatusFound
			}
			w.Header().Set(respond.RequestIDHeader, entry.ID)
			http.Redirect(w, r, it.Data, code)
			return
		}
	case "drop":
		// The rule asked to drop the connection: answer, then close it.
		w.Header().Set("Connection", "close")
	}
	respond.Error(w, r, status, entry.ID)
}

// record copies the transaction's findings into the audit entry.
func (s *Stage) record(entry *audit.Entry, tx types.Transaction, inspected bool) {
	if state, ok := tx.(plugintypes.TransactionState); ok {
		txVars := state.Variables().TX()
		entry.InboundScore = firstInt(txVars.Get("blocking_inbound_anomaly_score"))
		entry.OutboundScore = firstInt(txVars.Get("blocking_outbound_anomaly_score"))
	}
	logged := 0
	for _, mr := range tx.MatchedRules() {
		if l, ok := mr.(interface{ Log() bool }); ok && !l.Log() {
			continue // bookkeeping rules (nolog) are not findings
		}
		entry.Rules = append(entry.Rules, s.matchedRule(mr))
		logged++
	}
	if logged > 0 && inspected && !tx.IsInterrupted() {
		if entry.WAFMode == config.ModeDetect && (entry.InboundScore >= s.engine.Settings.InboundThreshold || entry.OutboundScore >= s.engine.Settings.OutboundThreshold) {
			entry.Detect(audit.StageWAF, fmt.Sprintf("anomaly score %d/%d reached the threshold (detect mode: not blocked)", entry.InboundScore, entry.OutboundScore))
		} else {
			entry.Detect(audit.StageWAF, fmt.Sprintf("%d rule(s) matched, anomaly score %d/%d below the threshold", logged, entry.InboundScore, entry.OutboundScore))
		}
	}
}

// maxMatchedData bounds matched data in a record; attackers control it.
const maxMatchedData = 512

func (s *Stage) matchedRule(mr types.MatchedRule) audit.MatchedRule {
	meta := mr.Rule()
	out := audit.MatchedRule{
		ID:       meta.ID(),
		Message:  mr.Message(),
		Data:     truncate(mr.Data(), maxMatchedData),
		Severity: severityName(meta.Severity()),
		Tags:     meta.Tags(),
		Phase:    int(meta.Phase()),
	}
	for _, t := range out.Tags {
		if lvl, ok := strings.CutPrefix(t, "paranoia-level/"); ok {
			out.ParanoiaLevel, _ = strconv.Atoi(lvl)
		}
	}
	if mds := mr.MatchedDatas(); len(mds) > 0 {
		md := mds[0]
		out.MatchedVariable = md.Variable().Name()
		if k := md.Key(); k != "" {
			out.MatchedVariable += ":" + k
		}
		out.MatchedData = truncate(md.Value(), maxMatchedData)
		if md.Variable().Name() == "REQUEST_HEADERS" && s.redactor.IsSecret(md.Key()) {
			out.MatchedData = audit.Redacted
			out.Data = audit.Redacted
		}
	}
	return out
}

func severityName(sev types.RuleSeverity) string {
	if int(sev) < 0 {
		return ""
	}
	return sev.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func firstInt(vs []string) int {
	if len(vs) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(vs[0])
	return n
}

func localAddr(r *http.Request) (string, int) {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return "", 0
	}
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String(), tcp.Port
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
