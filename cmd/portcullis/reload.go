package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/config"
)

// cmdReload asks the running instance, through its admin API, to read its
// configuration again. It prints the result: ok, or the same problems
// `portcullis check` prints, in which case the old configuration keeps
// serving.
func cmdReload(c *command, args []string, stdout, stderr io.Writer) int {
	fs := c.newFlags(stderr)
	var file string
	configFlag(fs, &file, "portcullis.yaml", "configuration `FILE` (for the admin listener's address)")
	var ac adminClient
	ac.bind(fs)
	pos, code, ok := c.parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError(stderr, fs, "takes no arguments, got %q", pos[0])
	}
	base, err := ac.baseURL(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	req, err := ac.request(http.MethodPost, base, "/api/reload", strings.NewReader("{}"))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	resp, err := ac.client(5 * time.Minute).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "reload: cannot reach the admin listener at %s: %v\n", base, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var res admin.ReloadResult
	if err := json.Unmarshal(body, &res); err != nil || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		fmt.Fprintf(stderr, "reload: admin listener answered %s: %s\n%s", resp.Status, strings.TrimSpace(string(body)), tokenHint)
		return 1
	}
	if !res.OK {
		fmt.Fprintln(stderr, res.Error)
		fmt.Fprintln(stderr, "reload failed; the running configuration keeps serving")
		return 1
	}
	fmt.Fprintf(stdout, "reloaded in %s\n", res.Duration)
	return 0
}

// errNoAdmin: the configuration has no admin listener to talk to.
var errNoAdmin = errors.New("no admin listener to ask (for a reload, send SIGHUP to the running process instead: kill -HUP PID)")

// tokenHint says how the CLI authenticates to the admin API.
const tokenHint = "(set PORTCULLIS_ADMIN_TOKEN to an API token whose SHA-256 is in admin.auth.tokens)\n"

// adminClient talks to the running instance's admin API: reload, bans,
// health. The token comes from PORTCULLIS_ADMIN_TOKEN, never a flag (a
// flag shows in ps and shell history).
type adminClient struct {
	url      string
	insecure bool
}

func (a *adminClient) bind(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "admin", "", "admin `URL`, e.g. https://127.0.0.1:9090 (default: from the configuration's admin block)")
	fs.BoolVar(&a.insecure, "insecure", false, "do not verify the admin listener's certificate (self-signed, loopback)")
}

// baseURL is --admin, or the admin listener named by the configuration
// file (a wildcard listen address is reached on loopback).
func (a *adminClient) baseURL(file string) (string, error) {
	if a.url != "" {
		return strings.TrimSuffix(a.url, "/"), nil
	}
	listen, tls, err := adminAddress(file)
	if err != nil {
		return "", err
	}
	host, port, _ := net.SplitHostPort(listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

func (a *adminClient) request(method, base, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := os.Getenv("PORTCULLIS_ADMIN_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

func (a *adminClient) client(timeout time.Duration) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: a.insecure}, Proxy: nil}
	if pool, err := x509.SystemCertPool(); err == nil {
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Timeout: timeout, Transport: tr}
}

// adminAddress finds the admin listener in the configuration file. The
// file is about to be reloaded and may be invalid: the running instance
// reports its problems, so only the admin block is read here, leniently.
func adminAddress(path string) (listen string, tls bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	var doc struct {
		Admin *struct {
			Listen   string `yaml:"listen"`
			CertFile string `yaml:"cert_file"`
		} `yaml:"admin"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil || doc.Admin == nil {
		return "", false, fmt.Errorf("%s has no readable admin block: %w", path, errNoAdmin)
	}
	if doc.Admin.Listen == "" {
		doc.Admin.Listen = config.DefaultAdminListen
	}
	return doc.Admin.Listen, doc.Admin.CertFile != "", nil
}
