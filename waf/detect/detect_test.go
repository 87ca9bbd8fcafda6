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

func TestHeadTail(t *testing.T) {
	judge := func(s string) (Finding, bool) {
		for i := 0; i+3 <= len(s); i++ {
			if s[i:i+3] == "bad" {
				return Finding{Confidence: 90, Start: i, End: i + 3}, true
			}
		}
		return Finding{}, false
	}
	pad := "................................"
	for _, tt := range []struct {
		v        string
		ok       bool
		start    int
		evidence string
	}{
		{"bad" + pad, true, 0, "bad"},
		{pad + "bad", true, len(pad), "bad"},
		{pad + "bad" + pad, false, 0, ""}, // in neither window
		{"short bad", true, 6, "bad"},
	} {
		f, ok := HeadTail(tt.v, 16, judge)
		if ok != tt.ok || (ok && (f.Start != tt.start || Evidence(tt.v, f, 10) != tt.evidence)) {
			t.Errorf("%q: %+v %v, want ok=%v start=%d", tt.v, f, ok, tt.ok, tt.start)
		}
	}
}
