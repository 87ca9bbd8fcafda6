package respond

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
	"time"
)

// A site may replace the neutral page with its own templates (config
// sites[].block_pages): one for HTML, one for JSON. They see only PageData,
// a fixed set of fields that say nothing about why the request was refused,
// so a template cannot leak a rule id, a matched value or an upstream error
// even by mistake. Templates are parsed and tried once at load; a template
// naming any other field, or failing on the sample data, is refused then,
// never at request time.

// MaxPageSize bounds a rendered page (and so a template's output): a
// refusal page is a few kilobytes.
const MaxPageSize = 64 << 10

// PageData is everything a block page template may show.
type PageData struct {
	// Status is the HTTP status code (403, 429, 503...).
	Status int
	// StatusText is its standard text ("Forbidden").
	StatusText string
	// RequestID is the request's id, also in X-Request-Id and the audit
	// record: what a user quotes to the operator.
	RequestID string
	// Time is when the page was rendered, RFC 3339 in UTC.
	Time string
	// Message is a generic sentence for the status class ("This request was
	// blocked by the site's security policy."), the built-in page's text.
	Message string
}

// PageFields are the names a template may use after the dot.
var PageFields = []string{"Status", "StatusText", "RequestID", "Time", "Message"}

// Pages are a site's own refusal pages. Either template may be nil: that
// format then keeps the built-in page.
type Pages struct {
	html *htmltemplate.Template
	json *texttemplate.Template
}

// PageError is one problem of a template, at its line (1-based; 0 when
// unknown).
type PageError struct {
	File string
	Line int
	Msg  string
}

func (e *PageError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// jsonFuncs are the functions a JSON template may call besides the
// built-ins: json writes a value as a JSON literal (a quoted, escaped
// string), which is how a field belongs in a JSON document.
var jsonFuncs = texttemplate.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// htmlFuncs mirror jsonFuncs so that a template may use json in a <script>
// block; html/template escapes its output for the context anyway.
var htmlFuncs = htmltemplate.FuncMap{"json": jsonFuncs["json"]}

// ParsePages parses and tries the templates. name is what errors call the
// template (its file). An empty text leaves that format built in. Every
// problem is returned, each with its line when the parser gives one.
func ParsePages(htmlName, htmlText, jsonName, jsonText string) (*Pages, []*PageError) {
	p := &Pages{}
	var errs []*PageError
	if htmlText != "" {
		t, err := htmltemplate.New(htmlName).Funcs(htmlFuncs).Parse(htmlText)
		if err != nil {
			errs = append(errs, templateError(htmlName, err))
		} else if fe := checkFields(htmlName, treesOf(t.Templates())); len(fe) > 0 {
			errs = append(errs, fe...)
		} else if err := tryPage(func(w io.Writer, d PageData) error { return t.Execute(w, d) }, false); err != nil {
			errs = append(errs, templateError(htmlName, err))
		} else {
			p.html = t
		}
	}
	if jsonText != "" {
		t, err := texttemplate.New(jsonName).Funcs(jsonFuncs).Parse(jsonText)
		if err != nil {
			errs = append(errs, templateError(jsonName, err))
		} else if fe := checkFields(jsonName, treesOf(t.Templates())); len(fe) > 0 {
			errs = append(errs, fe...)
		} else if err := tryPage(func(w io.Writer, d PageData) error { return t.Execute(w, d) }, true); err != nil {
			errs = append(errs, templateError(jsonName, err))
		} else {
			p.json = t
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

func treesOf[T any](ts []T) []*parse.Tree {
	var out []*parse.Tree
	for _, t := range ts {
		switch v := any(t).(type) {
		case *htmltemplate.Template:
			if v.Tree != nil {
				out = append(out, v.Tree)
			}
		case *texttemplate.Template:
			if v.Tree != nil {
				out = append(out, v.Tree)
			}
		}
	}
	return out
}

// templateError turns "template: NAME:LINE: msg" (and the ":LINE:COL:"
// execution form) into a PageError.
var templateLine = regexp.MustCompile(`^(?:html/)?template: ?(.*?):(\d+)(?::\d+)?: (.*)$`)

func templateError(name string, err error) *PageError {
	msg := err.Error()
	if m := templateLine.FindStringSubmatch(msg); m != nil && m[1] != "" {
		if strings.HasPrefix(m[1], name) {
			n, _ := strconv.Atoi(m[2])
			rest := m[3]
			// Execution errors name the action before the message.
			if i := strings.Index(rest, ": "); i >= 0 && strings.HasPrefix(rest, "executing ") {
				rest = rest[i+2:]
			}
			return &PageError{File: name, Line: n, Msg: rest}
		}
	}
	msg = strings.TrimPrefix(strings.TrimPrefix(msg, "html/template: "), "template: ")
	return &PageError{File: name, Msg: msg}
}

// checkFields refuses every field a template names that PageData lacks
// ({{.Rule}}, {{.Request.Header}}), and any field access on a variable
// ($x.Y), at the line it is written on.
func checkFields(name string, trees []*parse.Tree) []*PageError {
	var errs []*PageError
	for _, tree := range trees {
		var walk func(n parse.Node)
		bad := func(n parse.Node, what string) {
			line := 0
			if loc, _ := tree.ErrorContext(n); loc != "" {
				// loc is "name:line:col".
				parts := strings.Split(loc, ":")
				if len(parts) >= 3 {
					line, _ = strconv.Atoi(parts[len(parts)-2])
				}
			}
			errs = append(errs, &PageError{File: name, Line: line, Msg: what})
		}
		walk = func(n parse.Node) {
			switch n := n.(type) {
			case nil:
			case *parse.ListNode:
				if n == nil {
					return
				}
				for _, c := range n.Nodes {
					walk(c)
				}
			case *parse.ActionNode:
				walk(n.Pipe)
			case *parse.PipeNode:
				if n == nil {
					return
				}
				for _, c := range n.Cmds {
					walk(c)
				}
			case *parse.CommandNode:
				for _, a := range n.Args {
					walk(a)
				}
			case *parse.FieldNode:
				if len(n.Ident) != 1 || !slices.Contains(PageFields, n.Ident[0]) {
					bad(n, fmt.Sprintf("unknown field .%s: a block page may use only %s", strings.Join(n.Ident, "."), fieldList()))
				}
			case *parse.ChainNode:
				bad(n, fmt.Sprintf("field access %s is not allowed: a block page may use only %s", n.String(), fieldList()))
			case *parse.VariableNode:
				if len(n.Ident) > 1 {
					bad(n, fmt.Sprintf("field access %s is not allowed: a block page may use only %s", n.String(), fieldList()))
				}
			case *parse.IfNode:
				walk(n.Pipe)
				walk(n.List)
				walk(n.ElseList)
			case *parse.RangeNode:
				walk(n.Pipe)
				walk(n.List)
				walk(n.ElseList)
			case *parse.WithNode:
				// Inside with/range the dot changes; PageData has no nested
				// values, so both are refused to keep field checks exact.
				bad(n, "{{with}} is not allowed in a block page")
			case *parse.TemplateNode:
				walk(n.Pipe)
			}
		}
		walk(tree.Root)
	}
	return errs
}

func fieldList() string {
	out := make([]string, len(PageFields))
	for i, f := range PageFields {
		out[i] = "." + f
	}
	return strings.Join(out, ", ")
}

// tryPage renders the template for every status Portcullis answers with,
// with a request id full of characters that need escaping: an execution
// error, an oversized page or (JSON) output that is not one JSON value is
// refused at load, not discovered by a client.
func tryPage(exec func(io.Writer, PageData) error, wantJSON bool) error {
	for _, status := range []int{400, 403, 404, 413, 429, 500, 503} {
		var b bytes.Buffer
		d := pageData(status, `"sample<&>'\id`, time.Unix(0, 0))
		if err := exec(&limitWriter{w: &b, n: MaxPageSize}, d); err != nil {
			return err
		}
		if wantJSON && !json.Valid(b.Bytes()) {
			return fmt.Errorf("output for status %d is not valid JSON (write fields as {{json .RequestID}}, which quotes and escapes them)", status)
		}
	}
	return nil
}

var errPageTooLarge = fmt.Errorf("page is larger than %d bytes", MaxPageSize)

// limitWriter fails once more than n bytes were written.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, errPageTooLarge
	}
	l.n -= len(p)
	return l.w.Write(p)
}

func pageData(status int, requestID string, now time.Time) PageData {
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	return PageData{Status: status, StatusText: text, RequestID: requestID, Time: now.UTC().Format(time.RFC3339), Message: explain(status)}
}

type pagesKey struct{}

// WithPages returns ctx carrying a site's pages: every refusal written for
// the request afterwards (by any stage, through this package) uses them.
// A nil p leaves ctx as it is.
func WithPages(ctx context.Context, p *Pages) context.Context {
	if p == nil {
		return ctx
	}
	return context.WithValue(ctx, pagesKey{}, p)
}

func pagesFrom(ctx context.Context) *Pages {
	p, _ := ctx.Value(pagesKey{}).(*Pages)
	return p
}

// render writes the site's page for the format into a buffer; ok is false
// when the site has no template for it (or, never expected after the load
// check, the template fails), and the built-in page is used.
func (p *Pages) render(asJSON bool, status int, requestID string) ([]byte, bool) {
	if p == nil {
		return nil, false
	}
	d := pageData(status, requestID, time.Now())
	var b bytes.Buffer
	lw := &limitWriter{w: &b, n: MaxPageSize}
	var err error
	switch {
	case asJSON && p.json != nil:
		err = p.json.Execute(lw, d)
	case !asJSON && p.html != nil:
		err = p.html.Execute(lw, d)
	default:
		return nil, false
	}
	if err != nil {
		return nil, false
	}
	return b.Bytes(), true
}
