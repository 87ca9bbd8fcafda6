package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	xhtml "golang.org/x/net/html"
)

// TestPayloadSurvives: for every generated attack of the corpus (the
// generators with the corpus's own seeds and sizes), reading the value
// from its placement the way an application does and undoing the
// encoding its label names gives back the payload: the request really
// carries the attack it is labelled with. The decoders here are written
// independently of the encoders (net/url, encoding/json, encoding/xml,
// mime/multipart, html, a UTF-7 and a %uXXXX decoder).
func TestPayloadSurvives(t *testing.T) {
	for i, c := range classes {
		items, atks := genAttacksWith(c, genPerClass, seed+uint64(i))
		if len(items) < genPerClass*9/10 {
			t.Errorf("%s: only %d attacks generated", c, len(items))
		}
		bad := 0
		for j := range items {
			if err := payloadSurvives(&items[j], atks[j]); err != nil {
				bad++
				if bad <= 5 {
					t.Errorf("%s %s/%s: %v\npayload %q\n%s %s %q\nbody %.400q", c, items[j].Placement, items[j].Encoding, err, items[j].Payload, items[j].Method, items[j].Target, items[j].Headers, items[j].Body)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d attacks do not carry their payload", c, bad, len(items))
		}
	}
}

// appEncoding is the application decoding named by an Encoding label:
// its last part when that is one, else none (obfuscations are part of
// the payload itself).
func appEncoding(label string) string {
	parts := strings.Split(label, "+")
	switch last := parts[len(parts)-1]; last {
	case "url_all", "double_url", "url_u", "base64", "base64url", "html_entity", "json_in_param", "jwt", "utf7", "gzip", "js_escape":
		return last
	}
	return "none"
}

func payloadSurvives(it *Item, a atk) error {
	enc := appEncoding(it.Encoding)
	if it.Encoding == "html_entity" && a.obf == "html_entity" {
		enc = "none" // the obfuscation, not an application decoding
	}
	cands, err := placementValues(it, enc)
	if err != nil {
		return err
	}
	if len(cands) == 0 {
		return errors.New("no value in the placement")
	}
	for _, c := range cands {
		for _, d := range appDecode(c, enc, it.Placement) {
			if matches(d, it, a) {
				return nil
			}
		}
	}
	if a.argName != "" && it.Placement == "arg_name" {
		return fmt.Errorf("no parameter %s=%s", a.argName, a.argValue)
	}
	return fmt.Errorf("no value decodes (%s in %s) to the payload; %d candidates", enc, it.Placement, len(cands))
}

// matches compares a decoded value with what the generator meant.
func matches(d []byte, it *Item, a atk) bool {
	switch {
	case it.Placement == "arg_name" && a.argName != "":
		return string(d) == a.argName+"\x00"+a.argValue
	case a.raw != nil:
		return bytes.Equal(d, a.raw)
	case a.jsonValue != nil:
		var v any
		if json.Unmarshal(d, &v) == nil && jsonMarshal(v) == jsonMarshal(a.jsonValue) {
			return true
		}
		return false
	}
	return string(d) == it.Payload
}

// placementValues returns the values an application reads from the
// placement, after the placement's own transport decoding.
func placementValues(it *Item, enc string) ([][]byte, error) {
	var out [][]byte
	add := func(s string) { out = append(out, []byte(s)) }
	body, err := it.BodyBytes()
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(it.Header("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
	}
	path, query, _ := strings.Cut(it.Target, "?")
	queryUnescape := url.QueryUnescape
	if enc == "url_u" {
		queryUnescape = func(s string) (string, error) { return s, nil } // %u: the application's own decoder
	}
	pairs := func(s string, unescape func(string) (string, error), names bool) {
		for _, kv := range strings.Split(s, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if names {
				if d, err := unescape(k); err == nil {
					add(d)
				}
			}
			if d, err := unescape(v); err == nil {
				add(d)
			}
		}
	}
	switch it.Placement {
	case "query":
		pairs(query, queryUnescape, false)
	case "arg_name":
		if it.Method == "POST" {
			query = string(body)
		}
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			dk, err1 := url.QueryUnescape(k)
			dv, err2 := url.QueryUnescape(v)
			if err1 == nil {
				add(dk)
				if err2 == nil {
					add(dk + "\x00" + dv) // bracket syntax: name[$op]=value
				}
			}
		}
	case "path":
		// every run of whole segments: a value may hold slashes
		var bounds []int
		for i := 0; i <= len(path); i++ {
			if i == len(path) || path[i] == '/' {
				bounds = append(bounds, i)
			}
		}
		for _, i := range bounds {
			for _, j := range bounds {
				for _, lo := range []int{i, i + 1} {
					if lo <= j && j <= len(path) {
						if d, err := url.PathUnescape(path[lo:j]); err == nil {
							add(d)
						}
					}
				}
			}
		}
	case "cookie":
		for _, c := range strings.Split(it.Header("Cookie"), "; ") {
			_, v, _ := strings.Cut(c, "=")
			if d, err := url.PathUnescape(v); err == nil {
				add(d)
			}
		}
	case "header":
		for _, h := range it.Headers {
			add(h[1])
			if v, ok := strings.CutPrefix(h[1], "Bearer "); ok {
				add(v)
			}
			if u, err := url.Parse(h[1]); err == nil && strings.EqualFold(h[0], "Referer") {
				for _, vs := range u.Query() {
					for _, v := range vs {
						add(v)
					}
				}
			}
		}
	case "form":
		pairs(string(body), url.QueryUnescape, false)
	case "json":
		add(string(body))
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, fmt.Errorf("json body: %w", err)
		}
		for _, s := range jsonStrings(v) {
			add(s)
		}
	case "xml":
		add(string(body))
		// a document that declares entities (XXE) is itself the value; a
		// parser without a DTD reader stops at its references
		texts, _ := xmlTexts(body)
		for _, s := range texts {
			add(s)
		}
	case "multipart", "file_name":
		_, params, err := mime.ParseMediaType(it.Header("Content-Type"))
		if err != nil {
			return nil, fmt.Errorf("multipart content type: %w", err)
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("multipart: %w", err)
			}
			if it.Placement == "file_name" {
				// as browsers write it: the name between quotes, with only
				// " CR LF escaped (as %22 %0D %0A; a backslash is itself)
				if m := fileNameParam.FindStringSubmatch(p.Header.Get("Content-Disposition")); m != nil {
					fn := strings.NewReplacer("%22", "\"", "%0D", "\r", "%0A", "\n").Replace(m[1])
					add(fn)
					for _, ext := range []string{".png", ".jpg", ".pdf", ".txt"} {
						if s, ok := strings.CutSuffix(fn, ext); ok {
							add(s)
						}
					}
				}
				continue
			}
			b, err := io.ReadAll(p)
			if err != nil {
				return nil, fmt.Errorf("multipart part: %w", err)
			}
			out = append(out, b)
		}
	case "body":
		out = append(out, body)
	default:
		return nil, fmt.Errorf("unknown placement %q", it.Placement)
	}
	return out, nil
}

var fileNameParam = regexp.MustCompile(`; filename="([^"]*)"`)

// appDecode undoes the application decoding enc; it returns every
// reading (base64 with and without padding, ...).
func appDecode(b []byte, enc, placement string) [][]byte {
	s := string(b)
	switch enc {
	case "double_url":
		if d, err := url.PathUnescape(s); err == nil {
			return [][]byte{[]byte(d)}
		}
	case "url_u":
		if d, err := pctUDecode(s); err == nil {
			return [][]byte{[]byte(d)}
		}
	case "base64", "base64url":
		var out [][]byte
		for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if d, err := e.DecodeString(s); err == nil {
				out = append(out, d)
			}
		}
		return out
	case "html_entity":
		if placement == "xml" {
			return [][]byte{b} // the XML parser decoded the references
		}
		return [][]byte{[]byte(html.UnescapeString(s))}
	case "utf7":
		if d, err := utf7Decode(s); err == nil {
			return [][]byte{[]byte(d)}
		}
	case "json_in_param":
		var v any
		if json.Unmarshal(b, &v) != nil {
			return nil
		}
		out := [][]byte{b}
		for _, x := range jsonStrings(v) {
			out = append(out, []byte(x))
		}
		return out
	case "jwt":
		segs := strings.Split(s, ".")
		if len(segs) != 3 {
			return nil
		}
		claims, err := base64.RawURLEncoding.DecodeString(segs[1])
		if err != nil {
			return nil
		}
		var v any
		if json.Unmarshal(claims, &v) != nil {
			return nil
		}
		var out [][]byte
		for _, x := range jsonStrings(v) {
			out = append(out, []byte(x))
		}
		return out
	default:
		return [][]byte{b}
	}
	return nil
}

// jsonStrings returns every string value in v, at any depth.
func jsonStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, jsonStrings(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range x {
			out = append(out, jsonStrings(e)...)
		}
		return out
	}
	return nil
}

// xmlTexts returns the character data of every element, references
// decoded, as a conforming parser reports it.
func xmlTexts(b []byte) ([]string, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var out []string
	var cur strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("xml body: %w", err)
		}
		switch x := tok.(type) {
		case xml.CharData:
			cur.Write(x)
		case xml.StartElement, xml.EndElement:
			if cur.Len() > 0 {
				out = append(out, cur.String())
			}
			cur.Reset()
		}
	}
}

// pctUDecode decodes %uXXXX (UTF-16 code units) and %XX.
func pctUDecode(s string) (string, error) {
	var units []uint16
	var out strings.Builder
	flush := func() {
		out.WriteString(string(utf16.Decode(units)))
		units = units[:0]
	}
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "%u") && i+6 <= len(s):
			n, err := strconv.ParseUint(s[i+2:i+6], 16, 16)
			if err != nil {
				return "", err
			}
			units = append(units, uint16(n))
			i += 6
		case s[i] == '%' && i+3 <= len(s):
			flush()
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", err
			}
			out.WriteByte(byte(n))
			i += 3
		default:
			flush()
			out.WriteByte(s[i])
			i++
		}
	}
	flush()
	return out.String(), nil
}

// utf7Decode decodes RFC 2152 UTF-7.
func utf7Decode(s string) (string, error) {
	var out strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '+' {
			out.WriteByte(s[i])
			i++
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9' || s[j] == '+' || s[j] == '/') {
			j++
		}
		if j == i+1 {
			if j < len(s) && s[j] == '-' {
				out.WriteByte('+')
				i = j + 1
				continue
			}
			return "", fmt.Errorf("utf7: lone + at %d", i)
		}
		// the run's bits, 16 per character; leftover bits are padding
		raw, err := base64.RawStdEncoding.DecodeString(s[i+1 : j])
		if err != nil {
			return "", fmt.Errorf("utf7: %w", err)
		}
		u := make([]uint16, len(raw)/2)
		for k := range u {
			u[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		out.WriteString(string(utf16.Decode(u)))
		if j < len(s) && s[j] == '-' {
			j++
		}
		i = j
	}
	return out.String(), nil
}

// TestHTMLEntitiesDecode: every form htmlEntities writes is decoded back
// by an HTML tokenizer (golang.org/x/net/html) in text and in quoted and
// unquoted attribute values, by html.UnescapeString, and, with xml, by
// encoding/xml.
func TestHTMLEntitiesDecode(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	inputs := []string{"alert(1)", "alert(document.cookie)", "<script>x</script>", "' OR 1=1-- -", "a1(2)3=4&5;6", "confirm`1`", "x=1;y=2", "é€😀", "0;1;2;3"}
	alphabet := []rune("abcXYZ0189 ;=&#<>()'\"`/\\-_.:\té€😀\r\n")
	for range 300 {
		rs := make([]rune, 1+r.IntN(20))
		for i := range rs {
			rs[i] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(rs))
	}
	for _, in := range inputs {
		for _, all := range []bool{false, true} {
			enc := htmlEntities(in, all, false, r)
			if got := html.UnescapeString(enc); got != in {
				t.Errorf("html.UnescapeString(%q) = %q, want %q", enc, got, in)
			}
			for _, doc := range []string{`<p>` + enc + `</p>`, `<img src=x onerror=` + enc + `>`, `<img src=x onerror="` + enc + `">`, `<img onerror='` + enc + `' src=x>`} {
				if strings.ContainsAny(in, " \t\n>\"'") && strings.Contains(doc, "onerror="+enc) && !all {
					continue // a literal space or quote ends the unquoted value whatever the references
				}
				got, ok := firstTextOrHandler(doc)
				if !ok || got != in {
					t.Errorf("%s: tokenizer read %q, want %q", doc, got, in)
				}
			}
			xenc := htmlEntities(in, all, true, r)
			texts, err := xmlTexts([]byte("<a>" + xenc + "</a>"))
			if xmlChars(in) && (err != nil || len(texts) != 1 || texts[0] != in) {
				t.Errorf("xml %q: read %q (%v), want %q", xenc, texts, err, in)
			}
		}
	}
}

// firstTextOrHandler returns the text of the first text token or the
// value of the first onerror attribute.
func firstTextOrHandler(doc string) (string, bool) {
	z := xhtml.NewTokenizer(strings.NewReader(doc))
	for {
		switch z.Next() {
		case xhtml.ErrorToken:
			return "", false
		case xhtml.TextToken:
			return string(z.Text()), true
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			tok := z.Token()
			for _, a := range tok.Attr {
				if a.Key == "onerror" {
					return a.Val, true
				}
			}
		}
	}
}
