package tlsmgr

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBuild: a plan's sites get their sources (files, self-signed under
// the state directory), no TLS site means no manager, and a plan the
// manager cannot serve is refused with the reason.
func TestBuild(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, 1, "files.test", "www.files.test")
	state := filepath.Join(dir, "state")
	tests := []struct {
		name      string
		plan      Plan
		wantNil   bool
		wantHosts []string
		wantErr   string
	}{
		{name: "no TLS site", plan: Plan{StateDir: state}, wantNil: true},
		{name: "files and self-signed", plan: Plan{StateDir: state, Sites: []SitePlan{
			{Hosts: []string{"files.test", "www.files.test"}, Source: SourceFiles, CertFile: cert, KeyFile: key},
			{Hosts: []string{"dev.test"}, Source: SourceSelfSigned},
		}}, wantHosts: []string{"dev.test", "files.test", "www.files.test"}},
		{name: "unknown source", plan: Plan{StateDir: state, Sites: []SitePlan{{Hosts: []string{"a.test"}, Source: "dns-01"}}},
			wantErr: `unknown certificate source "dns-01"`},
		{name: "default host without a source", plan: Plan{StateDir: state, DefaultHost: "other.test", Sites: []SitePlan{{Hosts: []string{"dev.test"}, Source: SourceSelfSigned}}},
			wantErr: `default host "other.test" has no certificate source`},
		{name: "bad policy", plan: Plan{StateDir: state, Policy: "old", Sites: []SitePlan{{Hosts: []string{"dev.test"}, Source: SourceSelfSigned}}},
			wantErr: "tls policy must be intermediate or modern"},
		{name: "ACME without accepting the terms", plan: Plan{StateDir: state, ACME: ACMEConfig{DirectoryURL: "https://127.0.0.1:1/dir"}, Sites: []SitePlan{{Hosts: []string{"a.test"}, Source: SourceACME}}},
			wantErr: "terms of service must be accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Build(tt.plan, quietLog())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (m == nil) != tt.wantNil {
				t.Fatalf("manager %v, want nil %v", m, tt.wantNil)
			}
			if m == nil {
				return
			}
			var hosts []string
			for h := range m.Expiry() {
				hosts = append(hosts, h)
			}
			slices.Sort(hosts)
			if !slices.Equal(hosts, tt.wantHosts) {
				t.Errorf("certificates for %v, want %v", hosts, tt.wantHosts)
			}
		})
	}
}

// TestListener: HTTP/1 connections come out of Accept with the handshake
// done, HTTP/2 ones go to the h2 function, a client that never finishes
// its handshake is closed after the timeout (others are served while it
// waits), and Close ends Accept.
func TestListener(t *testing.T) {
	m, err := Build(Plan{StateDir: t.TempDir(), Sites: []SitePlan{{Hosts: []string{"dev.test"}, Source: SourceSelfSigned}}}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h2 := make(chan *tls.Conn, 1)
	l := NewListener(raw, m.TLSConfig(), 2*time.Second, func(c *tls.Conn) { h2 <- c }, quietLog())
	defer l.Close()
	addr := l.Addr().String()

	// A client that sends nothing: its handshake times out and it is
	// closed.
	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()

	dial := func(protos ...string) *tls.Conn {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{ServerName: "dev.test", InsecureSkipVerify: true, NextProtos: protos})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	client := dial("http/1.1")
	defer client.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
			close(accepted)
			return
		}
		accepted <- c
	}()
	select {
	case c := <-accepted:
		if c == nil {
			t.FailNow()
		}
		tc, ok := c.(*tls.Conn)
		if !ok || !tc.ConnectionState().HandshakeComplete || tc.ConnectionState().ServerName != "dev.test" {
			t.Errorf("accepted %T without a finished handshake for dev.test", c)
		}
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("an HTTP/1 client was not accepted")
	}

	h2client := dial("h2")
	defer h2client.Close()
	select {
	case c := <-h2:
		if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Errorf("h2 got a %q connection", p)
		}
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("an HTTP/2 client was not handed over")
	}

	_ = stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := stalled.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("stalled handshake: read %v, want the connection closed (EOF)", err)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}
