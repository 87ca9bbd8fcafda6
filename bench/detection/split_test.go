package main

import "testing"

// TestSplitGolden pins Item.Heldout: waf/detect/internal/eval holds its
// own copy of the split to the same table, so the detectors' evaluation
// reads only the tuning part.
func TestSplitGolden(t *testing.T) {
	for _, g := range []struct {
		it      Item
		heldout bool
	}{
		{Item{Method: "GET", Target: "/search?q=hello", Headers: [][2]string{{"Host", "example.com"}}}, true},
		{Item{Method: "POST", Target: "/login", Headers: [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}}, Body: "user=admin%27--&pw=x"}, false},
		{Item{Method: "GET", Target: "/a"}, false},
		{Item{Method: "PUT", Target: "/b", Body: "x"}, false},
	} {
		if got := g.it.Heldout(); got != g.heldout {
			t.Errorf("%s %s: Heldout %v, want %v", g.it.Method, g.it.Target, got, g.heldout)
		}
	}
}
