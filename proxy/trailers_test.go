package proxy

import (
	"net/http"
	"testing"
)

func TestForwardableTrailers(t *testing.T) {
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"nothing", nil, nil},
		{"ordinary field", http.Header{"X-Checksum": {"abc"}}, http.Header{"X-Checksum": {"abc"}}},
		{"empty values dropped", http.Header{"X-Declared": nil}, nil},
		{"client-address claims", http.Header{"X-Forwarded-For": {"1.2.3.4"}, "Forwarded": {"for=1.2.3.4"}, "X-Real-Ip": {"1.2.3.4"},
			"True-Client-Ip": {"1.2.3.4"}, "X-Forwarded-Host": {"evil"}, "X-Original-Url": {"/admin"}}, nil},
		{"framing and routing", http.Header{"Content-Length": {"1"}, "Transfer-Encoding": {"chunked"}, "Host": {"evil"}, "Trailer": {"X"}}, nil},
		{"credentials and payload processing", http.Header{"Authorization": {"Basic x"}, "Cookie": {"s=1"}, "Content-Type": {"text/xml"}}, nil},
		{"non-canonical keys", http.Header{"x-forwarded-for": {"1.2.3.4"}, "x-sum": {"1"}}, http.Header{"X-Sum": {"1"}}},
		{"request id", http.Header{"X-Request-Id": {"forged"}, "X-A": {"1"}}, http.Header{"X-A": {"1"}}},
	}
	for _, tt := range tests {
		got := ForwardableTrailers(tt.in)
		if len(got) != len(tt.want) || (tt.want == nil) != (got == nil) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
			continue
		}
		for k, vs := range tt.want {
			if len(got[k]) != len(vs) || got[k][0] != vs[0] {
				t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
			}
		}
	}
}
