package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Placements of attack values (labels; see Item.Placement).
var placements = []string{"query", "arg_name", "path", "cookie", "header", "form", "json", "xml", "multipart", "file_name", "body"}

// placementWeights decides how often each placement is drawn.
var placementWeights = map[string]int{"query": 20, "form": 14, "json": 14, "header": 9, "cookie": 8, "path": 6, "multipart": 7, "xml": 6, "arg_name": 5, "file_name": 4, "body": 6}

// classPlacements are the placements where a class's payload is a working
// attack: where an application takes the value and uses it the way the
// class exploits.
var classPlacements = map[string][]string{
	"sqli":            {"query", "arg_name", "path", "cookie", "header", "form", "json", "xml", "multipart", "file_name"},
	"xss":             {"query", "arg_name", "path", "cookie", "header", "form", "json", "xml", "multipart", "file_name", "body"},
	"shell":           {"query", "path", "cookie", "header", "form", "json", "xml", "multipart", "file_name", "body"},
	"traversal":       {"query", "path", "cookie", "header", "form", "json", "xml", "multipart", "file_name"},
	"ssti":            {"query", "path", "cookie", "header", "form", "json", "xml", "multipart", "body"},
	"ssrf":            {"query", "path", "header", "form", "json", "xml", "multipart"},
	"ldap":            {"query", "cookie", "header", "form", "json", "xml", "multipart"},
	"nosql":           {"query", "arg_name", "cookie", "form", "json", "body"},
	"xxe":             {"query", "form", "json", "xml", "multipart", "body"},
	"crlf":            {"query", "path", "cookie", "form", "json", "xml", "multipart"},
	"jndi":            {"query", "arg_name", "path", "cookie", "header", "form", "json", "xml", "multipart", "file_name", "body"},
	"deserialization": {"query", "cookie", "header", "form", "json", "multipart", "body"},
}

// placementEncodings are the decodings an application applies to a value
// in that placement before using it ("none": only the placement's own
// transport encoding, which every placement applies).
var placementEncodings = map[string][]string{
	"query":     {"url_all", "double_url", "url_u", "base64", "base64url", "html_entity", "json_in_param", "jwt"},
	"arg_name":  {"url_all", "double_url"},
	"path":      {"url_all", "double_url"},
	"cookie":    {"url_all", "base64", "base64url", "jwt", "json_in_param"},
	"header":    {"base64", "jwt"},
	"form":      {"url_all", "double_url", "base64", "html_entity", "json_in_param", "utf7", "gzip"},
	"json":      {"js_escape", "base64", "gzip"},
	"xml":       {"html_entity", "gzip"},
	"multipart": {"base64"},
	"file_name": {},
	"body":      {"utf7", "gzip", "base64"},
}

func weightedPlacement(r *rand.Rand, allowed []string) string {
	total := 0
	for _, p := range allowed {
		total += placementWeights[p]
	}
	n := r.IntN(total)
	for _, p := range allowed {
		n -= placementWeights[p]
		if n < 0 {
			return p
		}
	}
	return allowed[0]
}

var benignParams = [][2]string{{"page", "2"}, {"lang", "en"}, {"sort", "newest"}, {"ref", "nav"}, {"utm_source", "newsletter"}, {"limit", "20"}, {"view", "grid"}, {"tab", "reviews"}}

var apiPaths = []string{"/api/v1/users", "/api/v2/search", "/products", "/search", "/account/profile", "/comments", "/api/items", "/login", "/contact", "/admin/reports", "/graphql", "/export", "/download", "/render", "/preview", "/webhooks", "/api/import"}

// genAttacks generates n attacks of class with the fixed seed.
func genAttacks(class string, n int, seed uint64) []Item {
	items, _ := genAttacksWith(class, n, seed)
	return items
}

// genAttacksWith is genAttacks, also returning the generated value behind
// each item (for the tests that decode it back).
func genAttacksWith(class string, n int, seed uint64) ([]Item, []atk) {
	r := rand.New(rand.NewPCG(seed, 0xa77ac4))
	gen := classGens[class]
	var out []Item
	var atks []atk
	seen := map[string]bool{}
	for tries := 0; len(out) < n && tries < n*10; tries++ {
		a := gen(r)
		allowed := classPlacements[class]
		if a.raw != nil || (class == "deserialization" && strings.HasPrefix(a.value, "O:")) {
			allowed = []string{"query", "cookie", "header", "form", "json", "multipart", "body"}
		}
		pl := weightedPlacement(r, allowed)
		enc := "none"
		if encs := placementEncodings[pl]; len(encs) > 0 && r.IntN(100) < 45 {
			enc = pick(r, encs)
		}
		it, ok := placeAttack(r, class, a, pl, enc)
		if !ok {
			continue
		}
		key := it.Method + it.Target + it.Body + fmt.Sprint(it.Headers)
		if seen[key] {
			continue
		}
		seen[key] = true
		it.Source = "gen"
		it.Evasion = it.Encoding != "none" || !(pl == "query" || pl == "form")
		out = append(out, it)
		atks = append(atks, a)
	}
	return out, atks
}

// applyEncoding turns the application-level value v into what is put in
// the placement: the application decodes it with enc.
func applyEncoding(r *rand.Rand, v, enc string, xml bool) (string, bool) {
	switch enc {
	case "none", "url_all", "gzip", "utf7", "jwt", "json_in_param", "js_escape":
		return v, true // applied by the placement
	case "double_url":
		return pctSpecial(v), true
	case "url_u":
		return pctU(v), true
	case "base64":
		if r.IntN(3) == 0 {
			return b64raw(v), true
		}
		return b64(v), true
	case "base64url":
		if r.IntN(2) == 0 {
			return b64urlPad(v), true
		}
		return b64url(v), true
	case "html_entity":
		if strings.ContainsRune(v, 0) {
			return "", false // &#0; decodes to U+FFFD, not NUL
		}
		return htmlEntities(v, r.IntN(3) == 0, xml, r), true
	}
	return "", false
}

func hasCtl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 && s[i] != '\t' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// placeAttack builds the request that carries a in placement pl.
func placeAttack(r *rand.Rand, class string, a atk, pl, enc string) (Item, bool) {
	host := pick(r, hosts)
	it := Item{Set: setAttack, Class: class, Placement: pl, Encoding: enc}
	encLabel := enc
	v := a.value
	if a.raw != nil {
		if pl == "body" && enc == "utf7" {
			return it, false // no application reads serialized bytes as UTF-7
		}
		if pl == "body" && enc != "base64" || pl == "multipart" && enc == "none" {
			v = "" // sent as bytes
		} else {
			v = string(a.raw)
			if enc != "base64" && enc != "base64url" {
				enc, encLabel = "base64", "base64"
				it.Encoding = enc
			}
		}
	}
	if a.obf != "" {
		if encLabel == "none" {
			encLabel = a.obf
		} else {
			encLabel = a.obf + "+" + encLabel
		}
	}
	it.Encoding = encLabel
	it.Payload = v
	if a.raw != nil {
		// a quoted form: the bytes are not text, and the label must read
		// back from the cache as it was written
		it.Payload = fmt.Sprintf("%q", a.raw)
	}
	param := a.param
	// the value as the placement carries it (before transport encoding)
	pv, ok := applyEncoding(r, v, enc, pl == "xml")
	if !ok {
		return it, false
	}
	if enc == "jwt" {
		pv = jwt(pick(r, []string{"sub", "name", "email", "role", "tenant"}), v, r)
		param = "token"
	}
	if enc == "json_in_param" {
		if a.jsonValue != nil {
			pv = jsonMarshal(a.jsonValue)
		} else {
			pv = jsonMarshal(map[string]any{"filter": map[string]any{param: v}, "limit": 10})
		}
		param = pick(r, []string{"filter", "q", "where", "opts", "state"})
	}
	kind := fetchAPI
	if pl == "query" || pl == "path" || pl == "arg_name" || pl == "cookie" {
		kind = pick(r, []reqKind{navigate, fetchAPI})
	}
	if pl == "form" || pl == "multipart" || pl == "file_name" {
		kind = pick(r, []reqKind{formNav, fetchAPI})
	}
	hdrs, _ := headersFor(r, host, kind, false)
	it.Headers = hdrs
	path := pick(r, apiPaths)
	extra := pick(r, benignParams)
	q := func(s string) string {
		if enc == "url_all" {
			return pctAll(s)
		}
		if enc == "url_u" {
			return strings.ReplaceAll(s, " ", "%20") // %u sequences stay as they are
		}
		return url.QueryEscape(s)
	}
	switch pl {
	case "query":
		it.Method = "GET"
		if a.jsonValue != nil && enc != "json_in_param" {
			return it, false
		}
		it.Target = path + "?" + extra[0] + "=" + extra[1] + "&" + q(param) + "=" + q(pv)
		if r.IntN(2) == 0 {
			it.Target = path + "?" + q(param) + "=" + q(pv)
		}
	case "arg_name":
		it.Method = "GET"
		name, val := pv, "1"
		if a.argName != "" {
			name, val = a.argName, a.argValue
		} else if a.jsonValue != nil {
			return it, false
		}
		it.Target = path + "?" + extra[0] + "=" + extra[1] + "&" + q(name) + "=" + url.QueryEscape(val)
		if class == "nosql" && r.IntN(2) == 0 {
			it.Method, it.Target = "POST", "/login"
			it.Headers = append(it.Headers, [2]string{"Content-Type", "application/x-www-form-urlencoded"})
			it.Body = "username=admin&" + q(name) + "=" + url.QueryEscape(val)
		}
	case "path":
		it.Method = "GET"
		seg := pv
		switch {
		case enc == "url_all":
			seg = pctAll(seg)
		case class == "traversal" && enc == "none":
			seg = pathKeepSlash(seg)
		default:
			seg = url.PathEscape(seg)
		}
		it.Target = pick(r, []string{"/files/", "/api/v1/items/", "/page/", "/static/", "/u/", "/proxy/", "/view/"}) + seg
		if r.IntN(2) == 0 {
			it.Target += pick(r, []string{"", "/details", "?" + extra[0] + "=" + extra[1]})
		}
	case "cookie":
		it.Method = "GET"
		it.Target = path + "?" + extra[0] + "=" + extra[1]
		if a.jsonValue != nil && enc != "json_in_param" {
			return it, false
		}
		cv := cookieEscape(pv)
		if enc == "url_all" {
			cv = pctAll(pv)
		}
		setHeader(&it, "Cookie", sessionCookies(r)+"; "+param+"="+cv)
	case "header":
		it.Method = "GET"
		it.Target = path + "?" + extra[0] + "=" + extra[1]
		if hasCtl(pv) {
			return it, false
		}
		name := headerFor(r, class)
		if enc == "jwt" {
			name, pv = "Authorization", "Bearer "+pv
		}
		if enc == "base64" {
			name = pick(r, []string{"X-Data", "X-Session", "X-User-Context", "X-Forwarded-User", "X-Auth-Token"})
		}
		if name == "Referer" && enc == "none" {
			pv = "https://" + host + "/search?q=" + url.QueryEscape(pv)
			if class == "jndi" || class == "sqli" {
				pv = a.value // scanners put the raw payload in Referer
			}
		}
		setHeader(&it, name, pv)
	case "form":
		it.Method = pick(r, []string{"POST", "POST", "POST", "PUT"})
		it.Target = path
		var body string
		switch {
		case a.jsonValue != nil && enc != "json_in_param":
			return it, false
		case enc == "url_all":
			body = extra[0] + "=" + extra[1] + "&" + pctAll(param) + "=" + pctAll(pv)
		default:
			body = formEncode(extra[0], extra[1], param, pv, "csrf_token", b64url(randStr(r, 18)))
		}
		ct := "application/x-www-form-urlencoded"
		if enc == "utf7" {
			body = formEncode(extra[0], extra[1], param, utf7(pv))
			ct += "; charset=utf-7"
		}
		it.Headers = append(it.Headers, [2]string{"Content-Type", ct})
		it.Body = body
		if enc == "gzip" {
			it.Headers = append(it.Headers, [2]string{"Content-Encoding", "gzip"})
			it.SetBody(gzipBytes([]byte(body)))
		}
	case "json":
		it.Method = pick(r, []string{"POST", "POST", "PUT", "PATCH"})
		it.Target = path
		var body string
		switch {
		case a.jsonValue != nil && enc != "none" && enc != "gzip":
			return it, false // an operator object is the JSON itself, not a string to encode
		case a.jsonValue != nil:
			body = jsonMarshal(a.jsonValue)
		case class == "deserialization" && enc == "none" && (strings.HasPrefix(v, "{") || strings.HasPrefix(v, "[")):
			body = v // the body itself is the polymorphic object
		case enc == "js_escape":
			other := "page"
			if param == other {
				other = "per_page"
			}
			body = `{"data":{"` + param + `":"` + jsonUnicode(pv, r.IntN(3) == 0) + `","` + other + `":2}}`
		default:
			body = jsonNest(r, param, pv)
		}
		it.Headers = append(it.Headers, [2]string{"Content-Type", pick(r, []string{"application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8"})})
		if enc == "gzip" {
			it.Headers = append(it.Headers, [2]string{"Content-Encoding", "gzip"})
			it.SetBody(gzipBytes([]byte(body)))
		} else {
			it.Body = body
		}
	case "xml":
		it.Method = "POST"
		it.Target = pick(r, []string{"/api/soap", "/ws/UserService", "/xmlrpc.php", "/api/v1/import", "/feed", "/saml/acs", "/upload"})
		var body string
		switch {
		case a.doc && enc == "html_entity":
			return it, false // a document written as character references is no document
		case a.doc:
			body = pv
		case a.jsonValue != nil, !xmlChars(v):
			return it, false // XML 1.0 cannot carry these characters
		default:
			text := xmlEscape(pv)
			if enc == "html_entity" {
				// the references are the XML's own character references;
				// every '<' and '&' of the value is one of them
				text = pv
			}
			body = `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><` + "get" + upperFirst(param) + `><` + param + `>` + text + `</` + param + `><page>2</page></` + "get" + upperFirst(param) + `></soap:Body></soap:Envelope>`
		}
		it.Headers = append(it.Headers, [2]string{"Content-Type", pick(r, []string{"application/xml", "text/xml; charset=utf-8", "application/soap+xml; charset=utf-8"})})
		if enc == "gzip" {
			it.Headers = append(it.Headers, [2]string{"Content-Encoding", "gzip"})
			it.SetBody(gzipBytes([]byte(body)))
		} else {
			it.Body = body
		}
	case "multipart":
		it.Method = "POST"
		it.Target = pick(r, []string{"/upload", "/profile/avatar", "/api/v1/files", "/contact", "/forum/post"})
		if a.jsonValue != nil {
			return it, false
		}
		var parts []mpart
		parts = append(parts, mpart{name: "title", value: []byte(pick(r, []string{"My upload", "report", "Urlaubsfotos", "invoice"}))})
		switch {
		case a.doc && enc == "none":
			parts = append(parts, mpart{name: "file", filename: pick(r, []string{"image.svg", "data.xml", "feed.rss", "doc.xml"}), ctype: pick(r, []string{"image/svg+xml", "text/xml", "application/xml"}), value: []byte(pv)})
		case a.raw != nil && v == "":
			parts = append(parts, mpart{name: "file", filename: pick(r, []string{"session.bin", "data.ser", "state.dat"}), ctype: "application/octet-stream", value: a.raw})
		default:
			parts = append(parts, mpart{name: param, value: []byte(pv)})
		}
		parts = append(parts, mpart{name: "submit", value: []byte("Send")})
		ct, body := multipartBody(r, parts)
		it.Headers = append(it.Headers, [2]string{"Content-Type", ct})
		it.SetBody(body)
	case "file_name":
		it.Method = "POST"
		it.Target = pick(r, []string{"/upload", "/profile/avatar", "/api/v1/files", "/attachments"})
		// Chromium escapes " CR LF in file names as %22 %0D %0A
		fn := strings.NewReplacer("\"", "%22", "\r", "%0D", "\n", "%0A").Replace(pv)
		if hasCtl(fn) {
			return it, false // a header line cannot carry the other controls
		}
		ext := pick(r, []string{"", ".png", ".jpg", ".pdf", ".txt"})
		parts := []mpart{{name: "file", filename: fn + ext, ctype: "application/octet-stream", value: []byte(randStr(r, 64))}, {name: "submit", value: []byte("Upload")}}
		ct, body := multipartBody(r, parts)
		it.Headers = append(it.Headers, [2]string{"Content-Type", ct})
		it.SetBody(body)
	case "body":
		switch {
		case enc == "base64" && a.raw == nil, a.jsonValue != nil && enc != "none" && enc != "gzip", a.doc && enc == "utf7":
			return it, false // no application decodes the body that way
		}
		it.Method = pick(r, []string{"POST", "PUT"})
		it.Target = path
		var ct string
		var body []byte
		switch {
		case a.raw != nil:
			ct = pick(r, []string{"application/x-java-serialized-object", "application/octet-stream"})
			body = a.raw
			if enc == "base64" {
				ct, body = "text/plain", []byte(pv)
			}
		case a.jsonValue != nil:
			ct, body = "application/json", []byte(jsonMarshal(a.jsonValue))
			it.Placement = "json"
		case a.doc:
			ct, body = pick(r, []string{"application/xml", "text/xml"}), []byte(pv)
		case class == "deserialization" && (strings.HasPrefix(v, "!!") || strings.HasPrefix(v, "---")):
			ct, body = pick(r, []string{"application/x-yaml", "text/yaml"}), []byte(pv)
		case class == "deserialization" && strings.HasPrefix(v, "<java"):
			ct, body = "application/xml", []byte(pv)
		default:
			ct, body = pick(r, []string{"text/plain", "text/plain; charset=utf-8", "application/octet-stream"}), []byte(pv)
		}
		if enc == "utf7" {
			ct, body = "text/plain; charset=utf-7", []byte(utf7(string(body)))
		}
		it.Headers = append(it.Headers, [2]string{"Content-Type", ct})
		if enc == "gzip" {
			it.Headers = append(it.Headers, [2]string{"Content-Encoding", "gzip"})
			body = gzipBytes(body)
		}
		it.SetBody(body)
	default:
		return it, false
	}
	return it, true
}

func headerFor(r *rand.Rand, class string) string {
	switch class {
	case "sqli":
		return pick(r, []string{"User-Agent", "Referer", "X-Forwarded-For", "X-Client-Id", "X-Tenant", "X-Device-Id"})
	case "xss":
		return pick(r, []string{"User-Agent", "Referer", "X-Display-Name", "X-Forwarded-Host"})
	case "jndi":
		return pick(r, []string{"User-Agent", "X-Api-Version", "Referer", "X-Forwarded-For", "Accept-Language", "X-Request-Id", "Authorization"})
	case "shell":
		return pick(r, []string{"User-Agent", "X-Hostname", "X-Forwarded-For", "Referer"})
	case "traversal":
		return pick(r, []string{"X-Original-URL", "X-Rewrite-URL", "X-File", "X-Template"})
	case "ssrf":
		return pick(r, []string{"X-Callback-Url", "X-Webhook-Url", "X-Forwarded-Host-Url", "Referer"})
	case "ssti":
		return pick(r, []string{"User-Agent", "X-Display-Name", "Referer"})
	case "ldap":
		return pick(r, []string{"X-Remote-User", "X-Username", "X-Forwarded-User"})
	case "deserialization":
		return pick(r, []string{"X-Session", "X-State", "X-Data"})
	}
	return "X-Custom-Value"
}

func setHeader(it *Item, name, value string) {
	for i, h := range it.Headers {
		if strings.EqualFold(h[0], name) {
			it.Headers[i][1] = value
			return
		}
	}
	it.Headers = append(it.Headers, [2]string{name, value})
}

// cookieEscape percent-encodes what a cookie value cannot carry, as
// JavaScript's encodeURIComponent would; frameworks decode it.
func cookieEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("\";,\\%", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// pathKeepSlash escapes a value for a path but keeps its slashes, as
// scanners send ../ sequences (curl --path-as-is).
func pathKeepSlash(s string) string {
	segs := strings.Split(s, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// xmlEscape escapes s as XML character data. CR is written as a
// reference: a parser turns a literal CR LF into LF.
func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\"", "&quot;", "\r", "&#13;").Replace(s)
}

// xmlChars reports whether every character of s may appear in an XML 1.0
// document (as itself or as a character reference).
func xmlChars(s string) bool {
	for _, c := range s {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0xFFFE || c == 0xFFFF || c == utf8.RuneError {
			return false
		}
	}
	return true
}

// jsonNest puts value at a nested key among ordinary fields. The value is
// set last: a key that is also one of the ordinary fields carries the
// value, not the field.
func jsonNest(r *rand.Rand, key, value string) string {
	switch r.IntN(4) {
	case 0:
		m := map[string]any{"page": 1 + r.IntN(5)}
		m[key] = value
		return jsonMarshal(m)
	case 1:
		profile := map[string]any{"locale": "en-US"}
		profile[key] = value
		return jsonMarshal(map[string]any{"user": map[string]any{"id": r.IntN(10000), "profile": profile}})
	case 2:
		item := map[string]any{"sku": "A-" + fmt.Sprint(r.IntN(999))}
		item[key] = value
		return jsonMarshal(map[string]any{"items": []any{item}, "currency": "EUR"})
	}
	return jsonMarshal(map[string]any{"query": map[string]any{"filters": []any{map[string]any{"field": key, "op": "eq", "value": value}}}, "limit": 25})
}

type mpart struct {
	name, filename, ctype string
	value                 []byte
}

// multipartBody encodes parts with a WebKit-style boundary.
func multipartBody(r *rand.Rand, parts []mpart) (string, []byte) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.SetBoundary("----WebKitFormBoundary" + randAlnum(r, 16))
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		if p.filename != "" {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, p.name, p.filename))
			h.Set("Content-Type", p.ctype)
		} else {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"`, p.name))
		}
		pw, _ := w.CreatePart(h)
		_, _ = pw.Write(p.value)
	}
	_ = w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

func randAlnum(r *rand.Rand, n int) string {
	const al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = al[r.IntN(len(al))]
	}
	return string(b)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
