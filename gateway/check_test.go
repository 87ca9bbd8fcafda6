package gateway

import (
	"testing"

	"github.com/portcullis-waf/portcullis/config"
)

// TestCheckReportsEveryProblem: Check builds the stages with the serving
// builder and reports every problem, each at its own field, not only the
// first (issue 14).
func TestCheckReportsEveryProblem(t *testing.T) {
	const file = "testdata/check/three-problems.yaml"
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("the file must load (its problems are found by building): %v", err)
	}
	_, err = Check(cfg)
	got := config.ErrorList(err)
	want := []struct{ path, msg string }{
		{"reputation.lists[0]", `list "blocked": file testdata/check/bad.netset: line 3: not an IP address or CIDR: ParseAddr("not-an-address"): unable to parse IP`},
		{"reputation.geoip", "geoip country database testdata/check/country.mmdb: error opening database: invalid MaxMind DB file"},
		// Unnamed: the limit is not named by its path a second time.
		{"sites[0].routes[0].rate_limits[0]", "burst 1000000 at rate 1e-06 spans more than 320255h58m24.606846976s"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		if got[i].File != file || got[i].Path != w.path || got[i].Msg != w.msg {
			t.Errorf("problem %d = %s\nwant %s: %s: %s", i, got[i], file, w.path, w.msg)
		}
	}
}
