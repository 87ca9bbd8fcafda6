package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the .golden files in testdata/config")

// TestGolden loads every testdata/config/*.yaml and compares the exact
// problems reported (or "ok") with the .golden file beside it.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("../testdata/config/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			got := "ok\n"
			if _, err := Load(f); err != nil {
				got = err.Error() + "\n"
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read %s (run go test ./config -update to create it): %v", golden, err)
			}
			if got != string(want) {
				t.Errorf("problems differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestResolvedValues(t *testing.T) {
	cfg, err := Load("../testdata/config/valid-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Server.MaxHeaderBytes; got != 32<<10 {
		t.Errorf("max_header_bytes = %d, want %d", got, 32<<10)
	}
	if got := cfg.Server.ReadHeaderTimeout; got != 5*time.Second {
		t.Errorf("read_header_timeout = %v", got)
	}
	shop := cfg.Sites[0]
	root, api := shop.Routes[0].WAF, shop.Routes[1].WAF
	tests := []struct {
		name      string
		got, want any
	}{
		{"root mode inherits global", root.Mode, ModeBlock},
		{"api mode overridden", api.Mode, ModeDetect},
		{"root paranoia", root.Paranoia, 1},
		{"api paranoia", api.Paranoia, 2},
		{"body limit inherited", api.BodyLimit, int64(1 << 20)},
		{"parsed-body limit inherited", api.BodyNoFilesLimit, int64(256 << 10)},
		{"site exclusion reaches root", len(root.Exclusions), 1},
		{"route adds to site exclusions", len(api.Exclusions), 2},
		{"route rules do not leak to root", len(root.RulesBefore), 0},
		{"api rules", len(api.RulesBefore), 1},
		{"response inspection", api.ResponseInspect, true},
		{"response limit", api.ResponseLimit, int64(256 << 10)},
		{"second site named after host", cfg.Sites[1].Name, "*"},
		{"hosts lower-cased", shop.Hosts[0], "shop.example.com"},
		{"audit redaction", cfg.Audit.RedactHeaders[0], "X-Api-Key"},
		{"inspection slots", cfg.Server.Inspections, 8},
		{"inspection wait", cfg.Server.InspectionWait, 5 * time.Second},
		{"memory limit", cfg.Server.MemoryLimit, int64(256 << 20)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestDefault(t *testing.T) {
	cfg, err := Default(":8080", "http://127.0.0.1:3000")
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Sites[0].Routes[0].WAF
	if w.Mode != ModeBlock || w.Profile != ProfilePortcullis || w.DetectionThreshold != DefaultDetectionThreshold || w.Paranoia != 1 || w.CRS || w.OnError != OnErrorBlock || w.BodyLimit != 13<<20 || w.BodyNoFilesLimit != 1<<20 {
		t.Errorf("defaults: %+v", w)
	}
	if s := cfg.Server; s.Inspections != 0 || s.InspectionWait != 10*time.Second || s.MemoryLimit != 0 {
		t.Errorf("server defaults: %+v", s)
	}
	if s := cfg.Server; s.ClientConnections != DefaultClientConnections || s.ClientRequests != DefaultClientRequests ||
		s.ClientConnectionRate != DefaultClientConnectionRate || s.ClientConnectionBurst != DefaultClientConnectionBurst || s.SendTimeout != DefaultSendTimeout {
		t.Errorf("per-client defaults: %+v", s)
	}
	// Issue 18: the run without a file limits each client's request rate.
	if rl := cfg.Sites[0].RateLimits; len(rl) != 1 || rl[0].Rate != DefaultRate || rl[0].Burst != DefaultBurst || rl[0].Key != KeyIP {
		t.Errorf("default rate limit: %+v", rl)
	}
	if cfg.Audit.File != DefaultAuditFile {
		t.Errorf("audit file %q", cfg.Audit.File)
	}
	if _, err := Default(":8080", "ftp://x"); err == nil || !strings.Contains(err.Error(), `scheme must be http or https, got "ftp"`) {
		t.Errorf("bad upstream not rejected clearly: %v", err)
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"65536", 65536, true}, {"512KiB", 512 << 10, true}, {"10MiB", 10 << 20, true},
		{"1GB", 1e9, true}, {"2 KB", 2000, true}, {"-1", 0, false}, {"lots", 0, false},
		{"99999999999GiB", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		var b ByteSize
		err := b.parseScalar(tt.in)
		if (err == nil) != tt.ok || (tt.ok && int64(b) != tt.want) {
			t.Errorf("parse %q = %d, %v; want %d ok=%v", tt.in, b, err, tt.want, tt.ok)
		}
	}
}

// FuzzParse feeds arbitrary documents to the loader: it must return a config
// or an error, never panic, and every error must name the file.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/config/*.yaml")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("sites: [{hosts: [a], routes: [{path: /, upstream: u}]}]\nupstreams: [{name: u, targets: ['http://a']}]"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil {
			if cfg == nil || len(cfg.Sites) == 0 {
				t.Fatal("nil config without error")
			}
			return
		}
		for _, fe := range ErrorList(err) {
			if fe.File != "fuzz.yaml" || fe.Msg == "" {
				t.Fatalf("error without file or message: %#v", fe)
			}
		}
	})
}

func TestAdminAndAuditStore(t *testing.T) {
	cfg, err := Load("../testdata/config/valid-admin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Audit
	if a.BodyLimit != 16<<10 || a.SampleAllowed != 0.01 {
		t.Errorf("body_limit %d, sample_allowed %v", a.BodyLimit, a.SampleAllowed)
	}
	if !a.Store.Enabled || a.Store.Path != filepath.Join("../testdata/config", "data/audit.db") ||
		a.Store.MaxAge != 14*24*time.Hour || a.Store.MaxSize != 256<<20 {
		t.Errorf("store %+v", a.Store)
	}
	ad := cfg.Admin
	if ad == nil || ad.Listen != "127.0.0.1:9191" || ad.Auth.None || len(ad.Auth.Users) != 1 || ad.Auth.Users[0].Name != "alice" || len(ad.Auth.Tokens) != 1 {
		t.Fatalf("admin %+v", ad)
	}

	none, err := Parse("none.yaml", []byte("upstreams: [{name: a, targets: [\"http://127.0.0.1:1\"]}]\nsites: [{name: a, hosts: [\"*\"], routes: [{path: /, upstream: a}]}]\nadmin:\n  listen: \"[::1]:9090\"\n  auth: none\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !none.Admin.Auth.None || none.Audit.Store.Path != filepath.Join(DefaultStateDir, "audit.db") || none.Audit.BodyLimit != 64<<10 {
		t.Errorf("defaults: admin %+v store %+v body %d", none.Admin, none.Audit.Store, none.Audit.BodyLimit)
	}
	if c, _ := Parse("x.yaml", []byte("upstreams: [{name: a, targets: [\"http://127.0.0.1:1\"]}]\nsites: [{name: a, hosts: [\"*\"], routes: [{path: /, upstream: a}]}]\n")); c.Admin != nil {
		t.Errorf("admin on without an admin block: %+v", c.Admin)
	}
}

// TestAuditFailureAndAggregate: audit.on_failure and audit.aggregate
// resolve to their defaults, to what is set, and to off (issues 13, 18).
func TestAuditFailureAndAggregate(t *testing.T) {
	const base = "upstreams: [{name: a, targets: [\"http://127.0.0.1:1\"]}]\nsites: [{name: a, hosts: [\"*\"], routes: [{path: /, upstream: a}]}]\n"
	tests := []struct {
		audit     string
		onFailure string
		agg       AuditAggregateConfig
	}{
		{"", AuditServe, AuditAggregateConfig{Window: time.Minute, Samples: 10, MaxKeys: 10000}},
		{"audit: {on_failure: refuse, aggregate: {window: 30s, samples: 5, max_keys: 2000}}", AuditRefuse, AuditAggregateConfig{Window: 30 * time.Second, Samples: 5, MaxKeys: 2000}},
		{"audit: {on_failure: serve, aggregate: {enabled: false}}", AuditServe, AuditAggregateConfig{Window: time.Minute, Samples: 0, MaxKeys: 10000}},
	}
	for _, tt := range tests {
		cfg, err := Parse("x.yaml", []byte(base+tt.audit+"\n"))
		if err != nil {
			t.Fatalf("%q: %v", tt.audit, err)
		}
		if cfg.Audit.OnFailure != tt.onFailure || cfg.Audit.Aggregate != tt.agg {
			t.Errorf("%q: on_failure %q, aggregate %+v; want %q, %+v", tt.audit, cfg.Audit.OnFailure, cfg.Audit.Aggregate, tt.onFailure, tt.agg)
		}
	}
}
