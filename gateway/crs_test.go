package gateway

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	albedo "github.com/coreruleset/albedo/server"
	"github.com/coreruleset/go-ftw/v2/config"
	"github.com/coreruleset/go-ftw/v2/output"
	"github.com/coreruleset/go-ftw/v2/runner"
	"github.com/coreruleset/go-ftw/v2/test"
	"github.com/rs/zerolog"

	"github.com/portcullis-waf/portcullis/audit"
	pconfig "github.com/portcullis-waf/portcullis/config"
)

// crsSuiteSize is the number of regression tests shipped with CRS 4.25.
const crsSuiteSize = 4674

// crsConfig runs CRS the way its regression suite expects: paranoia 4,
// detection only, UTF-8 validation, the suite's argument limits, response
// inspection, and the marker rule whose log line go-ftw looks for around each
// test (it also removes every other rule for the marker requests).
const crsConfig = `
server:
  # go-ftw opens a connection per test, faster than a client's default
  # new-connection rate allows.
  client_connection_rate: 0
upstreams:
  - name: albedo
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: albedo
waf:
  profile: stock-crs
  mode: detect
  paranoia: 4
  response_inspection:
    enabled: true
  crs_variables:
    crs_validate_utf8_encoding: "1"
    arg_name_length: "100"
    arg_length: "400"
    total_arg_length: "64000"
    max_num_args: "255"
    max_file_size: "64100"
    combined_file_sizes: "65535"
  rules_before:
    - inline: |
        SecRule REQUEST_HEADERS:X-CRS-Test "@rx ^.*$" "id:999999,phase:1,pass,t:none,log,msg:'X-CRS-Test %{MATCHED_VAR}',ctl:ruleRemoveById=1-999999"
audit:
  file: AUDITFILE
  rule_log: RULELOG
`

// TestCRSRegression runs every CRS regression test through the same handler
// chain the binary serves, on a loopback listener, with the CRS project's
// runner (go-ftw) and test backend (albedo). Expectations that differ on this
// platform are in testdata/crs-overrides.yaml, each with its reason.
func TestCRSRegression(t *testing.T) {
	if testing.Short() {
		t.Skip("the CRS regression suite takes about a minute; run without -short")
	}
	slog.SetLogLoggerLevel(slog.LevelError) // albedo logs every request at info
	zerolog.SetGlobalLevel(zerolog.WarnLevel)

	up := httptest.NewServer(albedo.Handler())
	defer up.Close()
	dir := t.TempDir()
	ruleLog := filepath.Join(dir, "rules.log")
	if keep := os.Getenv("CRS_RULE_LOG"); keep != "" { // keep the log for debugging
		ruleLog = keep
	}
	yamlText := strings.NewReplacer("UPSTREAM", up.URL, "AUDITFILE", filepath.Join(dir, "audit.jsonl"), "RULELOG", ruleLog).Replace(crsConfig)
	cfg, err := pconfig.Parse("crs-regression.yaml", []byte("listeners:\n  - address: \"127.0.0.1:0\"\n"+yamlText))
	if err != nil {
		t.Fatal(err)
	}
	fileSink, err := audit.OpenFileSink(cfg.Audit.File)
	if err != nil {
		t.Fatal(err)
	}
	ruleSink, err := audit.OpenRuleLogSink(cfg.Audit.RuleLog)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	writer := audit.NewWriter(8192, log, fileSink, ruleSink)
	defer writer.Close()
	p, err := Build(cfg, nil, writer, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := NewServer(p, nil, log)
	lns, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve(lns)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	tests := loadCRSTests(t)
	total := 0
	for _, ft := range tests {
		total += len(ft.Tests)
	}
	if total != crsSuiteSize {
		t.Errorf("loaded %d CRS tests, want %d", total, crsSuiteSize)
	}

	addr, _ := url.Parse("http://" + srv.Addrs()[0].String())
	host := addr.Hostname()
	port, _ := strconv.Atoi(addr.Port())
	fc := config.NewDefaultConfig()
	fc.LogFile = ruleLog
	fc.TestOverride.Overrides.DestAddr = &host
	fc.TestOverride.Overrides.Port = &port
	rc := config.NewRunnerConfiguration(fc)
	rc.ReadTimeout = 30 * time.Second               // a 64 KB argument takes seconds under -race
	if only := os.Getenv("CRS_TESTS"); only != "" { // e.g. CRS_TESTS='^920420-12$' while debugging
		rc.Include = regexp.MustCompile(only)
	}
	if err := rc.LoadPlatformOverrides("testdata/crs-overrides.yaml"); err != nil {
		t.Fatal(err)
	}
	overridden := 0
	for _, o := range rc.PlatformOverrides.TestOverrides {
		if strings.TrimSpace(o.Reason) == "" {
			t.Errorf("override of rule %d tests %v has no reason", o.RuleId, o.TestIds)
		}
		overridden += len(o.TestIds)
	}

	var out strings.Builder
	res, err := runner.Run(rc, tests, output.NewOutput(os.Getenv("FTW_OUTPUT"), &out))
	if err != nil {
		// go-ftw abandons the whole run on some errors (a marker not found,
		// a connection refused); its stats are then empty.
		t.Fatalf("CRS regression run aborted: %v\n%s", err, out.String())
	}
	st := res.Stats
	passed := len(st.Success)
	fmt.Printf("CRS regression: %d/%d passed, %d ignored, %d overridden\n", passed, total, len(st.Ignored), overridden)
	if failed := append(append([]string(nil), st.Failed...), st.ForcedFail...); len(failed) > 0 {
		sort.Strings(failed)
		var detail strings.Builder
		for _, id := range failed {
			fmt.Fprintf(&detail, "  %s triggered %v\n", id, st.TriggeredRules[id])
		}
		t.Errorf("%d CRS tests failed:\n%s", len(failed), detail.String())
	}
	if passed+len(st.Ignored)+len(st.Skipped) != total {
		t.Errorf("passed %d + ignored %d + skipped %d != %d", passed, len(st.Ignored), len(st.Skipped), total)
	}
}

// loadCRSTests reads every test file embedded in coraza-coreruleset. go-ftw
// abandons the whole run when a retry_once test fails twice, which would hide
// every later result; the flag is cleared so such a test fails on its own.
// retry_once exists for servers that log phase 5 after the response; the
// audit writer logs each request's rules in request order and go-ftw waits
// for the end marker, which is logged after them.
func loadCRSTests(t *testing.T) []*test.FTWTest {
	var tests []*test.FTWTest
	err := fs.WalkDir(crstests.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := fs.ReadFile(crstests.FS, path)
		if err != nil {
			return err
		}
		ft, err := test.GetTestFromYaml(data, path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for i := range ft.Tests {
			for j := range ft.Tests[i].Stages {
				ft.Tests[i].Stages[j].Output.RetryOnce = nil
			}
		}
		tests = append(tests, ft)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tests
}
