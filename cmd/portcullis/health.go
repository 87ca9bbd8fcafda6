package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/config"
)

// cmdHealth tells a container runtime or a monitor whether the running
// instance is ready: with an admin block, its /readyz must answer 200
// (pipeline built, listeners up, a certificate for every TLS host);
// without one, every traffic listener must accept a connection. It exists
// because the container image has no curl. Exit 0 ready, 1 not.
func cmdHealth(c *command, args []string, stdout, stderr io.Writer) int {
	fs := c.newFlags(stderr)
	var file string
	configFlag(fs, &file, "portcullis.yaml", "configuration `FILE` naming the admin listener or the listeners")
	var ac adminClient
	ac.bind(fs)
	target := fs.String("url", "", "check this `URL` instead (200 is ready), e.g. http://127.0.0.1:9090/readyz")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	pos, code, ok := c.parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError(stderr, fs, "takes no arguments, got %q", pos[0])
	}
	if *timeout <= 0 {
		return c.usageError(stderr, fs, "--timeout must be positive")
	}
	if *target == "" && ac.url != "" {
		*target = strings.TrimSuffix(ac.url, "/") + "/readyz"
	}
	if *target == "" {
		base, err := ac.baseURL(file)
		switch {
		case errors.Is(err, errNoAdmin):
			return healthListeners(file, *timeout, stdout, stderr)
		case err != nil:
			fmt.Fprintln(stderr, "not ready:", err)
			return 1
		}
		*target = base + "/readyz"
	}
	req, err := ac.request(http.MethodGet, *target, "", nil)
	if err != nil {
		return c.usageError(stderr, fs, "%v", err)
	}
	resp, err := ac.client(*timeout).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "not ready: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "not ready: %s answered %s: %s\n", *target, resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintf(stdout, "ready (%s)\n", *target)
	return 0
}

// healthListeners connects to every traffic listener of the configuration.
func healthListeners(file string, timeout time.Duration, stdout, stderr io.Writer) int {
	cfg, err := config.Load(file)
	if err != nil {
		fmt.Fprintf(stderr, "not ready: %v\n", err)
		return 1
	}
	for _, l := range cfg.Listeners {
		host, port, _ := net.SplitHostPort(l.Address)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		addr := net.JoinHostPort(host, port)
		conn, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			fmt.Fprintf(stderr, "not ready: listener %s: %v\n", l.Name, err)
			return 1
		}
		_ = conn.Close()
	}
	fmt.Fprintf(stdout, "ready (%d listener(s) accept connections; add an admin block for /readyz)\n", len(cfg.Listeners))
	return 0
}
