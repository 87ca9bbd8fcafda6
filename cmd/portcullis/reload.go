package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-waf/portcullis/config"
)

// cmdReload asks the running instance, through its admin API, to read its
// configuration again. It prints the result: ok, or the same problems
// `portcullis check` prints, in which case the old configuration keeps
// serving.
func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "portcullis.yaml", "configuration file (for the admin listener's address)")
	adminURL := fs.String("admin", "", "admin URL, e.g. https://127.0.0.1:9090 (default: from the configuration)")
	insecure := fs.Bool("insecure", false, "do not verify the admin listener's certificate (self-signed, loopback)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	base := *adminURL
	if base == "" {
		listen, tls, err := adminAddress(*file)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		host, port, _ := net.SplitHostPort(listen)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		scheme := "http"
		if tls {
			scheme = "https"
		}
		base = scheme + "://" + net.JoinHostPort(host, port)
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(base, "/")+"/api/reload", strings.NewReader("{}"))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	req.Header.Set("Content-Type", "application/json")
	if tok := os.Getenv("PORTCULLIS_ADMIN_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: *insecure}}
	if pool, err := x509.SystemCertPool(); err == nil {
		tr.TLSClientConfig.RootCAs = pool
	}
	resp, err := (&http.Client{Timeout: 5 * time.Minute, Transport: tr}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "reload: cannot reach the admin listener at %s: %v\n", base, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var res reloadResult
	if err := json.Unmarshal(body, &res); err != nil || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		fmt.Fprintf(stderr, "reload: admin listener answered %s: %s\n(set PORTCULLIS_ADMIN_TOKEN to an API token of admin.auth.tokens)\n", resp.Status, strings.TrimSpace(string(body)))
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
		return "", false, fmt.Errorf("%s has no readable admin block: send SIGHUP to the running process instead (kill -HUP PID)", path)
	}
	if doc.Admin.Listen == "" {
		doc.Admin.Listen = config.DefaultAdminListen
	}
	return doc.Admin.Listen, doc.Admin.CertFile != "", nil
}
