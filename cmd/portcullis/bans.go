package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis-waf/portcullis/bans"
	"github.com/portcullis-waf/portcullis/config"
)

// cmdBans lists, adds and lifts bans. The running instance owns the state
// file; add and remove reach it through the spool beside the file (applied
// within seconds, or at the next start).
func cmdBans(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: portcullis bans list|add|remove -c portcullis.yaml [--for 1h] [--reason text] [ADDRESS or CIDR]")
		return 2
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("bans "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "portcullis.yaml", "configuration file")
	dur := fs.Duration("for", time.Hour, "how long the ban lasts (add)")
	reason := fs.String("reason", "", "why (add)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	state := cfg.Bans.StateFile
	if !cfg.Bans.Enabled {
		fmt.Fprintf(stderr, "note: bans.enabled is false in %s: the instance does not apply bans\n", *file)
	}
	switch sub {
	case "list":
		list, err := bans.ReadFile(state, time.Now())
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PREFIX\tUNTIL\tSOURCE\tREASON")
		for _, b := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Prefix, b.Until.UTC().Format(time.RFC3339), b.Source, b.Reason)
		}
		_ = tw.Flush()
		if pending, err := bans.Pending(state); err == nil && len(pending) > 0 {
			fmt.Fprintf(stdout, "%d command(s) not yet applied by the running instance\n", len(pending))
		}
		return 0
	case "add", "remove":
		if fs.NArg() != 1 {
			fmt.Fprintf(stderr, "portcullis bans %s: give one address or CIDR\n", sub)
			return 2
		}
		prefix, err := parseBanTarget(fs.Arg(0))
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		cmd := bans.Command{Op: sub, Prefix: prefix}
		if sub == "add" {
			if *dur <= 0 {
				fmt.Fprintln(stderr, "portcullis bans add: --for must be positive")
				return 2
			}
			cmd.Reason, cmd.Until = *reason, time.Now().Add(*dur)
		}
		if err := bans.Submit(state, cmd); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s %s: queued for the running instance (%s)\n", sub, prefix, bans.SpoolDir(state))
		return 0
	default:
		fmt.Fprintf(stderr, "portcullis bans: unknown command %q (list, add, remove)\n", sub)
		return 2
	}
}

func parseBanTarget(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an address or CIDR: %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an address or CIDR: %q", s)
	}
	// The prefix a ban on this client covers: the address for IPv4, its /64
	// for IPv6, as the automatic bans do.
	return bans.ClientPrefix(a)
}
