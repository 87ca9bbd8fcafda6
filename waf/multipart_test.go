package waf

import (
	"strings"
	"testing"
)

func TestMultipartFieldsOver(t *testing.T) {
	const ct = "multipart/form-data; boundary=b"
	part := func(disposition, value string) string {
		return "--b\r\nContent-Disposition: form-data; " + disposition + "\r\n\r\n" + value + "\r\n"
	}
	big := strings.Repeat("v", 1000)
	tests := []struct {
		name, contentType, body string
		limit                   int64
		want                    bool
	}{
		{"small fields", ct, part(`name="a"`, "1") + part(`name="b"`, "2") + "--b--\r\n", 1000, false},
		{"one field over", ct, part(`name="a"`, big) + "--b--\r\n", 1000, true},
		{"fields over together", ct, part(`name="a"`, big[:600]) + part(`name="b"`, big[:600]) + "--b--\r\n", 1000, true},
		{"a large file is not a field", ct, part(`name="f"; filename="a.bin"`, big+big) + "--b--\r\n", 1000, false},
		{"a long part name counts", ct, part(`name="`+big+`"`, "1") + "--b--\r\n", 1000, true},
		{"file then fields over", ct, part(`name="f"; filename="a.bin"`, big) + part(`name="a"`, big) + "--b--\r\n", 1000, true},
		{"broken framing ends the count", ct, "garbage", 10, false},
		{"no boundary", "multipart/form-data", part(`name="a"`, big), 10, false},
		{"not multipart", "text/plain", big, 10, false},
	}
	for _, tt := range tests {
		if got := multipartFieldsOver(strings.NewReader(tt.body), tt.contentType, tt.limit); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// FuzzMultipartFieldsOver: any body, any content type: no panic, and a
// body whose bytes are under the limit is never over it.
func FuzzMultipartFieldsOver(f *testing.F) {
	f.Add("multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b--\r\n", int64(4))
	f.Add("multipart/form-data; boundary=\"q q\"", "--q q\r\n\r\n--q q--", int64(0))
	f.Fuzz(func(t *testing.T, contentType, body string, limit int64) {
		if limit < 0 {
			limit = -limit
		}
		over := multipartFieldsOver(strings.NewReader(body), contentType, limit)
		if over && int64(len(body)) <= limit {
			t.Fatalf("%d-byte body over a limit of %d", len(body), limit)
		}
	})
}
