package wire

import (
	"bytes"
	"net/http"
)

// Framing is what the raw head of an HTTP/1 request says about how its body
// is delimited. net/http normalises these facts away before any handler
// runs: it deletes Content-Length when Transfer-Encoding is present, merges
// identical duplicate Content-Length lines into one, and drops
// Transfer-Encoding from an HTTP/1.0 request. A front end that frames the
// same bytes by Content-Length would then disagree with Portcullis about
// where the request ends (request smuggling), so the gateway refuses such
// heads; it needs the raw facts to see them.
type Framing struct {
	// Observed is true when the head was captured and matches the request
	// net/http parsed. When it is false the counts below mean nothing.
	Observed bool
	// ContentLengths and TransferEncodings count the header lines.
	ContentLengths    int
	TransferEncodings int
	// ContentLengthsDiffer is true when the Content-Length lines do not all
	// carry the same value.
	ContentLengthsDiffer bool
}

// scanHead reads the framing facts from a captured head and returns where
// the head ends (the first byte after its empty line). It allocates
// nothing: it runs on every HTTP/1 request. aligned reports whether the
// head's request line is the one of r (method and target), so that a
// capture that lost its first bytes is never taken for r's head.
func scanHead(capture []byte, r *http.Request) (f Framing, headEnd int) {
	pos := 0
	// net/http tolerates empty lines before a request line.
	for pos < len(capture) && (capture[pos] == '\r' || capture[pos] == '\n') {
		pos++
	}
	line, next, ok := nextLine(capture, pos)
	if !ok || !requestLineOf(line, r) {
		return Framing{}, -1
	}
	var firstCL []byte
	for pos = next; ; pos = next {
		line, next, ok = nextLine(capture, pos)
		if !ok {
			return Framing{}, -1 // the capture ends inside the head
		}
		if len(line) == 0 {
			f.Observed = true
			return f, next
		}
		// Most lines start with neither letter: one byte decides.
		switch line[0] | 0x20 {
		case 'c':
			const name = "content-length:"
			if len(line) < len(name) || !equalFoldASCII(line[:len(name)-1], name[:len(name)-1]) || line[len(name)-1] != ':' {
				continue
			}
			value := trimOWS(line[len(name):])
			if f.ContentLengths == 0 {
				firstCL = value
			} else if !bytes.Equal(value, firstCL) {
				f.ContentLengthsDiffer = true
			}
			f.ContentLengths++
		case 't':
			const name = "transfer-encoding:"
			if len(line) >= len(name) && line[len(name)-1] == ':' && equalFoldASCII(line[:len(name)-1], name[:len(name)-1]) {
				f.TransferEncodings++
			}
		}
	}
}

// nextLine returns the line starting at pos without its line end (LF or
// CRLF, as net/http accepts both), and where the next line starts.
func nextLine(b []byte, pos int) (line []byte, next int, ok bool) {
	if pos > len(b) {
		return nil, 0, false
	}
	i := bytes.IndexByte(b[pos:], '\n')
	if i < 0 {
		return nil, 0, false
	}
	line = b[pos : pos+i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, pos + i + 1, true
}

// requestLineOf reports whether line is "METHOD TARGET ..." of r.
func requestLineOf(line []byte, r *http.Request) bool {
	m, t := r.Method, r.RequestURI
	return len(line) > len(m)+len(t)+1 && string(line[:len(m)]) == m && line[len(m)] == ' ' &&
		string(line[len(m)+1:len(m)+1+len(t)]) == t && line[len(m)+1+len(t)] == ' '
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFoldASCII compares b with the lower-case ASCII name, ignoring case.
func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// bodyTracker follows a request body through the bytes of the connection,
// in whatever pieces they arrive, to find where it ends: what follows is
// the next request's head, which must be captured for its own checks even
// when net/http read it along with this request's body. It follows the
// chunked coding the way net/http reads it (a size line, data, CRLF, a
// trailer section ended by an empty line, every line ended by CRLF); if the
// bytes stop making sense it gives up, and the next head counts as not
// observed (net/http then fails the body and closes the connection too).
type bodyTracker struct {
	state  trackState
	remain int64 // data bytes left (length or current chunk)
	digits int   // hex digits of the current size line
	line   int   // bytes of the current size or trailer line
	sawCR  bool  // the last byte was a CR (a line end must be CRLF)
}

type trackState uint8

const (
	trackDone    trackState = iota // the body has ended
	trackLength                    // remain bytes of a Content-Length body
	trackSize                      // in a chunk-size line (before any ';')
	trackSizeExt                   // in a chunk-size line, after the size
	trackData                      // in chunk data
	trackDataEnd                   // the CRLF after chunk data
	trackTrailer                   // in the trailer section, at a line start or inside one
	trackLost                      // gave up
)

// maxChunkLine is net/http's limit on a chunk-size line.
const maxChunkLine = 4096

func newBodyTracker(r *http.Request) bodyTracker {
	switch {
	case len(r.TransferEncoding) > 0:
		return bodyTracker{state: trackSize}
	case r.ContentLength > 0:
		return bodyTracker{state: trackLength, remain: r.ContentLength}
	case r.ContentLength == 0:
		return bodyTracker{state: trackDone}
	}
	return bodyTracker{state: trackLost} // read until close: no next request
}

// feed consumes body bytes from p and returns how many belong to the body;
// p[n:] is beyond it (only when the body ended within p).
func (t *bodyTracker) feed(p []byte) int {
	i := 0
	for i < len(p) {
		switch t.state {
		case trackDone, trackLost:
			return i
		case trackLength, trackData:
			n := int(min(t.remain, int64(len(p)-i)))
			t.remain -= int64(n)
			i += n
			if t.remain == 0 {
				if t.state == trackLength {
					t.state = trackDone
				} else {
					t.state = trackDataEnd
				}
			}
			continue
		}
		c := p[i]
		i++
		switch t.state {
		case trackSize, trackSizeExt:
			t.line++
			if t.line > maxChunkLine {
				t.state = trackLost
				continue
			}
			cr := t.sawCR
			t.sawCR = c == '\r'
			if c == '\n' {
				if t.digits == 0 || !cr {
					t.state = trackLost
				} else if t.remain == 0 {
					t.state, t.line = trackTrailer, 0
				} else {
					t.state = trackData
				}
				t.digits = 0
				continue
			}
			if t.state == trackSize {
				if v := hexValue(c); v >= 0 {
					if t.digits == 15 {
						t.state = trackLost // past what net/http accepts
						continue
					}
					t.remain = t.remain<<4 | int64(v)
					t.digits++
					continue
				}
				t.state = trackSizeExt // extension, whitespace or CR: to the line end
			}
		case trackDataEnd:
			switch {
			case !t.sawCR && c == '\r':
				t.sawCR = true
			case t.sawCR && c == '\n':
				t.sawCR = false
				t.state, t.line, t.remain = trackSize, 0, 0
			default:
				t.state = trackLost
			}
		case trackTrailer:
			cr := t.sawCR
			t.sawCR = c == '\r'
			switch {
			case c == '\n' && !cr:
				t.state = trackLost
			case c == '\n':
				if t.line == 0 {
					t.state = trackDone
				}
				t.line = 0
			case c == '\r':
				if cr {
					t.state = trackLost
				}
			case cr:
				t.state = trackLost // a CR inside a line
			default:
				t.line++
				if t.line > maxHeadTrailer {
					t.state = trackLost
				}
			}
		}
	}
	return i
}

// maxHeadTrailer bounds one trailer line the tracker follows (net/http
// itself refuses a trailer section longer than its 4 KiB read buffer).
const maxHeadTrailer = 64 << 10

func hexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
