package gateway

import (
	"net/http"
	"strconv"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/respond"
	"github.com/portcullis-waf/portcullis/waf"
)

// Inspector judges requests the way a pipeline for the same configuration
// would — protocol checks, routing, the route's rule engine — without the
// cheap filters (their verdicts depend on traffic and time, not on the
// request) and without an upstream. It is what `portcullis audit replay`
// and `explain` run recorded requests through, so a candidate configuration
// is judged by the same code as live traffic.
type Inspector struct {
	router *router
}

// passed answers requests the rule engine let through, in place of the proxy.
var passed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })

// NewInspector compiles the rule sets of cfg (reusing engines, which may be
// nil) into an Inspector, with the builder that serving uses.
func NewInspector(cfg *config.Config, engines *waf.Cache) (*Inspector, error) {
	if engines == nil {
		engines = waf.NewCache()
	}
	redactor := audit.NewRedactor(cfg.Audit.RedactHeaders, cfg.Audit.RedactArgs)
	st := buildStages(cfg, engines, inspecting, buildOptions{redactor: redactor})
	if err := st.err(); err != nil {
		return nil, err
	}
	return &Inspector{router: st.router}, nil
}

// Inspect judges r and returns its audit entry: Action is blocked (by the
// protocol checks, routing or the rule engine), detected or allowed, with
// the matched rules and scores. r must carry the client address in
// RemoteAddr (host:port) and its own Host; its body is consumed.
func (in *Inspector) Inspect(r *http.Request) *audit.Entry {
	host, port := splitAddr(r.RemoteAddr)
	entry := &audit.Entry{ClientIP: host, ClientPort: port, Host: r.Host, Method: r.Method, URI: r.RequestURI, Protocol: r.Proto}
	r = r.WithContext(audit.WithEntry(r.Context(), entry))
	rec := &verdictWriter{header: http.Header{}}
	restoreEmptyHost(r)
	r = condemn(r, entry)
	rt := in.router.lookup(r)
	if rt == nil {
		entry.Block(audit.StageGateway, "no site or route for host "+strconv.Quote(r.Host))
		respond.Error(rec, r, http.StatusNotFound, "")
	} else {
		entry.Site, entry.Route = rt.site, rt.path
		rt.handler.ServeHTTP(rec, r)
	}
	entry.Status = rec.code
	if entry.Action == "" {
		entry.Action = audit.ActionAllowed
	}
	return entry
}

// verdictWriter keeps the status of an inspected request and discards the
// page: replay wants the verdict, not the bytes.
type verdictWriter struct {
	header http.Header
	code   int
}

func (w *verdictWriter) Header() http.Header { return w.header }

func (w *verdictWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *verdictWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}
