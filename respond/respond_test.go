package respond

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestErrorNegotiatesAndHidesDetails(t *testing.T) {
	tests := []struct {
		accept, method string
		json, body     bool
	}{
		{"", "GET", false, true},
		{"text/html,application/xhtml+xml,*/*;q=0.8", "GET", false, true},
		{"application/json", "GET", true, true},
		{"application/problem+json, text/html;q=0.5", "GET", true, true},
		{"text/html, application/json;q=0.9", "GET", false, true},
		{"application/json;q=0", "GET", false, true},
		{"application/json", "HEAD", true, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "/", nil)
		r.Header.Set("Accept", tt.accept)
		w := httptest.NewRecorder()
		w.Header().Set("X-Upstream-Secret", "leak")
		Error(w, r, http.StatusForbidden, "abc123")
		ct := w.Header().Get("Content-Type")
		if tt.json != strings.HasPrefix(ct, "application/json") {
			t.Errorf("Accept %q: content type %q", tt.accept, ct)
		}
		if tt.body != (w.Body.Len() > 0) || (tt.body && !strings.Contains(w.Body.String(), "abc123")) {
			t.Errorf("Accept %q %s: body %q", tt.accept, tt.method, w.Body.String())
		}
		if w.Header().Get("X-Upstream-Secret") != "" || w.Header().Get(RequestIDHeader) != "abc123" || w.Code != 403 {
			t.Errorf("headers %v code %d", w.Header(), w.Code)
		}
	}
}

func TestCondemnedStatusWins(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(Condemn(context.Background(), http.StatusBadRequest))
	w := httptest.NewRecorder()
	Error(w, r, http.StatusForbidden, "id")
	if w.Code != http.StatusBadRequest {
		t.Errorf("code %d, want 400", w.Code)
	}
}

// TestWantsJSON: the one decision between a JSON answer and an HTML page,
// which package challenge follows too.
func TestWantsJSON(t *testing.T) {
	tests := []struct {
		accept string // "-" no request at all
		want   bool
	}{
		{"-", false},
		{"", false},
		{"*/*", false},
		{"application/json", true},
		{"application/vnd.api+json", true},
		{"text/html;q=0.4, application/json;q=0.5", true},
		{"text/html, application/json", false},
		{"APPLICATION/JSON", true},
	}
	for _, tt := range tests {
		var r *http.Request
		if tt.accept != "-" {
			r = httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Accept", tt.accept)
		}
		if got := WantsJSON(r); got != tt.want {
			t.Errorf("Accept %q: %v, want %v", tt.accept, got, tt.want)
		}
	}
}
