// Package inspect is the request side of the portcullis detection profile:
// it extracts every value an application uses from a request, expands each
// into its plausible decodings (waf/decode) and has the attack-class
// detectors (waf/detect/...) judge them, returning the findings.
//
// Place in the request path: inside the waf stage, after the rule engine
// has run the protocol checks and any custom rules, before the verdict. It
// reads the request head and the body bytes the stage already holds; it
// never reads from the network, keeps no state between requests and is
// safe for concurrent use.
//
// What it extracts: the path (whole, for traversal, and each segment),
// query and form argument names and values, cookies one by one, request
// headers that carry application data (standard negotiation headers whose
// values are fixed-shape tokens are skipped), JSON members (keys and
// values, also newline-delimited JSON and the JSON of report types), XML
// text and attributes plus the document itself (for XXE), multipart field
// values and file names, and, for text/plain and unknown types, the body
// itself (the raw-body pass). Protobuf and gRPC bodies, and binary bodies
// that split into protobuf fields, are walked field by field (see
// protobuf.go); other binary bodies contribute their printable runs.
// Compressed bodies are inflated up to the body limit first.
package inspect

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/portcullis-waf/portcullis/waf/decode"
	"github.com/portcullis-waf/portcullis/waf/detect"
	"github.com/portcullis-waf/portcullis/waf/detect/crlf"
	"github.com/portcullis-waf/portcullis/waf/detect/deserialization"
	"github.com/portcullis-waf/portcullis/waf/detect/jndi"
	"github.com/portcullis-waf/portcullis/waf/detect/ldap"
	"github.com/portcullis-waf/portcullis/waf/detect/nosql"
	"github.com/portcullis-waf/portcullis/waf/detect/shell"
	"github.com/portcullis-waf/portcullis/waf/detect/sqli"
	"github.com/portcullis-waf/portcullis/waf/detect/ssi"
	"github.com/portcullis-waf/portcullis/waf/detect/ssrf"
	"github.com/portcullis-waf/portcullis/waf/detect/ssti"
	"github.com/portcullis-waf/portcullis/waf/detect/traversal"
	"github.com/portcullis-waf/portcullis/waf/detect/xss"
	"github.com/portcullis-waf/portcullis/waf/detect/xxe"
)

// Finding is a detector's finding with where in the request it was made.
type Finding struct {
	detect.Finding
	// Variable names the value: ARGS:q, ARGS_NAMES:q, JSON:user.name,
	// XML:/root/a, REQUEST_HEADERS:X-Note, REQUEST_COOKIES:id,
	// REQUEST_FILENAME, FILES:upload, REQUEST_BODY.
	Variable string
	Where    detect.Where
	// Chain is the decoding that produced the judged variant ("" for the
	// value as the application receives it).
	Chain string
	// Evidence is the span the detector points at, at most MaxEvidence
	// bytes, unredacted (the caller redacts).
	Evidence string
}

// MaxEvidence bounds the evidence a finding carries.
const MaxEvidence = 200

// Limits bound the work done on one request.
type Limits struct {
	// MaxValues is the most values judged (default 2048); past it the
	// request is judged on what was extracted so far and Truncated says so.
	MaxValues int
	// MaxFindings is the most findings kept (default 8): the strongest.
	MaxFindings int
	// MinConfidence is the weakest finding kept (default 30); weaker ones
	// are noise even in a record.
	MinConfidence int
}

// Scope is what one request is judged against: its route's threshold and
// exclusions.
type Scope struct {
	// Threshold is the confidence that blocks; inspection stops at the
	// first finding that reaches it and is not excluded.
	Threshold int
	// Excluded reports whether a finding is excluded for this request
	// (by detector, class or variable); nil excludes nothing.
	Excluded func(f *Finding) bool
}

// Result is what a request's inspection found.
type Result struct {
	// Findings are the strongest findings kept, strongest first.
	Findings []Finding
	// Blocking is the strongest finding at or over the threshold, or nil.
	Blocking *Finding
	// Values is how many values were judged.
	Values int
	// Truncated is set when MaxValues stopped the extraction.
	Truncated bool
}

// Inspector holds the decoder and the detectors. It is immutable.
type Inspector struct {
	dec    *decode.Decoder
	dets   []detect.Detector
	xxe    detect.Detector // also whole XML documents
	binary detect.Detector // also whole binary bodies
	lim    Limits
}

// New returns an Inspector with every detector.
func New(lim Limits) *Inspector {
	if lim.MaxValues <= 0 {
		lim.MaxValues = 2048
	}
	if lim.MaxFindings <= 0 {
		lim.MaxFindings = 8
	}
	if lim.MinConfidence <= 0 {
		lim.MinConfidence = 30
	}
	return &Inspector{
		dec: decode.New(decode.Limits{}),
		dets: []detect.Detector{
			sqli.New(), xss.New(), shell.New(), traversal.New(), ssti.New(), ssrf.New(),
			ldap.New(), nosql.New(), crlf.New(), jndi.New(), deserialization.New(), xxe.New(), ssi.New(),
		},
		xxe:    xxe.New(),
		binary: deserialization.New(),
		lim:    lim,
	}
}

// Detectors returns the classes judged, for documentation and tests.
func (in *Inspector) Detectors() []detect.Class {
	out := make([]detect.Class, 0, len(in.dets))
	for _, d := range in.dets {
		out = append(out, d.Class())
	}
	return out
}

// run is one request's inspection state.
type run struct {
	in     *Inspector
	scope  Scope
	res    Result
	buf    []decode.Variant
	stop   bool
	budget int
	// truncated: the body is the start of a longer one.
	truncated bool
	// fileHead holds the start of one uploaded file at a time (allocated
	// on the first file part).
	fileHead []byte
}

// Body is what the stage holds of a request body.
type Body struct {
	Data []byte
	// Truncated is set when Data is the start of a longer body (a large
	// upload): a part cut at the end is not an error then.
	Truncated bool
	// Limit bounds decompression.
	Limit int64
}

// Request judges r's head and body.
func (in *Inspector) Request(r *http.Request, body Body, scope Scope) Result {
	st := &run{in: in, scope: scope, budget: in.lim.MaxValues, buf: make([]decode.Variant, 0, 16), truncated: body.Truncated}
	st.path(r)
	st.query(r.URL.RawQuery)
	st.headers(r)
	if len(body.Data) > 0 {
		st.body(r.Header, body.Data, body.Limit)
	}
	return st.res
}

// judge decodes one raw value and has every detector judge every variant.
func (st *run) judge(name string, where detect.Where, raw string) {
	if st.stop || raw == "" {
		return
	}
	if st.budget <= 0 {
		st.res.Truncated, st.stop = true, true
		return
	}
	st.budget--
	st.res.Values++
	st.buf = st.in.dec.Append(st.buf[:0], raw)
	for _, v := range st.buf {
		w := where
		if v.Key {
			w = detect.WhereArgName
		}
		in := detect.Input{Value: v.Value, Where: w, Name: name}
		for _, d := range st.in.dets {
			if f, ok := d.Detect(in); ok {
				st.add(f, name, w, v, in.Value)
				if st.stop {
					return
				}
			}
		}
	}
}

// judgeOne runs one detector on a value as it is.
func (st *run) judgeOne(d detect.Detector, name string, where detect.Where, value string) {
	if st.stop || value == "" {
		return
	}
	if f, ok := d.Detect(detect.Input{Value: value, Where: where, Name: name}); ok {
		st.add(f, name, where, decode.Variant{Value: value}, value)
	}
}

// judgeXML runs the XXE detector on a whole document; the other detectors
// judge its text and attributes through judge.
func (st *run) judgeXML(name string, doc string) {
	if st.stop {
		return
	}
	st.judgeOne(st.in.xxe, name, detect.WhereBody, doc)
}

// add keeps f if it is strong enough and not excluded, and stops the
// inspection once a finding reaches the threshold.
func (st *run) add(f detect.Finding, name string, where detect.Where, v decode.Variant, value string) {
	if f.Confidence < st.in.lim.MinConfidence {
		return
	}
	fd := Finding{Finding: f, Variable: name, Where: where, Chain: v.Chain.String(), Evidence: detect.Evidence(value, f, MaxEvidence)}
	if st.scope.Excluded != nil && st.scope.Excluded(&fd) {
		return
	}
	fs := st.res.Findings
	// One finding per variable and class: the strongest.
	for i := range fs {
		if fs[i].Variable == name && fs[i].Class == f.Class {
			if f.Confidence > fs[i].Confidence {
				fs[i] = fd
				st.sort()
			}
			st.check()
			return
		}
	}
	if len(fs) < st.in.lim.MaxFindings {
		st.res.Findings = append(fs, fd)
	} else if f.Confidence > fs[len(fs)-1].Confidence {
		fs[len(fs)-1] = fd
	} else {
		return
	}
	st.sort()
	st.check()
}

func (st *run) sort() {
	fs := st.res.Findings
	for i := 1; i < len(fs); i++ { // insertion sort: at most MaxFindings
		for j := i; j > 0 && fs[j].Confidence > fs[j-1].Confidence; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

func (st *run) check() {
	if len(st.res.Findings) > 0 && st.scope.Threshold > 0 && st.res.Findings[0].Confidence >= st.scope.Threshold {
		st.res.Blocking = &st.res.Findings[0]
		st.stop = true
	}
}

// path judges the whole decoded path (traversal spans segments) and each
// segment that is more than a plain word.
func (st *run) path(r *http.Request) {
	p := r.URL.Path
	if p == "" || p == "/" {
		return
	}
	st.judge("REQUEST_FILENAME", detect.WherePath, p)
	if !strings.Contains(p[1:], "/") {
		return // the one segment was judged as the path
	}
	for i, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		if !plain(seg) {
			st.judge("REQUEST_PATH:"+strconv.Itoa(i), detect.WherePath, seg)
		}
	}
}

// plain reports whether s is letters, digits, '-', '_' and '.' only: no
// detector can find structure in it.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// query judges an urlencoded string's names and values, each
// percent-decoded once as the application's framework would.
func (st *run) query(q string) {
	st.form(q, detect.WhereQuery)
}

func (st *run) form(q string, where detect.Where) {
	for q != "" && !st.stop {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name, value = unescape(name), unescape(value)
		if !plain(name) {
			st.judge("ARGS_NAMES:"+name, detect.WhereArgName, name)
		}
		st.judge("ARGS:"+name, where, value)
	}
}

// unescape percent-decodes a query component, keeping it as sent when it
// is not valid encoding (the decoder still tries its variants).
func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// skippedHeaders carry protocol tokens, not application data: their
// values are fixed-shape (media types, encodings, languages, dates,
// validators, fetch metadata), set by the browser or the HTTP library.
// They are judged only when a value leaves that shape (see tame), since
// attackers put payloads in any header a logging library might read.
// Everything else, custom headers included, is always judged.
var skippedHeaders = map[string]bool{
	"Accept": true, "Accept-Encoding": true, "Accept-Language": true, "Accept-Charset": true,
	"Cache-Control": true, "Connection": true, "Content-Length": true, "Content-Type": true,
	"Content-Encoding": true, "Host": true, "If-Modified-Since": true, "If-None-Match": true,
	"If-Match": true, "If-Unmodified-Since": true, "If-Range": true, "Pragma": true, "Te": true,
	"Upgrade-Insecure-Requests": true, "Priority": true, "Dnt": true, "Range": true,
	"Keep-Alive": true, "Upgrade": true, "Expect": true, "Trailer": true,
	"Transfer-Encoding": true, "Cookie": true, // cookies are judged one by one
	"Origin": true, "Date": true, "Purpose": true, "Sec-Purpose": true, "Save-Data": true,
	"X-Requested-With": true, "Access-Control-Request-Method": true, "Access-Control-Request-Headers": true,
}

// skippedHeader reports whether a header is protocol metadata (above, or
// one of the browser's Sec-Fetch-*, Sec-Ch-* and Sec-WebSocket-* families).
func skippedHeader(name string) bool {
	return skippedHeaders[name] || strings.HasPrefix(name, "Sec-")
}

func (st *run) headers(r *http.Request) {
	for _, line := range r.Header["Cookie"] {
		st.cookies(line)
	}
	for name, vs := range r.Header {
		skip := skippedHeader(name)
		for _, v := range vs {
			if skip && tame(v) {
				continue
			}
			st.judge("REQUEST_HEADERS:"+name, detect.WhereHeader, v)
		}
	}
}

// maxCookies bounds the cookies judged per Cookie header.
const maxCookies = 256

// cookies judges the name=value pairs of a Cookie header as the
// application's framework reads them: split at ';', the value taken as
// sent (a surrounding pair of double quotes removed). net/http's strict
// parser drops a cookie whose value has a double quote or a backslash,
// but PHP, Rails, Express and most others hand it to the application.
func (st *run) cookies(line string) {
	for n := 0; line != "" && n < maxCookies && !st.stop; n++ {
		var part string
		part, line, _ = strings.Cut(line, ";")
		part = strings.TrimSpace(part)
		name, value, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			continue
		}
		value = strings.TrimSpace(value)
		if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		st.judge("REQUEST_COOKIES:"+name, detect.WhereCookie, value)
		if !plain(name) {
			st.judge("REQUEST_COOKIES_NAMES:"+name, detect.WhereArgName, name)
		}
	}
}

// tame reports whether a protocol header's value has the shape such
// values have: short, without the bytes that open code in any of the
// languages judged (quotes for SQL aside: entity tags and client hints
// quote their tokens).
func tame(v string) bool {
	if len(v) > 512 {
		return false
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c < 0x20 && c != '\t', c >= 0x7f:
			return false
		case strings.IndexByte("$'<>{}|`\\%&!#[]", c) >= 0:
			return false
		}
	}
	return true
}

// jsonTypes are media types whose bodies are JSON documents (or
// newline-delimited JSON) besides application/json and */*+json.
var jsonTypes = map[string]bool{
	"application/json": true, "application/x-ndjson": true, "application/ndjson": true,
	"application/x-json-stream": true, "application/jsonl": true, "application/json-seq": true,
	"application/csp-report": true, "text/json": true, "application/x-javascript-json": true,
}

// body judges the request body by its media type.
func (st *run) body(h http.Header, body []byte, limit int64) {
	if ce := h.Get("Content-Encoding"); ce != "" {
		if out, _, err := decode.Decompress(ce, body, limit); err == nil {
			body = out
		}
		// Unknown or broken encodings are judged as sent: the raw pass
		// still sees their printable runs.
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mt = ""
	}
	switch {
	case mt == "application/x-www-form-urlencoded":
		st.form(string(body), detect.WhereForm)
	case mt == "multipart/form-data" || mt == "multipart/mixed":
		st.multipart(body, params["boundary"])
	case jsonTypes[mt] || strings.HasSuffix(mt, "+json") || strings.HasPrefix(mt, "application/x-amz-json"):
		st.json("JSON", body)
	case mt == "text/xml" || mt == "application/xml" || strings.HasSuffix(mt, "+xml"):
		st.xml(body)
	default:
		if framed, text, ok := protoType(mt); ok {
			// The serialized-object detector reads binary bodies whole
			// (its markers are not fields).
			st.judgeOne(st.in.binary, "REQUEST_BODY", detect.WhereBody, string(body[:min(len(body), maxBinary)]))
			if st.protobuf(h, body, framed, text, limit) {
				return
			}
		}
		st.raw(body)
	}
}

// json walks a JSON document (or newline-delimited documents); a body
// that is not JSON after all gets the raw pass.
func (st *run) json(prefix string, body []byte) {
	doc := string(body)
	err := st.walk(prefix, doc)
	if errors.Is(err, decode.ErrMalformed) {
		// ndjson and json-seq: one document per line.
		lines := strings.Split(strings.Trim(doc, "\x1e\r\n"), "\n")
		if len(lines) > 1 {
			for _, line := range lines {
				if st.walk(prefix, strings.Trim(line, "\x1e\r ")) != nil {
					st.judge("REQUEST_BODY", detect.WhereBody, line)
				}
			}
			return
		}
		st.rawText(doc)
	}
}

func (st *run) walk(prefix, doc string) error {
	if strings.TrimSpace(doc) == "" {
		return nil
	}
	return decode.Walker{}.Walk(doc, func(path []byte, value string, kind decode.ValueKind) bool {
		name := prefix + ":" + string(path)
		switch kind {
		case decode.KindKey:
			if !plain(value) {
				st.judge(name, detect.WhereArgName, value)
			}
		case decode.KindString:
			st.judge(name, detect.WhereJSON, value)
		case decode.KindNumber:
			// A number as written is only digits, sign, dot and exponent.
		}
		return !st.stop
	})
}

// maxXMLTokens bounds the tokens read from an XML body.
const maxXMLTokens = 8192

// xml judges the document for external entities, then its text and
// attribute values. A document that does not parse is judged raw.
func (st *run) xml(body []byte) {
	doc := string(body)
	st.judgeXML("REQUEST_BODY", doc)
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = false
	d.Entity = xml.HTMLEntity
	var stack []string
	for n := 0; n < maxXMLTokens && !st.stop; n++ {
		tok, err := d.RawToken()
		if err != nil {
			if err != io.EOF {
				st.rawText(doc)
			}
			return
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) < 64 {
				stack = append(stack, t.Name.Local)
			}
			for _, a := range t.Attr {
				st.judge("XML:/"+strings.Join(stack, "/")+"@"+a.Name.Local, detect.WhereXML, a.Value)
			}
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(t)); s != "" {
				st.judge("XML:/"+strings.Join(stack, "/"), detect.WhereXML, s)
			}
		}
	}
}

// maxParts bounds the parts of a multipart body read.
const maxParts = 256

// multipart judges field values, file names and text file contents of
// JSON or XML type; other file contents are the application's data
// (images, documents) and are not judged.
func (st *run) multipart(body []byte, boundary string) {
	if boundary == "" {
		st.lines(body)
		return
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for n := 0; n < maxParts && !st.stop; n++ {
		p, err := mr.NextRawPart()
		if err != nil {
			if err != io.EOF && !st.truncated {
				st.lines(body) // a broken body is judged line by line
			}
			return
		}
		_, disp, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		name := disp["name"]
		// The file name as sent: Part.FileName keeps only its last path
		// element, which would hide "../" and anything after a slash.
		fn, isFile := disp["filename"]
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		structured := ct == "application/json" || ct == "text/xml" || ct == "application/xml" || strings.HasSuffix(ct, "+xml")
		if isFile && !structured {
			// A file's content is the application's data, not text it
			// parses: only the serialized-object detector reads its
			// start, since applications that take object streams as
			// uploads deserialize them. The rest is skipped, not copied.
			st.judge("FILES:"+name, detect.WhereFileName, fn)
			if st.fileHead == nil {
				st.fileHead = make([]byte, maxBinary)
			}
			n, err := io.ReadFull(p, st.fileHead)
			if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
				st.judgeOne(st.in.binary, "FILES_CONTENT:"+name, detect.WhereBody, string(st.fileHead[:n]))
				_, err = io.Copy(io.Discard, p)
			}
			if err != nil {
				if !st.truncated {
					st.lines(body)
				}
				return
			}
			continue
		}
		data, err := io.ReadAll(p)
		if err != nil {
			if !st.truncated {
				st.lines(body)
			}
			return
		}
		if isFile {
			st.judge("FILES:"+name, detect.WhereFileName, fn)
			if ct == "application/json" {
				st.json("FILES_JSON:"+name, data)
			} else {
				st.judgeXML("FILES:"+name, string(data))
			}
			continue
		}
		if !plain(name) {
			st.judge("ARGS_NAMES:"+name, detect.WhereArgName, name)
		}
		st.judge("ARGS:"+name, detect.WhereForm, string(data))
	}
}

// raw is the raw-body pass for text/plain, unknown and missing types: a
// body that looks like JSON is walked, text is judged whole, binary
// (protobuf, octet-stream) is judged by its printable runs.
func (st *run) raw(body []byte) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 1 && (trimmed[0] == '{' || trimmed[0] == '[') {
		if st.walk("JSON", string(trimmed)) == nil {
			return
		}
	}
	if !protoText(body) {
		if n, ok := protoFields(body); ok && n > 0 && protoHasBytes(body) {
			// Binary that splits into protobuf fields whole (an
			// octet-stream that is a message): its fields, as for a
			// declared protobuf body. (Numbers only would hide text
			// cut into fixed-size fields: that stays text.)
			st.judgeOne(st.in.binary, "REQUEST_BODY", detect.WhereBody, string(body[:min(len(body), maxBinary)]))
			st.protoMessage("", body, 0, true)
			return
		}
	}
	if utf8.Valid(body) && printableShare(body) >= 0.9 {
		st.rawText(string(body))
		return
	}
	st.runs(body)
}

// rawText judges a text body whole and, when it looks like a form
// (name=value pairs without spaces), pair by pair as well.
func (st *run) rawText(s string) {
	st.judge("REQUEST_BODY", detect.WhereBody, s)
	if strings.Contains(s, "=") && !strings.ContainsAny(strings.TrimSpace(s), " \n") {
		st.form(s, detect.WhereForm)
	}
}

// maxBinary is how much of a binary body the serialized-object detector
// reads: the markers sit at the start.
const maxBinary = 64 << 10

// maxLines bounds the lines judged in a body that failed to parse.
const maxLines = 1024

// lines judges a multipart body that did not parse line by line: its
// part headers are CRLF-separated by design, so the whole text would look
// like header injection, while a value an application's laxer parser
// would still find is on a line of its own.
func (st *run) lines(body []byte) {
	n := 0
	for line := range bytes.Lines(body) {
		if n++; n > maxLines || st.stop {
			return
		}
		if l := bytes.TrimRight(line, "\r\n"); len(l) > 0 {
			st.judge("REQUEST_BODY", detect.WhereBody, string(l))
		}
	}
}

// minRun is the shortest printable run of a binary body judged: shorter
// runs are field tags and numbers, not text an application uses.
const minRun = 6

// maxRuns bounds the runs judged in one binary body.
const maxRuns = 256

func (st *run) runs(body []byte) {
	// Serialized objects are binary: the one detector that reads binary
	// judges the body whole (its head and tail windows).
	st.judgeOne(st.in.binary, "REQUEST_BODY", detect.WhereBody, string(body[:min(len(body), maxBinary)]))
	start, n := -1, 0
	for i := 0; i <= len(body) && n < maxRuns && !st.stop; i++ {
		if i < len(body) && body[i] >= 0x20 && body[i] < 0x7f || i < len(body) && (body[i] == '\t' || body[i] == '\n' || body[i] == '\r') {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start >= minRun {
			st.judge("REQUEST_BODY", detect.WhereBody, string(body[start:i]))
			n++
		}
		start = -1
	}
}

// printableShare is the share of bytes that are text (printable ASCII,
// whitespace, or part of a UTF-8 sequence) in up to the first 4 KiB.
func printableShare(b []byte) float64 {
	b = b[:min(len(b), 4096)]
	if len(b) == 0 {
		return 1
	}
	n := 0
	for _, c := range b {
		if c >= 0x20 && c != 0x7f || c == '\t' || c == '\n' || c == '\r' {
			n++
		}
	}
	return float64(n) / float64(len(b))
}
