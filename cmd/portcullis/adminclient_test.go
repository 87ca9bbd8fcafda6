package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestAdminAddressFromTheConfiguration: reload, bans and health find the
// admin listener in the configuration file (the process tests bind port 0
// and name it with --admin instead). A wildcard listen address is reached
// on loopback, a cert_file means https, and --admin wins.
func TestAdminAddressFromTheConfiguration(t *testing.T) {
	tests := []struct {
		name, yaml, flag string
		want             string
		noAdmin          bool
	}{
		{"loopback", "admin: {listen: \"127.0.0.1:9090\", auth: none}\n", "", "http://127.0.0.1:9090", false},
		{"default listen", "admin: {auth: none}\n", "", "http://127.0.0.1:9090", false},
		{"wildcard v4", "admin: {listen: \"0.0.0.0:9443\"}\n", "", "http://127.0.0.1:9443", false},
		{"wildcard v6", "admin: {listen: \"[::]:9443\"}\n", "", "http://127.0.0.1:9443", false},
		{"all interfaces", "admin: {listen: \":9091\"}\n", "", "http://127.0.0.1:9091", false},
		{"ipv6 loopback", "admin: {listen: \"[::1]:9090\"}\n", "", "http://[::1]:9090", false},
		{"tls", "admin: {listen: \"10.0.0.5:9443\", cert_file: a.pem, key_file: a.key}\n", "", "https://10.0.0.5:9443", false},
		{"flag wins", "admin: {listen: \"127.0.0.1:9090\"}\n", "https://127.0.0.1:7000/", "https://127.0.0.1:7000", false},
		{"flag without admin block", "listeners: [{address: \":8080\"}]\n", "http://127.0.0.1:7000", "http://127.0.0.1:7000", false},
		{"no admin block", "listeners: [{address: \":8080\"}]\n", "", "", true},
		// An invalid file elsewhere: the address is still found (the
		// running instance reports the rest).
		{"rest invalid", "admin: {listen: \"127.0.0.1:9090\"}\nwaf: {paranoia: 9}\n", "", "http://127.0.0.1:9090", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "portcullis.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			ac := adminClient{url: tt.flag}
			got, err := ac.baseURL(path)
			if tt.noAdmin {
				if !errors.Is(err, errNoAdmin) {
					t.Fatalf("got %q, %v; want errNoAdmin", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
