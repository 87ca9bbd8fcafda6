package acmetest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BIND is a real authoritative DNS server (ISC BIND 9's named, Debian
// package bind9) serving one zone on 127.0.0.1 that accepts RFC 2136
// dynamic updates signed with a TSIG key, for DNS-01 tests. Pebble can be
// pointed at it with Options.Resolver.
type BIND struct {
	// Addr is "127.0.0.1:port" (UDP and TCP).
	Addr string
	// Zone is the zone's name without the trailing dot, e.g. "example.test".
	Zone string
	// KeyName, Algorithm and Secret (base64) are the TSIG key that may
	// update the zone.
	KeyName, Algorithm, Secret string
	// Dir is the server's working directory (config, zone, journal).
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
	logs *tailBuffer
}

// RequireTool returns the path of a program the test needs. When it is
// missing the test is skipped with a message saying what to install;
// with the environment variable CI set it fails instead, so that CI never
// passes by skipping.
func RequireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	// Debian installs named in /usr/sbin, which a user's PATH may lack.
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		if p, err2 := exec.LookPath(filepath.Join(dir, name)); err2 == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found (install the Debian package %s): %v", name, debianPackage, err)
	}
	t.Skipf("%s not found: install the Debian package %s to run this test", name, debianPackage)
	return ""
}

// StartBIND starts named in the foreground for zone (e.g. "example.test").
// The zone has an SOA, NS ns.<zone> (127.0.0.1) and A records of 127.0.0.1
// for the apex and every name under it (a wildcard A record), so that HTTP
// and TLS validation of any name in it reach loopback too. The TSIG key
// "portcullis-test." (hmac-sha256, a fresh random secret) may update the
// zone; nothing else may. named is stopped by t.Cleanup.
func StartBIND(t testing.TB, zone string) *BIND {
	t.Helper()
	named := RequireTool(t, "named", "bind9")
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	b := &BIND{
		Zone: zone, KeyName: "portcullis-test.", Algorithm: "hmac-sha256",
		Secret: base64.StdEncoding.EncodeToString(secret), Dir: t.TempDir(),
		logs: &tailBuffer{max: 16 << 10},
	}
	zoneFile := filepath.Join(b.Dir, zone+".zone")
	zoneText := fmt.Sprintf(`$TTL 60
@ IN SOA ns.%[1]s. hostmaster.%[1]s. 1 60 60 600 60
@ IN NS ns.%[1]s.
ns IN A 127.0.0.1
@ IN A 127.0.0.1
* IN A 127.0.0.1
`, zone)
	if err := os.WriteFile(zoneFile, []byte(zoneText), 0o644); err != nil {
		t.Fatal(err)
	}
	// named may bind the port after we chose it and someone else took it:
	// try a few ports.
	var lastErr error
	for range 5 {
		port, err := freeUDPTCPPort()
		if err != nil {
			t.Fatalf("acmetest: BIND port: %v", err)
		}
		b.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = b.start(named, port, zoneFile); lastErr == nil {
			t.Cleanup(b.Stop)
			return b
		}
	}
	t.Fatalf("acmetest: start named: %v", lastErr)
	return nil
}

func (b *BIND) start(named string, port int, zoneFile string) error {
	conf := filepath.Join(b.Dir, "named.conf")
	confText := fmt.Sprintf(`key "%[1]s" { algorithm %[2]s; secret "%[3]s"; };
options {
	directory "%[4]s";
	pid-file none;
	listen-on port %[5]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
	session-keyfile "%[4]s/session.key";
	managed-keys-directory "%[4]s";
};
controls { };
zone "%[6]s" {
	type primary;
	file "%[7]s";
	allow-update { key "%[1]s"; };
};
`, b.KeyName, b.Algorithm, b.Secret, b.Dir, port, b.Zone, zoneFile)
	if err := os.WriteFile(conf, []byte(confText), 0o600); err != nil {
		return err
	}
	// -g: foreground, log to stderr. Run as the invoking user (root in CI
	// works too: without -u named keeps its user).
	b.cmd = exec.Command(named, "-g", "-c", conf)
	b.cmd.Stdout, b.cmd.Stderr = b.logs, b.logs
	if err := b.cmd.Start(); err != nil {
		return err
	}
	b.done = make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	// Ready when it answers the zone's SOA over TCP (what Pebble uses).
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(b.Zone), dns.TypeSOA)
		c := &dns.Client{Net: "tcp", Timeout: time.Second}
		if in, _, err := c.Exchange(m, b.Addr); err == nil && in.Rcode == dns.RcodeSuccess && len(in.Answer) > 0 {
			return nil
		}
		select {
		case <-b.done:
			return fmt.Errorf("named exited: %s", b.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Stop()
			return fmt.Errorf("named did not answer within 20s: %s", b.logs.String())
		}
	}
}

// Stop ends named and waits for it.
func (b *BIND) Stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.done
}

// Logs returns the end of named's output, for failure messages.
func (b *BIND) Logs() string { return b.logs.String() }

// TXT returns the TXT values at name (absolute or relative to nothing),
// asked directly from the server.
func (b *BIND) TXT(t testing.TB, name string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	in, _, err := c.Exchange(m, b.Addr)
	if err != nil {
		t.Fatalf("query TXT %s: %v", name, err)
	}
	var out []string
	for _, rr := range in.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out
}

// freeUDPTCPPort returns a port on 127.0.0.1 that was free for both UDP and
// TCP a moment ago.
func freeUDPTCPPort() (int, error) {
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		_ = pc.Close()
		if err == nil {
			_ = ln.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free for both UDP and TCP")
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > w.max {
		w.buf = w.buf[len(w.buf)-w.max:]
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
