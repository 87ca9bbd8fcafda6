package waf

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

// Held-back response bodies are buffered in pooled buffers (responseBufs):
// every response must still reach the client byte for byte, whatever its
// size against the limit and however it is written, and a denied one must
// leave nothing behind for the next response sharing the buffer.
func TestInspectedResponsesArriveIntact(t *testing.T) {
	s := stockCRS()
	s.CRS = false
	s.ResponseInspect = true
	s.ResponseLimit = 64 << 10
	s.RulesAfter = []config.RuleText{{Origin: "test", Text: `SecRule RESPONSE_BODY "@contains SECRET-LEAK" "id:10003,phase:4,deny,status:403,log"`}}
	e, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	limit := int(s.ResponseLimit)
	tests := []struct {
		name  string
		size  int
		chunk int
		leak  bool
	}{
		{"small", 1 << 10, 100, false},
		{"one byte under the limit", limit - 1, 4096, false},
		{"at the limit", limit, 4096, false},
		{"one byte over the limit", limit + 1, 7919, false},
		{"three times the limit in one write", 3 * limit, 3 * limit, false},
		{"three times the limit in odd writes", 3 * limit, 1021, false},
		{"leak within the limit", 10 << 10, 1000, true},
		{"after a denied one", 2 * limit, 5000, false},
	}
	for round := 0; round < 2; round++ { // the second round reuses pooled buffers
		for i, tt := range tests {
			t.Run(fmt.Sprintf("%s/%d", tt.name, round), func(t *testing.T) {
				page := make([]byte, tt.size)
				for j := range page {
					page[j] = 'a' + byte((i+j+round)%26)
				}
				if tt.leak {
					copy(page[len(page)/2:], "SECRET-LEAK")
				}
				next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html")
					for off := 0; off < len(page); off += tt.chunk {
						_, _ = w.Write(page[off:min(len(page), off+tt.chunk)])
					}
				})
				stage := NewStage(e, s, next, Recording{Redactor: audit.NewRedactor(nil, nil)})
				r := httptest.NewRequest("GET", "/page", nil)
				r = r.WithContext(audit.WithEntry(r.Context(), &audit.Entry{ID: "page"}))
				w := httptest.NewRecorder()
				stage.ServeHTTP(w, r)
				if tt.leak {
					if w.Code != http.StatusForbidden || bytes.Contains(w.Body.Bytes(), []byte("SECRET-LEAK")) {
						t.Fatalf("leaking page: status %d, leaked %v", w.Code, bytes.Contains(w.Body.Bytes(), []byte("SECRET-LEAK")))
					}
					return
				}
				if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), page) {
					t.Fatalf("status %d, %d bytes received, want 200 and the %d bytes sent", w.Code, w.Body.Len(), len(page))
				}
			})
		}
	}
}
