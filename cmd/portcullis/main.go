// Command portcullis is the Portcullis WAF reverse proxy.
//
//	portcullis run [-c portcullis.yaml | --upstream URL [--listen ADDR]]
//	portcullis check -c portcullis.yaml
//	portcullis demo
//	portcullis version
//
// The command is a thin shell: config parses, gateway assembles and serves.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/gateway"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Portcullis: a WAF reverse proxy (Coraza + OWASP CRS).

Usage:
  portcullis run --upstream URL [--listen :8080]   protect URL with the embedded defaults
  portcullis run -c portcullis.yaml                run with a configuration file
  portcullis check -c portcullis.yaml              validate a configuration and its rules
  portcullis demo                                  start a sample app behind the WAF
  portcullis bans list|add|remove -c FILE [ADDR]   list, add or lift bans
  portcullis audit search|summary|show|tail|export search and review audit records
  portcullis reload -c portcullis.yaml             reload the running instance (or send it SIGHUP)
  portcullis version                               print versions
`

// run dispatches a subcommand and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return cmdRun(args, stdout, stderr)
	case "check":
		return cmdCheck(args, stdout, stderr)
	case "demo":
		return cmdDemo(args, stdout, stderr)
	case "bans":
		return cmdBans(args, stdout, stderr)
	case "audit":
		return cmdAudit(args, stdout, stderr)
	case "reload":
		return cmdReload(args, stdout, stderr)
	case "version":
		printVersion(stdout)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "portcullis: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// loadConfig resolves the configuration from -c or from --upstream/--listen.
func loadConfig(file, upstream, listen string) (*config.Config, error) {
	switch {
	case file != "" && upstream != "":
		return nil, errors.New("use either -c FILE or --upstream URL, not both")
	case file != "":
		return config.Load(file)
	case upstream != "":
		return config.Default(listen, upstream)
	default:
		return nil, errors.New("nothing to protect: give --upstream URL or -c FILE (see portcullis help)")
	}
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "configuration file")
	upstream := fs.String("upstream", "", "upstream URL to protect (without -c)")
	listen := fs.String("listen", ":8080", "listen address (with --upstream)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*file, *upstream, *listen)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.Level)
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if cfg.Log.Format == "json" {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(handler)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, *file, log, level, func(inst *instance) {
		for _, a := range inst.server.Addrs() {
			log.Info("portcullis listening", "address", a.String(), "audit", cfg.Audit.File)
		}
	}); err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	return 0
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "portcullis.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// Compile every rule set and open every list as run would: a rule that
	// does not compile is a configuration error too. Nothing is written.
	ruleSets, err := gateway.Check(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d site(s), %d rule set(s) compiled)\n", *file, len(cfg.Sites), ruleSets)
	return 0
}
