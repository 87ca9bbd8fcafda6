package main

import (
	"crypto/sha256"
	"io"
	"path/filepath"
	"testing"

	"github.com/portcullis-waf/portcullis/waf/detect"
)

// splitGolden pins the v2 split of requests that were not in corpus v1:
// bench/detection's TestSplitGolden holds Item.Heldout to the same table,
// so this command never reads a request the scoreboard reports on.
var splitGolden = []struct {
	it      item
	heldout bool
}{
	{item{Method: "GET", Target: "/search?q=hello", Headers: [][2]string{{"Host", "example.com"}}}, true},
	{item{Method: "POST", Target: "/login", Headers: [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}}, Body: "user=admin%27--&pw=x"}, true},
	{item{Method: "GET", Target: "/a"}, true},
	{item{Method: "PUT", Target: "/b", Body: "x"}, false},
	{item{Method: "GET", Target: "/c"}, false},
	{item{Method: "GET", Target: "/d"}, true},
	{item{Method: "POST", Target: "/e", Body: "y"}, false},
	{item{Method: "GET", Target: "/f"}, false},
}

func TestSplitMatchesScoreboard(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	seen, err := loadSeen(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 80000 {
		t.Fatalf("seen-before set has %d identities", len(seen))
	}
	for _, g := range splitGolden {
		if got := g.it.heldout(seen); got != g.heldout {
			t.Errorf("%s %s: heldout %v, want %v", g.it.Method, g.it.Target, got, g.heldout)
		}
	}
}

// TestSeenBeforeIsTuning: a request of corpus v1, by its content or by its
// attack payload in the same placement and encoding, is tuning even when
// the hash would hold it out.
func TestSeenBeforeIsTuning(t *testing.T) {
	held := splitGolden[0].it // held out by the hash
	content := sha256.New()
	io.WriteString(content, "portcullis-detection-content\x00")
	writeContent(content, &held)
	if held.heldout(seenSet{}) != true {
		t.Fatal("golden request not held out with an empty set")
	}
	if held.heldout(seenSet{first8(content): {}}) {
		t.Error("a request whose content was seen is held out")
	}
	atk := item{Set: "attack", Placement: "query", Encoding: "none", Payload: "' OR 1=1-- -", Method: "GET", Target: "/d"}
	if !atk.heldout(seenSet{}) {
		t.Fatal("golden attack not held out with an empty set")
	}
	p := sha256.New()
	io.WriteString(p, "portcullis-detection-payload\x00query\x00none\x00' OR 1=1-- -")
	if atk.heldout(seenSet{first8(p): {}}) {
		t.Error("an attack whose payload was seen in the same placement and encoding is held out")
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
	seen, err := loadSeen(root)
	if err != nil {
		t.Fatal(err)
	}
	benign, attacks, err := loadTuning(dir, seen)
	if err != nil {
		t.Fatal(err)
	}
	if len(benign) == 0 || len(attacks) == 0 {
		t.Fatalf("tuning part empty: %d benign, %d attacks", len(benign), len(attacks))
	}
	for _, set := range [][]item{benign, attacks} {
		for i := range set {
			if set[i].heldout(seen) {
				t.Fatalf("held-out item %s read", set[i].ID)
			}
		}
	}
}
