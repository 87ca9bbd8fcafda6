package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"strings"
)

// Body returns what a record keeps of a request body: at most limit bytes,
// with the values of credential arguments replaced by "[redacted]" in the
// formats whose arguments the rule engine sees (urlencoded forms, JSON,
// multipart forms). Everything else is kept byte for byte, so that replay
// feeds the engine what it saw. truncated reports that the body was longer
// than what is kept, or that the rest had to be dropped because it could not
// be parsed far enough to be redacted safely.
func (r *Redactor) Body(contentType string, body []byte, limit int) (kept string, truncated bool) {
	if len(body) > limit {
		body, truncated = body[:limit], true
	}
	if len(body) == 0 {
		return "", truncated
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mediaType = strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	}
	switch {
	case mediaType == "application/x-www-form-urlencoded":
		s, _ := r.form(string(body))
		return s, truncated
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		s, complete := r.json(body)
		return s, truncated || !complete
	case mediaType == "multipart/form-data" && params["boundary"] != "":
		s, complete := r.multipart(body, params["boundary"])
		return s, truncated || !complete
	}
	return string(body), truncated
}

// json replaces the values of secret keys at any depth, keeping the bytes
// between them. A body that stops parsing (cut at the limit, or not JSON
// at all) is kept up to the last point known to be free of secrets, and
// complete is false.
func (r *Redactor) json(body []byte) (string, bool) {
	type frame struct{ object, expectKey bool }
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out strings.Builder
	copied := 0 // body[:copied] is in out
	var stack []frame
	secretValue := false // the next value belongs to a secret key
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].expectKey = true
		}
	}
	redact := func(start, end int) {
		out.Write(body[copied:start])
		out.WriteString(`"` + Redacted + `"`)
		copied, secretValue = end, false
	}
	for {
		before := int(dec.InputOffset())
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			out.Write(body[copied:])
			return out.String(), true
		}
		if err != nil {
			out.Write(body[copied:before])
			return out.String(), false
		}
		if d, ok := tok.(json.Delim); ok {
			switch {
			case (d == '{' || d == '[') && secretValue:
				if err := skipComposite(dec); err != nil {
					out.Write(body[copied:before])
					return out.String(), false
				}
				redact(valueStart(body, before), int(dec.InputOffset()))
				valueDone()
			case d == '{' || d == '[':
				stack = append(stack, frame{object: d == '{', expectKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
			key, _ := tok.(string)
			_, secretValue = r.args[strings.ToLower(key)]
			secretValue = secretValue || r.secretName(key)
			stack[n-1].expectKey = false
			continue
		}
		if secretValue {
			redact(valueStart(body, before), int(dec.InputOffset()))
		}
		valueDone()
	}
}

// valueStart skips the separator and white space that InputOffset puts
// before a value.
func valueStart(body []byte, offset int) int {
	for offset < len(body) {
		switch body[offset] {
		case ' ', '\t', '\r', '\n', ':', ',':
			offset++
			continue
		}
		break
	}
	return offset
}

func skipComposite(dec *json.Decoder) error {
	depth := 1
	for depth > 0 {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

// multipart replaces the content of parts whose form field name is a
// credential. Parts are found by their boundary lines; a body cut inside a
// secret part loses that part's rest.
func (r *Redactor) multipart(body []byte, boundary string) (string, bool) {
	delim := []byte("--" + boundary)
	var out bytes.Buffer
	rest := body
	for {
		i := bytes.Index(rest, delim)
		if i < 0 {
			out.Write(rest)
			return out.String(), true
		}
		out.Write(rest[:i+len(delim)])
		rest = rest[i+len(delim):]
		// Parsers accept bare LF line ends too, so the engine sees such
		// parts: find the header end either way.
		headEnd, sepLen := bytes.Index(rest, []byte("\r\n\r\n")), 4
		if lf := bytes.Index(rest, []byte("\n\n")); lf >= 0 && (headEnd < 0 || lf < headEnd) {
			headEnd, sepLen = lf, 2
		}
		if headEnd < 0 {
			continue // the closing boundary, or a part cut before its content
		}
		head := rest[:headEnd+sepLen]
		out.Write(head)
		rest = rest[headEnd+sepLen:]
		if !r.secretPart(head) {
			continue
		}
		next := bytes.Index(rest, delim)
		if next < 0 {
			out.WriteString(Redacted)
			return out.String(), false
		}
		out.WriteString(Redacted + "\r\n")
		rest = rest[next:]
	}
}

// secretPart reports whether a part's headers name a secret form field.
func (r *Redactor) secretPart(head []byte) bool {
	for _, line := range strings.Split(string(head), "\n") {
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\r"), ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "Content-Disposition") {
			continue
		}
		if _, params, err := mime.ParseMediaType(strings.TrimSpace(value)); err == nil {
			return r.secretName(params["name"])
		}
	}
	return false
}
