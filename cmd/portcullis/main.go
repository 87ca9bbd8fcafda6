// Command portcullis is the Portcullis WAF reverse proxy.
//
//	portcullis run [-c portcullis.yaml | --upstream URL [--listen ADDR]]
//	portcullis check -c portcullis.yaml
//	portcullis demo [--listen ADDR]
//	portcullis version
//	portcullis health -c portcullis.yaml [--admin URL | --url URL] [--timeout 5s]
//	portcullis reload -c portcullis.yaml [--admin URL]
//	portcullis bans list|add|remove -c portcullis.yaml [--admin URL] [ADDRESS|CIDR]
//	portcullis audit search|summary|show|tail|export|explain|replay ...
//	portcullis help [COMMAND ...] | --help
//
// The command is a thin shell: it parses flags and calls in. config parses
// and validates the configuration, instance composes and runs the process
// (run, demo), gateway checks it (check), and the other commands are
// clients of a running instance's admin API (health, reload, bans) or
// readers of its audit records (audit/store, audit/query, audit/explain,
// audit/replay).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/gateway"
	"github.com/portcullis-waf/portcullis/instance"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// root is the command tree; cmdAudit and cmdBans are its groups.
func root() *command {
	r := &command{name: "portcullis", summary: "a WAF reverse proxy (Coraza + OWASP CRS)", help: rootHelp}
	r.subs = []*command{
		{name: "run", summary: "protect an application: --upstream URL with the embedded defaults, or -c FILE", run: cmdRun},
		{name: "check", summary: "validate a configuration and compile its rule sets (every problem as file:line)", run: cmdCheck},
		{name: "demo", summary: "start a sample app behind the WAF, with requests to try", run: cmdDemo},
		{name: "version", summary: "print the versions of Portcullis, Coraza and the embedded CRS", run: cmdVersion},
		{name: "schema", summary: "print the JSON Schema (draft 2020-12) of the configuration file, for editors", run: cmdSchema},
		{name: "health", summary: "exit 0 when the running instance is ready, 1 when not (for container health checks)", run: cmdHealth},
		{name: "reload", summary: "reload the running instance's configuration through its admin API", run: cmdReload},
		bansCommand(),
		auditCommand(),
	}
	link(r)
	return r
}

// link sets the parents of the tree below c.
func link(c *command) {
	for _, s := range c.subs {
		s.parent = c
		link(s)
	}
}

const rootHelp = `Flags may come before or after arguments; -c/--config always names the
configuration file. Exit status: 0 success, 1 failure, 2 a wrong command line.
`

// run dispatches a command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	r := root()
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-h", "-help", "--help":
		case "--version", "-version":
			args = []string{"version"}
		default:
			// "portcullis --upstream URL" (the command left out) still runs.
			args = append([]string{"run"}, args...)
		}
	}
	return r.dispatch(args, stdout, stderr)
}

func cmdVersion(c *command, args []string, stdout, stderr io.Writer) int {
	fs := c.newFlags(stderr)
	pos, code, ok := c.parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError(stderr, fs, "takes no arguments, got %q", pos[0])
	}
	printVersion(stdout)
	return 0
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

func cmdRun(c *command, args []string, stdout, stderr io.Writer) int {
	fs := c.newFlags(stderr)
	var file string
	configFlag(fs, &file, "", "")
	upstream := fs.String("upstream", "", "upstream `URL` to protect with the embedded defaults (without -c)")
	listen := fs.String("listen", ":8080", "listen `ADDRESS` (with --upstream)")
	pos, code, ok := c.parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError(stderr, fs, "takes no arguments, got %q (the upstream is given with --upstream)", pos[0])
	}
	cfg, err := loadConfig(file, *upstream, *listen)
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
	opts := instance.Options{Config: cfg, ConfigPath: file, Log: log, Level: level, Build: buildInfo()}
	if err := instance.Run(ctx, opts, nil); err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	return 0
}

func cmdCheck(c *command, args []string, stdout, stderr io.Writer) int {
	fs := c.newFlags(stderr)
	var file string
	configFlag(fs, &file, "portcullis.yaml", "")
	connect := fs.Bool("connect", false, "also connect to the cluster's shared services (cluster.redis, cluster.postgres) and report")
	pos, code, ok := c.parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 1 || (len(pos) == 1 && file != "portcullis.yaml") {
		return c.usageError(stderr, fs, "give one configuration file, with -c")
	}
	if len(pos) == 1 {
		file = pos[0] // "portcullis check FILE" reads as meant
	}
	cfg, err := config.Load(file)
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
	fmt.Fprintf(stdout, "%s: ok (%d site(s), %d rule set(s) compiled)\n", file, len(cfg.Sites), ruleSets)
	if *connect {
		return checkConnect(cfg, stdout, stderr)
	}
	return 0
}

// checkConnect connects to each configured shared service and says what it
// found; 1 when one cannot be used.
func checkConnect(cfg *config.Config, stdout, stderr io.Writer) int {
	if cfg.Cluster == nil || cfg.Cluster.Redis == nil && cfg.Cluster.Postgres == nil {
		fmt.Fprintln(stdout, "no cluster services configured: nothing to connect to")
		return 0
	}
	code := 0
	if cfg.Cluster.Redis != nil {
		code = checkRedis(cfg.Cluster.Redis, stdout, stderr)
	}
	if cfg.Cluster.Postgres != nil {
		code = max(code, checkPostgres(cfg.Cluster.Postgres, stdout, stderr))
	}
	return code
}

// checkPostgres connects to cluster.postgres and reports the server's
// version and whether the audit schema is there yet (it is created by the
// first instance that starts, not by check).
func checkPostgres(pc *config.PostgresConfig, stdout, stderr io.Writer) int {
	pg, err := store.OpenPostgres(store.PostgresOptions{ConnString: pc.ConnString, Password: pc.Password.Reveal(),
		Schema: pc.Schema, Timeout: pc.Timeout, Dial: pc.Dial, ReadOnly: true})
	if err != nil {
		fmt.Fprintln(stderr, "cluster.postgres:", err)
		return 1
	}
	defer pg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), pc.Dial+pc.Timeout)
	defer cancel()
	start := time.Now()
	version, err := pg.Ping(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "cluster.postgres: cannot use %s: %v\n", pc.Addr, err)
		return 1
	}
	rtt := time.Since(start)
	schema := "ready"
	if err := pg.EnsureSchema(ctx); err != nil {
		schema = "not usable yet: " + err.Error()
	}
	fmt.Fprintf(stdout, "cluster.postgres: connected to %s (postgresql %s, database %s, sslmode %s, round trip %v, schema %s %s)\n",
		pc.Addr, version, pc.Database, pc.SSLMode, rtt.Round(time.Microsecond), pc.Schema, schema)
	return 0
}

func checkRedis(rc *config.RedisConfig, stdout, stderr io.Writer) int {
	conn, err := redisconn.New(rc, redisconn.Options{})
	if err != nil {
		fmt.Fprintln(stderr, "cluster.redis:", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), rc.Dial+5*time.Second)
	defer cancel()
	start := time.Now()
	if err := conn.Ping(ctx); err != nil {
		fmt.Fprintf(stderr, "cluster.redis: cannot use %s: %v\n", rc.Addr, err)
		return 1
	}
	rtt := time.Since(start)
	version := "unknown"
	if info, err := conn.Client.Info(ctx, "server").Result(); err == nil {
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				version = v
			}
		}
	}
	fmt.Fprintf(stdout, "cluster.redis: connected to %s (redis %s, tls %v, round trip %v, key prefix %q)\n",
		rc.Addr, version, rc.TLS != nil, rtt.Round(time.Microsecond), rc.KeyPrefix)
	return 0
}
