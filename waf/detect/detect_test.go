package detect

import "testing"

func TestEvidence(t *testing.T) {
	tests := []struct {
		value      string
		start, end int
		max        int
		want       string
	}{
		{"abc' OR 1=1--", 3, 13, 64, "' OR 1=1--"},
		{"abc' OR 1=1--", 3, 13, 4, "' OR"},
		{"short", -1, 99, 64, "short"},
		{"short", 2, 1, 64, "ort"},
		{"", 0, 0, 8, ""},
	}
	for _, tt := range tests {
		got := Evidence(tt.value, Finding{Start: tt.start, End: tt.end}, tt.max)
		if got != tt.want {
			t.Errorf("Evidence(%q, [%d,%d), %d) = %q, want %q", tt.value, tt.start, tt.end, tt.max, got, tt.want)
		}
	}
}

func TestWhereString(t *testing.T) {
	if WhereJSON.String() != "json" || Where(200).String() != "unknown" {
		t.Fatalf("Where names changed: %q %q", WhereJSON, Where(200))
	}
}
