package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"

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

// maxBody is the body bytes inspected, as the stage's default body limit.
const maxBody = 1 << 20

type evaluator struct {
	dec    *decode.Decoder
	dets   []detect.Detector
	thresh int
}

func newEvaluator(thresh int) *evaluator {
	return &evaluator{
		dec:    decode.New(decode.Limits{}),
		thresh: thresh,
		dets: []detect.Detector{sqli.New(), xss.New(), shell.New(), traversal.New(), ssti.New(), ssrf.New(),
			ldap.New(), nosql.New(), xxe.New(), crlf.New(), jndi.New(), deserialization.New(), ssi.New()},
	}
}

// explain prints every finding on every decoding of v.
func (ev *evaluator) explain(w io.Writer, v string, where detect.Where) {
	for _, vr := range ev.dec.Variants(v) {
		fmt.Fprintf(w, "variant %q via %q\n", vr.Value, vr.Chain.String())
		for _, d := range ev.dets {
			if f, ok := d.Detect(detect.Input{Value: vr.Value, Where: where, Name: "ARGS:v"}); ok {
				fmt.Fprintf(w, "  %-16s %3d %s: %q\n", f.Detector, f.Confidence, f.Reason, detect.Evidence(vr.Value, f, 120))
			}
		}
	}
}

// value is one extracted request value.
type value struct {
	v     string
	where detect.Where
	name  string
}

// judge runs every detector on every decoding of every value of it and
// returns the strongest finding.
func (ev *evaluator) judge(it *item, buf []decode.Variant) (hit, []decode.Variant) {
	var best hit
	for _, x := range extract(it) {
		buf = ev.dec.Append(buf[:0], x.v)
		for _, vr := range buf {
			where := x.where
			if vr.Key {
				where = detect.WhereArgName
			}
			in := detect.Input{Value: vr.Value, Where: where, Name: x.name}
			for _, d := range ev.dets {
				f, ok := d.Detect(in)
				if ok && f.Confidence > best.f.Confidence {
					best = hit{f: f, value: vr.Value, name: x.name, chain: vr.Chain.String()}
				}
			}
		}
	}
	best.flagged = best.f.Confidence >= ev.thresh
	return best, buf
}

// skipHeaders are framing headers the server consumes; Cookie is split
// into cookies.
var skipHeaders = map[string]bool{"content-length": true, "transfer-encoding": true, "cookie": true, "host": true, "connection": true}

// extract returns the values an application reads from the request, each
// decoded once by its transport (percent-encoding of the URL and forms,
// the body's Content-Encoding), as the waf stage hands them to waf/decode.
func extract(it *item) []value {
	var out []value
	target := it.Target
	rawPath, rawQuery, _ := strings.Cut(target, "?")
	if p, err := url.PathUnescape(rawPath); err == nil {
		out = append(out, value{p, detect.WherePath, "REQUEST_FILENAME"})
	} else {
		out = append(out, value{rawPath, detect.WherePath, "REQUEST_FILENAME"})
	}
	for _, seg := range strings.Split(rawPath, "/") {
		if seg == "" {
			continue
		}
		if s, err := url.PathUnescape(seg); err == nil {
			seg = s
		}
		out = append(out, value{seg, detect.WherePath, "PATH_SEGMENT"})
	}
	out = appendForm(out, rawQuery, detect.WhereQuery, "ARGS_GET")
	for _, h := range it.Headers {
		name := strings.ToLower(h[0])
		if name == "cookie" {
			for _, c := range strings.Split(h[1], ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(c), "=")
				out = append(out, value{k, detect.WhereArgName, "REQUEST_COOKIES_NAMES"}, value{v, detect.WhereCookie, "REQUEST_COOKIES:" + k})
			}
		}
		if skipHeaders[name] {
			continue
		}
		out = append(out, value{h[1], detect.WhereHeader, "REQUEST_HEADERS:" + h[0]})
	}
	body := it.body()
	if len(body) == 0 {
		return out
	}
	if ce := it.header("Content-Encoding"); ce != "" {
		if b, _, err := decode.Decompress(ce, body, maxBody); err == nil {
			body = b
		}
	}
	if len(body) > maxBody {
		body = body[:maxBody]
	}
	ct, params, _ := mime.ParseMediaType(it.header("Content-Type"))
	switch {
	case ct == "application/x-www-form-urlencoded":
		out = appendForm(out, string(body), detect.WhereForm, "ARGS_POST")
	case ct == "application/json" || strings.HasSuffix(ct, "+json"):
		w := decode.Walker{MaxDepth: 64, MaxValues: 4096}
		_ = w.Walk(string(body), func(path []byte, v string, kind decode.ValueKind) bool {
			where := detect.WhereJSON
			if kind == decode.KindKey {
				where = detect.WhereArgName
			}
			out = append(out, value{v, where, "JSON:" + string(path)})
			return true
		})
	case strings.HasSuffix(ct, "xml"):
		out = append(out, value{string(body), detect.WhereBody, "REQUEST_BODY"})
		out = appendXML(out, body)
	case strings.HasPrefix(ct, "multipart/"):
		out = appendMultipart(out, body, params["boundary"])
	default:
		out = append(out, value{string(body), detect.WhereBody, "REQUEST_BODY"})
		if formShaped(body) {
			// text/plain and untyped bodies that are name=value pairs:
			// applications (PHP, Rails) read them as forms.
			out = appendForm(out, string(body), detect.WhereForm, "ARGS_POST")
		}
	}
	return out
}

// formShaped: one line of name=value pairs joined by '&'.
func formShaped(b []byte) bool {
	if len(b) == 0 || len(b) > 64<<10 || bytes.IndexByte(b, '=') <= 0 {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c == ' ' {
			return false
		}
	}
	return true
}

func appendForm(out []value, raw string, where detect.Where, prefix string) []value {
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if s, err := url.QueryUnescape(k); err == nil {
			k = s
		}
		if s, err := url.QueryUnescape(v); err == nil {
			v = s
		}
		out = append(out, value{k, detect.WhereArgName, prefix + "_NAMES"}, value{v, where, prefix + ":" + k})
		if n, rest, ok := strings.Cut(k, "="); ok && v == "" && rest != "" {
			// "pay%3D…" with no value: a name that carried an encoded
			// '=' is read as name=value by a framework that decodes
			// before splitting.
			out = append(out, value{rest, where, prefix + ":" + n})
		}
	}
	return out
}

// appendXML adds the text and attribute values of an XML document (what
// an application reads after parsing it).
func appendXML(out []value, body []byte) []value {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = false
	d.Entity = xml.HTMLEntity
	for n := 0; n < 4096; n++ {
		tok, err := d.RawToken()
		if err != nil {
			if err != io.EOF {
				// Not well-formed (control bytes, a broken tag): read the
				// text between tags as a lenient parser would.
				for rest := string(body); rest != ""; {
					_, after, ok := strings.Cut(rest, ">")
					if !ok {
						break
					}
					text, tail, _ := strings.Cut(after, "<")
					if s := strings.TrimSpace(text); s != "" {
						out = append(out, value{html.UnescapeString(s), detect.WhereXML, "XML:/*"})
					}
					rest = tail
				}
			}
			break
		}
		switch t := tok.(type) {
		case xml.CharData:
			if s := strings.TrimSpace(string(t)); s != "" {
				out = append(out, value{s, detect.WhereXML, "XML:/*"})
			}
		case xml.StartElement:
			for _, a := range t.Attr {
				out = append(out, value{a.Value, detect.WhereXML, "XML:@" + a.Name.Local})
			}
		}
	}
	return out
}

func appendMultipart(out []value, body []byte, boundary string) []value {
	if boundary == "" {
		return append(out, value{string(body), detect.WhereBody, "REQUEST_BODY"})
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for n := 0; n < 256; n++ {
		p, err := mr.NextRawPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(io.LimitReader(p, maxBody))
		name := p.FormName()
		out = append(out, value{name, detect.WhereArgName, "FILES_NAMES"})
		if fn := p.FileName(); fn != "" || strings.Contains(p.Header.Get("Content-Disposition"), "filename") {
			_, dp, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
			out = append(out, value{dp["filename"], detect.WhereFileName, "FILES:" + name})
			out = append(out, value{string(b), detect.WhereBody, "FILES_CONTENT:" + name})
			continue
		}
		out = append(out, value{string(b), detect.WhereForm, "ARGS_POST:" + name})
	}
	return out
}
