package wire

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
)

// ParseHead parses a request head the way a tolerant server would: it never
// fails, keeps what it can and leaves judging to the rule engine. simple is
// true for a complete request line without a version (an HTTP/0.9 "simple
// request"), which is then reported as HTTP/0.9. A request line cut off
// before its end (too long, or the client stopped sending) is no simple
// request: its version is unknown and Proto is "HTTP/1.1", the version the
// answer is written in. The body is always empty: a refused request's body
// is never read.
func ParseHead(raw []byte) (r *http.Request, simple bool) {
	lines := headLines(raw)
	r = &http.Request{
		Method: "GET", URL: &url.URL{Path: "/"}, RequestURI: "/",
		Proto: "HTTP/0.9", Header: http.Header{}, Body: http.NoBody,
	}
	if len(lines) == 0 {
		return r, true
	}
	method, target, version := splitRequestLine(string(lines[0]))
	if method != "" {
		r.Method = method
	}
	if target != "" {
		r.RequestURI = target
		if u, err := url.ParseRequestURI(target); err == nil {
			r.URL = u
		} else {
			r.URL = &url.URL{Path: target}
		}
	}
	if version == "" && !lineComplete(raw) {
		// Cut off: whatever followed is unknown; answered as HTTP/1.1.
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	} else if version == "" {
		simple = true
	} else {
		r.Proto = version
		if major, minor, ok := http.ParseHTTPVersion(version); ok {
			r.ProtoMajor, r.ProtoMinor = major, minor
		}
	}
	var lastName string
	for _, line := range lines[1:] {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') && lastName != "" {
			// obsolete line folding: continue the previous value
			vs := r.Header[lastName]
			vs[len(vs)-1] += " " + string(bytes.TrimSpace(line))
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			continue // not a header line; the rules still see the request line
		}
		key := http.CanonicalHeaderKey(string(bytes.TrimRight(name, " \t")))
		r.Header[key] = append(r.Header[key], string(bytes.TrimSpace(value)))
		lastName = key
	}
	if hosts := r.Header["Host"]; len(hosts) > 0 && hosts[0] != "" {
		r.Host = hosts[0]
		delete(r.Header, "Host") // as net/http does: Host lives in r.Host
	} // an empty Host stays in the header map so that it is seen as sent

	if r.URL.Host != "" && r.Host == "" {
		r.Host = r.URL.Host
	}
	return r, simple
}

// splitRequestLine splits "METHOD target VERSION". With three or more words
// the last is the version, however odd ("HTTP\\1.0"), and the words between
// are the target (a malformed target may contain spaces); with two words it is
// an HTTP/0.9 simple request without version.
func splitRequestLine(line string) (method, target, version string) {
	line = strings.TrimSpace(line)
	method, rest, ok := strings.Cut(line, " ")
	if !ok {
		return method, "", ""
	}
	rest = strings.TrimSpace(rest)
	if i := strings.LastIndexByte(rest, ' '); i >= 0 {
		return method, strings.TrimSpace(rest[:i]), rest[i+1:]
	}
	return method, rest, ""
}

// lineComplete reports whether the request line (after any empty lines)
// ends with a line end.
func lineComplete(raw []byte) bool {
	raw = bytes.TrimLeft(raw, "\r\n")
	return bytes.IndexByte(raw, '\n') >= 0
}

// headLines returns the lines of the head (up to the first empty line),
// without line terminators. Bare "\n" line ends are accepted.
func headLines(raw []byte) [][]byte {
	var lines [][]byte
	for len(raw) > 0 {
		line, rest, found := bytes.Cut(raw, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			if len(lines) == 0 && found {
				raw = rest // tolerate leading empty lines before the request line
				continue
			}
			break
		}
		lines = append(lines, line)
		if !found {
			break
		}
		raw = rest
	}
	return lines
}

// hasHeaderLine reports whether the head has a header line named name.
func hasHeaderLine(raw []byte, name string) bool {
	lines := headLines(raw)
	for _, line := range lines[min(1, len(lines)):] {
		n, _, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(n)), name) {
			return true
		}
	}
	return false
}
