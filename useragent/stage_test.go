package useragent

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

func TestRefusesEmptyUserAgent(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := NewStage(config.FiltersConfig{RequireUserAgent: true}, ok)
	for _, tc := range []struct {
		ua   string
		want int
	}{{"", 403}, {"curl/8", 200}} {
		e := &audit.Entry{}
		r := httptest.NewRequest("GET", "/", nil)
		if tc.ua != "" {
			r.Header.Set("User-Agent", tc.ua)
		}
		r = r.WithContext(audit.WithEntry(r.Context(), e))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%q: %d, want %d", tc.ua, w.Code, tc.want)
		}
	}
}
