package tlsmgr

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/tlsmgr/acmetest"
)

func rfc2136For(t *testing.T, b *acmetest.BIND, mutate func(*RFC2136Config)) *RFC2136 {
	t.Helper()
	cfg := RFC2136Config{Server: b.Addr, TSIGKey: b.KeyName, TSIGAlgorithm: b.Algorithm, TSIGSecret: b.Secret}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := NewRFC2136(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestRFC2136AgainstBIND: TSIG-signed updates add and remove exactly one
// TXT value at a time in a real BIND, with the zone given or found through
// the SOA; unsigned-equivalent (wrong key) updates are refused.
func TestRFC2136AgainstBIND(t *testing.T) {
	b := acmetest.StartBIND(t, "example.test")
	ctx := testCtx(t)
	const fqdn = "_acme-challenge.example.test."
	for _, tc := range []struct {
		name   string
		mutate func(*RFC2136Config)
	}{
		{"zone discovered", nil},
		{"zone given", func(c *RFC2136Config) { c.Zone = "example.test" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := rfc2136For(t, b, tc.mutate)
			// Two values at one name, as when example.test and
			// *.example.test are validated at once.
			for _, v := range []string{"value-one", "value-two"} {
				if err := p.Present(ctx, fqdn, v); err != nil {
					t.Fatalf("present %s: %v\n%s", v, err, b.Logs())
				}
			}
			got := b.TXT(t, fqdn)
			slices.Sort(got)
			if !slices.Equal(got, []string{"value-one", "value-two"}) {
				t.Fatalf("TXT after present: %v", got)
			}
			if err := p.CleanUp(ctx, fqdn, "value-one"); err != nil {
				t.Fatal(err)
			}
			if got := b.TXT(t, fqdn); !slices.Equal(got, []string{"value-two"}) {
				t.Fatalf("TXT after removing one: %v", got)
			}
			if err := p.CleanUp(ctx, fqdn, "value-two"); err != nil {
				t.Fatal(err)
			}
			if got := b.TXT(t, fqdn); len(got) != 0 {
				t.Fatalf("TXT after cleanup: %v", got)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			mutate func(*RFC2136Config)
			want   string
		}{
			// With the zone given, the update itself goes out and is refused.
			{"wrong secret", func(c *RFC2136Config) { c.Zone, c.TSIGSecret = "example.test", "c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1rZXk=" }, "rfc2136: add TXT _acme-challenge.example.test. at 127.0.0.1"},
			{"unknown key", func(c *RFC2136Config) { c.Zone, c.TSIGKey = "example.test", "someone-else" }, "rfc2136: add TXT _acme-challenge.example.test. at 127.0.0.1"},
			{"wrong secret, zone lookup", func(c *RFC2136Config) { c.TSIGSecret = "c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1rZXk=" }, "rfc2136: find the zone of _acme-challenge.example.test."},
			{"outside the zone", func(c *RFC2136Config) { c.Zone = "other.test" }, "is not in zone other.test."},
		} {
			p := rfc2136For(t, b, tc.mutate)
			err := p.Present(ctx, fqdn, "forged")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
			}
		}
		if got := b.TXT(t, fqdn); len(got) != 0 {
			t.Errorf("a refused update changed the zone: %v", got)
		}
	})
}

func TestNewRFC2136RejectsBadConfig(t *testing.T) {
	ok := RFC2136Config{Server: "127.0.0.1", TSIGKey: "k", TSIGSecret: "c2VjcmV0LXNlY3JldC1zZWNyZXQ="}
	for _, tc := range []struct {
		name   string
		mutate func(*RFC2136Config)
		want   string
	}{
		{"no server", func(c *RFC2136Config) { c.Server = "" }, "server is required"},
		{"no key", func(c *RFC2136Config) { c.TSIGKey = "" }, "never sent unsigned"},
		{"md5", func(c *RFC2136Config) { c.TSIGAlgorithm = "hmac-md5" }, "must be hmac-sha256, hmac-sha384 or hmac-sha512"},
		{"secret not base64", func(c *RFC2136Config) { c.TSIGSecret = "not base64!" }, "not base64"},
		{"secret short", func(c *RFC2136Config) { c.TSIGSecret = "c2hvcnQ=" }, "at least 16"},
		{"bad zone", func(c *RFC2136Config) { c.Zone = "a..b" }, "not a domain name"},
	} {
		c := ok
		tc.mutate(&c)
		if _, err := NewRFC2136(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	p, err := NewRFC2136(ok)
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.Server != "127.0.0.1:53" {
		t.Errorf("server %q, want the default port 53 added", p.cfg.Server)
	}
}

// TestPropagationCheck: the wait ends when the record is visible at the
// zone's authoritative servers, found through NS records (here: BIND's own
// NS record, ns.example.test → 127.0.0.1, on BIND's port), and fails with
// the servers named when it never shows up.
func TestPropagationCheck(t *testing.T) {
	b := acmetest.StartBIND(t, "example.test")
	ctx := testCtx(t)
	_, port, _ := net.SplitHostPort(b.Addr)
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, b.Addr)
	}}
	discovered := &DNS01Config{PropagationTimeout: 20 * time.Second, PropagationInterval: 50 * time.Millisecond, resolver: resolver, nsPort: port}
	servers, err := discovered.authoritative(ctx, "_acme-challenge.www.example.test.")
	if err != nil || !slices.Equal(servers, []string{b.Addr}) {
		t.Fatalf("authoritative servers %v (%v), want [%s]", servers, err, b.Addr)
	}

	p := rfc2136For(t, b, nil)
	const fqdn = "_acme-challenge.www.example.test."
	if err := p.Present(ctx, fqdn, "visible"); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*DNS01Config{
		"discovered": discovered,
		"configured": {Nameservers: []string{b.Addr}, PropagationTimeout: 20 * time.Second, PropagationInterval: 50 * time.Millisecond},
	} {
		c := cfg.withDefaults()
		if err := c.awaitPropagation(ctx, fqdn, "visible"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	never := (&DNS01Config{Nameservers: []string{b.Addr}, PropagationTimeout: 300 * time.Millisecond, PropagationInterval: 50 * time.Millisecond}).withDefaults()
	err = never.awaitPropagation(ctx, fqdn, "absent")
	if err == nil || !strings.Contains(err.Error(), "not visible within 300ms") || !strings.Contains(err.Error(), b.Addr) {
		t.Errorf("missing record: %v", err)
	}
}

// writeScript writes an executable shell script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExecHook: the command gets the action, name and value as arguments
// and in its environment, and nothing of Portcullis's environment besides
// PATH and what pass_env names; failures carry the command's output;
// a hanging command is killed at the timeout.
func TestExecHook(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PORTCULLIS_TEST_SECRET", "must-not-leak")
	t.Setenv("PORTCULLIS_TEST_PASSED", "handed-over")
	out := filepath.Join(dir, "out")
	record := writeScript(t, dir, "record.sh", `printf '%s|' "$@" > "`+out+`"
printf '%s|%s|%s|%s|%s' "$PORTCULLIS_ACME_ACTION" "$PORTCULLIS_ACME_FQDN" "$PORTCULLIS_ACME_VALUE" "$PORTCULLIS_TEST_SECRET" "$PORTCULLIS_TEST_PASSED" >> "`+out+`"
`)
	h, err := NewExecHook(ExecHookConfig{Command: []string{record, "--zone", "example.test"}, PassEnv: []string{"PORTCULLIS_TEST_PASSED"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	for _, tc := range []struct {
		run  func(context.Context, string, string) error
		want string
	}{
		{h.Present, "--zone|example.test|present|_acme-challenge.a.test.|v1|present|_acme-challenge.a.test.|v1||handed-over"},
		{h.CleanUp, "--zone|example.test|cleanup|_acme-challenge.a.test.|v1|cleanup|_acme-challenge.a.test.|v1||handed-over"},
	} {
		if err := tc.run(ctx, "_acme-challenge.a.test.", "v1"); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(out)
		if string(got) != tc.want {
			t.Errorf("hook saw %q, want %q", got, tc.want)
		}
	}

	fail := writeScript(t, dir, "fail.sh", "echo 'zone example.test: permission denied' >&2\nexit 3\n")
	hang := writeScript(t, dir, "hang.sh", "echo started\nsleep 600\n")
	for _, tc := range []struct {
		cfg  ExecHookConfig
		want []string
	}{
		{ExecHookConfig{Command: []string{fail}}, []string{"dns hook present _acme-challenge.a.test.", "exit status 3", "permission denied"}},
		{ExecHookConfig{Command: []string{hang}, Timeout: 500 * time.Millisecond}, []string{"killed after 500ms", "started"}},
	} {
		h, err := NewExecHook(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = h.Present(ctx, "_acme-challenge.a.test.", "v1")
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: err %v, want %q", tc.cfg.Command, err, w)
			}
		}
	}
	if _, err := NewExecHook(ExecHookConfig{Command: []string{filepath.Join(dir, "missing")}}); err == nil {
		t.Error("a missing command was accepted")
	}
}

func TestChallengeFQDN(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":     "_acme-challenge.example.com.",
		"*.example.com":   "_acme-challenge.example.com.",
		"a.b.example.com": "_acme-challenge.a.b.example.com.",
	} {
		if got := challengeFQDN(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
