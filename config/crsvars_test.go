package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestCRSVariableNames: names in crs_variables are checked against the
// settings of the embedded CRS, with the nearest name for a typo (#13:
// unknown names were accepted silently and did nothing).
func TestCRSVariableNames(t *testing.T) {
	cases := []struct {
		name, want string
	}{
		{"allowed_methods", ""},
		{"max_num_args", ""},                // documented in crs-setup, no 901 default
		{"restricted_headers_extended", ""}, // defaulted by 901
		{"crs_validate_utf8_encoding", ""},  // an opt-in check
		{"allowed_method", `did you mean "allowed_methods"`},
		{"max_num_arg", `did you mean "max_num_args"`},
		{"restricted_extension", `did you mean "restricted_extensions"`},
		{"totally_made_up_setting", "is not a CRS setting; see crs-setup.conf.example"},
		{"crs_setup_version", "is not a CRS setting"},
		{"paranoia_level", "is set by the paranoia field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			yaml := fmt.Sprintf("upstreams: [{name: app, targets: [\"http://127.0.0.1:3000\"]}]\nwaf:\n  crs_variables:\n    %s: \"1\"\nsites: [{hosts: [\"*\"], routes: [{path: /, upstream: app}]}]\n", tc.name)
			_, err := Parse("p.yaml", []byte(yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "p.yaml:4: waf.crs_variables."+tc.name+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q at p.yaml:4", err, tc.want)
			}
		})
	}
	names, err := CRSVariables()
	if err != nil {
		t.Fatal(err)
	}
	// A sanity bound on the derivation: the CRS 4 settings, not every tx.* the rules use.
	for _, want := range []string{"allowed_methods", "allowed_request_content_type", "restricted_extensions", "restricted_headers_basic", "arg_length", "combined_file_sizes", "early_blocking", "sampling_percentage"} {
		if !slices.Contains(names, want) {
			t.Errorf("CRS settings lack %s: %v", want, names)
		}
	}
	if len(names) < 20 || len(names) > 60 || slices.Contains(names, "anomaly_score_pl1") {
		t.Errorf("%d names, including internal ones? %v", len(names), names)
	}
}
