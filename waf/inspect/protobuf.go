package inspect

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/portcullis-waf/portcullis/waf/decode"
	"github.com/portcullis-waf/portcullis/waf/detect"
)

// What a protobuf body carries to an application is its fields, not its
// bytes: the generated code hands the application the string fields (and
// the bytes fields, which it may read as text), the numbers as numbers,
// and nested messages as objects of their own. Printable runs of the wire
// bytes are something else: a field's tag and length are bytes too (a
// length of 39 is an apostrophe, 60 a '<', 124 a '|'), so a run glues a
// tag, a length and the start of the next field into text no application
// ever sees. The body is therefore walked by the wire format
// (google.golang.org/protobuf/encoding/protowire, which only splits the
// bytes, no schema needed) and each length-delimited field is read as what
// it can be:
//
//   - text (valid UTF-8 without control bytes other than blanks): a string
//     field, judged like a JSON string;
//   - else a message (its bytes split into whole fields): walked in turn;
//   - else binary (a bytes field: a hash, an image, a key): nobody's
//     text, unless it is mostly printable (text with a few binary bytes
//     slipped in); then its printable runs of at least minBytesRun bytes
//     are judged, inside the field only, in case an application reads it
//     as text after all.
//
// A body that does not split into fields is judged as before, by the
// printable runs of the whole body: no application's decoder accepts it,
// but a laxer reader might still find text in it.

// protoTypes are the media types of protobuf and gRPC bodies.
func protoType(mt string) (framed, text bool, ok bool) {
	switch mt {
	case "application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf",
		"application/x-google-protobuf", "application/octet-stream+protobuf":
		return false, false, true
	case "application/grpc", "application/grpc+proto", "application/grpc-web", "application/grpc-web+proto":
		return true, false, true
	case "application/grpc-web-text", "application/grpc-web-text+proto":
		return true, true, true
	}
	return false, false, false
}

// maxProtoDepth bounds the nesting of messages walked; deeper fields are
// judged as text or runs where they are.
const maxProtoDepth = 16

// minBytesRun is the shortest printable run judged inside a binary
// (non-text, non-message) field.
const minBytesRun = 8

// maxFrames bounds the gRPC frames read from one body.
const maxFrames = 64

// protobuf judges a protobuf or gRPC body. It reports false when the body
// is not in the declared shape, so the caller can fall back.
func (st *run) protobuf(h interface{ Get(string) string }, body []byte, framed, text bool, limit int64) bool {
	if text {
		// grpc-web-text: the frames, base64-encoded; each chunk the
		// client flushed is padded on its own.
		b, ok := base64Chunks(body)
		if !ok {
			return false
		}
		body = b
	}
	if !framed {
		return st.protoMessage("", body, 0, true)
	}
	// gRPC length-prefixed messages: a flag byte (bit 0: compressed,
	// bit 7: trailers), a big-endian 32-bit length, the message.
	// Compressed frames share one inflation budget: limit for the whole
	// body, not per frame (64 frames would otherwise inflate to 64×).
	budget := limit
	for n := 0; len(body) > 0 && n < maxFrames && !st.stop; n++ {
		if len(body) < 5 {
			return st.truncated || n > 0
		}
		flag, size := body[0], binary.BigEndian.Uint32(body[1:5])
		body = body[5:]
		msg := body
		if uint64(size) <= uint64(len(body)) {
			msg, body = body[:size], body[size:]
		} else if !st.truncated {
			return n > 0
		} else {
			body = nil
		}
		if flag&0x80 != 0 {
			continue // trailers: the server's, not a message
		}
		if flag&1 != 0 {
			if budget <= 0 {
				st.runs(msg) // past the budget: judged as sent
				continue
			}
			enc := h.Get("Grpc-Encoding")
			out, _, err := decode.Decompress(enc, msg, budget)
			if err != nil {
				st.runs(msg)
				continue
			}
			budget -= int64(len(out))
			msg = out
		}
		if !st.protoMessage("", msg, 0, true) {
			st.runs(msg)
		}
	}
	return true
}

// base64Chunks decodes standard base64 made of one or more padded
// chunks.
func base64Chunks(b []byte) ([]byte, bool) {
	s := strings.TrimSpace(string(b))
	var out []byte
	for s != "" {
		// a chunk ends after its padding, or at the end
		end := len(s)
		if i := strings.IndexByte(s, '='); i >= 0 {
			end = i
			for end < len(s) && s[end] == '=' {
				end++
			}
		}
		d, err := base64.StdEncoding.AppendDecode(out, []byte(s[:end]))
		if err != nil {
			return nil, false
		}
		out, s = d, s[end:]
	}
	return out, true
}

// protoFields reports whether b splits into whole fields of the wire
// types a message has (groups, deprecated and recursive, do not count),
// and how many.
func protoFields(b []byte) (int, bool) {
	n := 0
	for len(b) > 0 {
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 || num > protowire.MaxValidNumber {
			return n, false
		}
		b = b[k:]
		switch typ {
		case protowire.VarintType, protowire.Fixed32Type, protowire.Fixed64Type, protowire.BytesType:
		default:
			return n, false
		}
		k = protowire.ConsumeFieldValue(num, typ, b)
		if k < 0 {
			return n, false
		}
		b = b[k:]
		n++
	}
	return n, true
}

// protoMessage judges the fields of a message, named PROTOBUF:path
// (field numbers joined by dots: PROTOBUF:4.1). top is set for the body
// itself: a body that does not split into fields reports false (the
// caller falls back), while a body cut by the body limit is judged up to
// the cut.
func (st *run) protoMessage(path string, b []byte, depth int, top bool) bool {
	if top {
		n, ok := protoFields(b)
		if n == 0 || !ok && !st.truncated {
			return len(b) == 0
		}
	}
	for len(b) > 0 && !st.stop {
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return true
		}
		b = b[k:]
		if typ != protowire.BytesType {
			if k = protowire.ConsumeFieldValue(num, typ, b); k < 0 {
				return true
			}
			b = b[k:]
			continue // numbers are numbers to the application
		}
		v, k := protowire.ConsumeBytes(b)
		if k < 0 {
			if !top || !st.truncated {
				return true
			}
			// the last field, cut by the body limit: what arrived
			_, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return true
			}
			v, k = b[n:], len(b)
		}
		b = b[k:]
		p := strconv.Itoa(int(num))
		if path != "" {
			p = path + "." + p
		}
		st.protoField(p, v, depth)
	}
	return true
}

// protoField judges one length-delimited field as text, message or
// binary (see above).
func (st *run) protoField(path string, v []byte, depth int) {
	if len(v) == 0 {
		return
	}
	name := "PROTOBUF:" + path
	text := protoText(v)
	if depth < maxProtoDepth && (!text || v[0] < 0x20) {
		// A nested message whose first field is field 1 (tag byte
		// 0x0a, 0x09 or 0x0d) of a printable length reads as text that
		// starts with a blank; text of a string field does not start
		// with a blank and a length that matches the rest exactly.
		if n, ok := protoFields(v); ok && n > 0 {
			st.protoMessage(path, v, depth+1, false)
			if text && !protoHasBytes(v) {
				// Only numbers in the message reading: the text
				// reading is as likely, and hides nothing then.
				st.judge(name, detect.WhereJSON, string(v))
			}
			return
		}
	}
	if text {
		st.judge(name, detect.WhereJSON, string(v))
		return
	}
	if asciiShare(v) < 0.8 {
		// Random-looking bytes (a hash, a key, an image: about a third
		// of random bytes are printable) are nobody's text; text with a
		// few binary bytes slipped in still is.
		return
	}
	start := -1
	for i := 0; i <= len(v) && !st.stop; i++ {
		if i < len(v) && v[i] >= 0x20 && v[i] < 0x7f {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start >= minBytesRun {
			st.judge(name, detect.WhereBody, string(v[start:i]))
		}
		start = -1
	}
}

// protoHasBytes: the message in b (whole fields, checked by protoFields)
// has a length-delimited field.
func protoHasBytes(b []byte) bool {
	for len(b) > 0 {
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return false
		}
		if typ == protowire.BytesType {
			return true
		}
		b = b[k:]
		if k = protowire.ConsumeFieldValue(num, typ, b); k < 0 {
			return false
		}
		b = b[k:]
	}
	return false
}

// asciiShare is the share of printable ASCII bytes and blanks in v.
func asciiShare(v []byte) float64 {
	n := 0
	for _, c := range v {
		if c >= 0x20 && c < 0x7f || c == '\t' || c == '\n' || c == '\r' {
			n++
		}
	}
	return float64(n) / float64(max(len(v), 1))
}

// protoText: v is valid UTF-8 with no control bytes but blanks, as the
// text of a string field is.
func protoText(v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	for _, c := range v {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return false
		}
	}
	return true
}
