package main

import (
	"path/filepath"
	"testing"

	"github.com/portcullis-waf/portcullis/waf/detect"
)

// splitGolden pins the tuning/held-out split: bench/detection's
// TestSplitGolden holds Item.Heldout to the same table, so this command
// never reads a request the scoreboard reports on.
var splitGolden = []struct {
	it      item
	heldout bool
}{
	{item{Method: "GET", Target: "/search?q=hello", Headers: [][2]string{{"Host", "example.com"}}}, true},
	{item{Method: "POST", Target: "/login", Headers: [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}}, Body: "user=admin%27--&pw=x"}, false},
	{item{Method: "GET", Target: "/a"}, false},
	{item{Method: "PUT", Target: "/b", Body: "x"}, false},
}

func TestSplitMatchesScoreboard(t *testing.T) {
	for _, g := range splitGolden {
		if got := g.it.heldout(); got != g.heldout {
			t.Errorf("%s %s: heldout %v, want %v", g.it.Method, g.it.Target, got, g.heldout)
		}
	}
}

// TestExtract: the values an application reads, each from its place.
func TestExtract(t *testing.T) {
	it := item{
		Method: "POST", Target: "/api/items/42%27%20OR%201=1?q=a%20b&x%3Dy",
		Headers: [][2]string{{"Cookie", "sid=abc; pref=dark"}, {"User-Agent", "curl/8"}, {"Content-Type", "application/json"}},
		Body:    `{"user":{"name":"O'Brien"}}`,
	}
	want := map[value]bool{
		{"/api/items/42' OR 1=1", detect.WherePath, "REQUEST_FILENAME"}: true,
		{"42' OR 1=1", detect.WherePath, "PATH_SEGMENT"}:                true,
		{"a b", detect.WhereQuery, "ARGS_GET:q"}:                        true,
		{"y", detect.WhereQuery, "ARGS_GET:x"}:                          true,
		{"abc", detect.WhereCookie, "REQUEST_COOKIES:sid"}:              true,
		{"curl/8", detect.WhereHeader, "REQUEST_HEADERS:User-Agent"}:    true,
		{"O'Brien", detect.WhereJSON, "JSON:user.name"}:                 true,
		{"name", detect.WhereArgName, "JSON:user.name"}:                 true,
	}
	for _, v := range extract(&it) {
		delete(want, v)
	}
	for v := range want {
		t.Errorf("not extracted: %+v", v)
	}
}

// TestTuningPartOnly runs the evaluation on the generated corpora when
// they are cached, and checks that only tuning-part items were read.
func TestTuningPartOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the whole corpus (-short)")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := findCache(filepath.Join(root, "bench", ".cache"))
	if err != nil {
		// A generated data cache, not a service: absent in a fresh
		// checkout and in CI until bench/detection has run.
		t.Skipf("no detection corpus cached (%v); generate it with go run ./bench/detection -part tuning -benign 1 -attacks 1", err)
	}
	benign, attacks, err := loadTuning(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(benign) == 0 || len(attacks) == 0 {
		t.Fatalf("tuning part empty: %d benign, %d attacks", len(benign), len(attacks))
	}
	for _, set := range [][]item{benign, attacks} {
		for i := range set {
			if set[i].heldout() {
				t.Fatalf("held-out item %s read", set[i].ID)
			}
		}
	}
}
