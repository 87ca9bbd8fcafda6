package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/instance"
)

// cmdDemo starts a small sample application on loopback with Portcullis in
// front of it and prints requests a newcomer can try.
func cmdDemo(c *command, args []string, stdout, stderr io.Writer) int {
	fs := c.newFlags(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "`ADDRESS` of the WAF in front of the sample app")
	pos, code, ok := c.parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError(stderr, fs, "takes no arguments, got %q", pos[0])
	}
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "portcullis demo: start sample app:", err)
		return 1
	}
	app := &http.Server{Handler: sampleApp()}
	go func() { _ = app.Serve(appLn) }()
	defer app.Close()

	cfg, err := config.Default(*listen, "http://"+appLn.Addr().String())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = instance.Run(ctx, instance.Options{Config: cfg, Log: log, Build: buildInfo()}, func(inst *instance.Instance) {
		base := "http://" + inst.Addrs()[0].String()
		fmt.Fprintf(stdout, `Portcullis is protecting a sample shop at %s (sample app on %s).
Try these in another terminal:

  # a normal search: reaches the app (200)
  curl -i '%s/search?q=running+shoes'

  # SQL injection: blocked by the OWASP CRS (403, with a request id)
  curl -i "%s/search?q=1%%27%%20OR%%20%%271%%27%%3D%%271"

  # cross-site scripting: blocked (403)
  curl -i '%s/search?q=%%3Cscript%%3Ealert(1)%%3C/script%%3E'

Each blocked request leaves one JSON line in %s. Press Ctrl-C to stop.
`, base, appLn.Addr(), base, base, base, cfg.Audit.File)
	})
	if err != nil {
		fmt.Fprintln(stderr, "portcullis demo:", err)
		return 1
	}
	return 0
}

// sampleApp is the demo's application: a search endpoint and a home page.
func sampleApp() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/search", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"query":   r.URL.Query().Get("q"),
			"results": []string{"Trail runner 2", "Road racer", "Everyday trainer"},
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!DOCTYPE html><title>Sample shop</title><h1>Sample shop</h1><p>Try /search?q=shoes</p>\n")
	})
	return mux
}
