package inspect

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// pbField is one field of a test message: a string, a nested message, a
// varint or raw bytes.
type pbField struct {
	num    protowire.Number
	str    string
	msg    []pbField
	varint uint64
	raw    []byte
}

func pbMessage(fields ...pbField) []byte {
	var b []byte
	for _, f := range fields {
		switch {
		case f.msg != nil:
			b = protowire.AppendTag(b, f.num, protowire.BytesType)
			b = protowire.AppendBytes(b, pbMessage(f.msg...))
		case f.raw != nil:
			b = protowire.AppendTag(b, f.num, protowire.BytesType)
			b = protowire.AppendBytes(b, f.raw)
		case f.str != "":
			b = protowire.AppendTag(b, f.num, protowire.BytesType)
			b = protowire.AppendString(b, f.str)
		default:
			b = protowire.AppendTag(b, f.num, protowire.VarintType)
			b = protowire.AppendVarint(b, f.varint)
		}
	}
	return b
}

// grpcFrame wraps a message in a gRPC length-prefixed frame.
func grpcFrame(flag byte, msg []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{flag}, uint32(len(msg))), msg...)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// padTo returns s padded with words to exactly n bytes, so that a length
// byte of a field is a chosen printable character.
func padTo(s string, n int) string {
	for len(s) < n {
		s += " and more"
	}
	return s[:n]
}

// TestProtobufFields: a protobuf or gRPC body is judged by its fields. Tag
// and length bytes that happen to be printable (a length of 39 is "'", 34
// is '"', 60 is '<', 124 is '|', a field-4 tag is '"') never glue fields
// into text, while a payload inside any string field, at any depth, in
// any framing, is found under the field's name.
func TestProtobufFields(t *testing.T) {
	attack := "1' UNION SELECT password FROM users--"
	// Each of these fields is ordinary text; run together with their
	// tags and lengths they used to read as SQL, markup or shell.
	gluey := pbMessage(
		pbField{num: 1, varint: 1764970000},
		pbField{num: 2, str: padTo("Notes on the select statement", 39)},  // length "'"
		pbField{num: 4, str: padTo("or the case where one is one", 34)},   // tag and length '"'
		pbField{num: 5, str: padTo("see the script section below", 60)},   // length '<'
		pbField{num: 6, str: padTo("where x equals one or more of", 124)}, // length '|'
		pbField{num: 7, msg: []pbField{{num: 1, str: "ada@example.org"}, {num: 2, varint: 7}}},
		pbField{num: 8, raw: []byte{0x91, 0x27, 0x3d, 0x27, 0x20, 0x6f, 0x72, 0x20, 0x27, 0x31, 0x27, 0x3d, 0x27, 0x31, 0xff}},
		// a word (field 5, tag '*') of 13 bytes (a carriage return)
		// followed by the tag of field 6 ('2'): a run "*\rbt|db|dir|pag2"
		pbField{num: 5, str: "bt|db|dir|pag"},
		// random bytes: a hash, a key (about a third printable)
		pbField{num: 6, raw: []byte("\x1d\xc3h\rZj'#A-k|\x7f\x9568\xaa5\xe4\x08e@\xcd\xc9\xcb0(];\x17a\x1c\x05\x9e\xf1\xe8y`\xc2")},
	)
	withAttack := pbMessage(
		pbField{num: 1, varint: 42},
		pbField{num: 3, msg: []pbField{{num: 2, str: "title"}, {num: 5, msg: []pbField{{num: 1, str: attack}}}}},
	)
	for _, tt := range []struct {
		name, ctype string
		body        []byte
		headers     [][2]string
		variable    string // "": nothing blocks
	}{
		{"glued fields, protobuf", "application/x-protobuf", gluey, nil, ""},
		{"glued fields, vnd type", "application/vnd.google.protobuf", gluey, nil, ""},
		{"glued fields, grpc-web", "application/grpc-web+proto", grpcFrame(0, gluey), nil, ""},
		{"glued fields, grpc-web-text", "application/grpc-web-text", []byte(base64.StdEncoding.EncodeToString(grpcFrame(0, gluey))), nil, ""},
		{"glued fields, octet-stream", "application/octet-stream", gluey, nil, ""},
		{"nested string, protobuf", "application/protobuf", withAttack, nil, "PROTOBUF:3.5.1"},
		{"nested string, grpc", "application/grpc", grpcFrame(0, withAttack), nil, "PROTOBUF:3.5.1"},
		{"second frame", "application/grpc-web", append(grpcFrame(0, gluey), grpcFrame(0, withAttack)...), nil, "PROTOBUF:3.5.1"},
		{"compressed frame", "application/grpc-web+proto", grpcFrame(1, gz(withAttack)), [][2]string{{"Grpc-Encoding", "gzip"}}, "PROTOBUF:3.5.1"},
		{"grpc-web-text in two chunks", "application/grpc-web-text",
			[]byte(base64.StdEncoding.EncodeToString(grpcFrame(0, gluey)) + base64.StdEncoding.EncodeToString(grpcFrame(0, withAttack))), nil, "PROTOBUF:3.5.1"},
		{"octet-stream that is a message", "application/octet-stream", withAttack, nil, "PROTOBUF:3.5.1"},
		{"payload in a bytes field", "application/x-protobuf", pbMessage(pbField{num: 2, raw: append([]byte{0xff, 0x00}, attack...)}), nil, "PROTOBUF:2"},
		{"not protobuf after all", "application/x-protobuf", append([]byte{0x0f, 0xff, 0x00}, attack...), nil, "REQUEST_BODY"},
		// text cut into 8-byte pieces by tabs (0x09: field 1, fixed64)
		// splits into number fields; as text/plain it stays text
		{"text that parses as numbers", "text/plain", []byte("\tx' UNION\t SELECT \tpassword\t FROM us\ters --  "), nil, "REQUEST_BODY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "http://x/api/v1/messages", nil)
			r.Header.Set("Content-Type", tt.ctype)
			for _, h := range tt.headers {
				r.Header.Set(h[0], h[1])
			}
			res := New(Limits{}).Request(r, Body{Data: tt.body, Limit: 1 << 20}, Scope{Threshold: 70})
			switch {
			case tt.variable == "" && res.Blocking != nil:
				t.Fatalf("blocked: %+v", *res.Blocking)
			case tt.variable != "" && (res.Blocking == nil || res.Blocking.Variable != tt.variable):
				t.Fatalf("blocking %+v, findings %+v; want %s", res.Blocking, res.Findings, tt.variable)
			}
		})
	}
}

// TestProtobufTruncated: a body cut by the body limit in its last string
// field is still judged up to the cut.
func TestProtobufTruncated(t *testing.T) {
	msg := pbMessage(pbField{num: 1, str: "hello"}, pbField{num: 2, str: "x' OR '1'='1' -- " + strings.Repeat("z", 200)})
	r := httptest.NewRequest("POST", "http://x/", nil)
	r.Header.Set("Content-Type", "application/x-protobuf")
	res := New(Limits{}).Request(r, Body{Data: msg[:40], Truncated: true, Limit: 1 << 20}, Scope{Threshold: 70})
	if res.Blocking == nil || res.Blocking.Variable != "PROTOBUF:2" {
		t.Fatalf("blocking %+v, findings %+v; want PROTOBUF:2", res.Blocking, res.Findings)
	}
}

// TestProtobufInflationBudget: compressed gRPC frames share one inflation
// budget, the body limit, rather than each inflating up to it: a frame
// past the budget is judged as sent (its compressed bytes), so a payload
// in it is found only while the budget lasts.
func TestProtobufInflationBudget(t *testing.T) {
	filler := grpcFrame(1, gz(pbMessage(pbField{num: 1, str: strings.Repeat("hello world ", 100)})))
	last := grpcFrame(1, gz(pbMessage(pbField{num: 5, str: "x' UNION SELECT password FROM users -- "})))
	body := append(append(append(append([]byte{}, filler...), filler...), filler...), last...)
	for _, tt := range []struct {
		limit int64
		found bool
	}{
		{1 << 20, true}, // 4 frames of about 1.2 KB: within the budget
		{3000, false},   // the budget is spent by the third frame
	} {
		r := httptest.NewRequest("POST", "http://x/", nil)
		r.Header.Set("Content-Type", "application/grpc")
		r.Header.Set("Grpc-Encoding", "gzip")
		res := New(Limits{}).Request(r, Body{Data: body, Limit: tt.limit}, Scope{Threshold: 70})
		if got := res.Blocking != nil && res.Blocking.Variable == "PROTOBUF:5"; got != tt.found {
			t.Errorf("limit %d: found %v, want %v (blocking %+v)", tt.limit, got, tt.found, res.Blocking)
		}
	}
}

// FuzzProtobuf: any bytes declared as protobuf or gRPC are judged within
// the limits, without panics.
func FuzzProtobuf(f *testing.F) {
	f.Add([]byte("\x0a\x05hello\x12\x03abc"), uint8(0))
	f.Add(grpcFrame(0, pbMessage(pbField{num: 3, msg: []pbField{{num: 1, str: "x"}}})), uint8(1))
	f.Add(grpcFrame(1, gz([]byte("\x0a\x01a"))), uint8(2))
	f.Add([]byte(base64.StdEncoding.EncodeToString(grpcFrame(0, []byte("\x0a\x01a")))), uint8(3))
	types := []string{"application/x-protobuf", "application/grpc-web+proto", "application/grpc", "application/grpc-web-text", "application/octet-stream"}
	in := New(Limits{MaxValues: 64})
	f.Fuzz(func(t *testing.T, body []byte, kind uint8) {
		r := httptest.NewRequest("POST", "http://x/", nil)
		r.Header.Set("Content-Type", types[int(kind)%len(types)])
		r.Header.Set("Grpc-Encoding", "gzip")
		res := in.Request(r, Body{Data: body, Truncated: kind&0x80 != 0, Limit: 1 << 16}, Scope{Threshold: 70})
		if len(res.Findings) > 8 || res.Values > 64 {
			t.Fatalf("%d findings, %d values", len(res.Findings), res.Values)
		}
	})
}

// TestCookieValuesAsApplicationsReadThem: a cookie value with a blank, a
// quote or a backslash reaches PHP, Rails or Express applications as
// sent (net/http's strict parser drops it), so it is judged; ordinary
// cookies, JSON in a cookie and quoted values are not attacks.
func TestCookieValuesAsApplicationsReadThem(t *testing.T) {
	for _, tt := range []struct {
		cookie, variable string // variable "": nothing blocks
	}{
		{`sid=abc123; q=x" OR "1"="1`, "REQUEST_COOKIES:q"},
		{`pref="1 UNION SELECT password FROM users--"; theme=dark`, "REQUEST_COOKIES:pref"},
		{`name=\"><script>alert(document.cookie)</script>`, "REQUEST_COOKIES:name"},
		{`uid=1 AND 1=(SELECT COUNT(*) FROM users)`, "REQUEST_COOKIES:uid"},
		{`cart={"items":[{"id":12,"name":"O'Brien's tea"}]}; theme=dark`, ""},
		{`consent="necessary preferences"; _ga=GA1.2.1234.5678`, ""},
		{`a=b; c; =d; e=`, ""},
	} {
		r := httptest.NewRequest("GET", "http://x/", nil)
		r.Header.Set("Cookie", tt.cookie)
		res := New(Limits{}).Request(r, Body{}, Scope{Threshold: 70})
		switch {
		case tt.variable == "" && res.Blocking != nil:
			t.Errorf("%q: blocked %+v", tt.cookie, *res.Blocking)
		case tt.variable != "" && (res.Blocking == nil || res.Blocking.Variable != tt.variable):
			t.Errorf("%q: blocking %+v, want %s", tt.cookie, res.Blocking, tt.variable)
		}
	}
}
