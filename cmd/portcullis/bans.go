package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis-waf/portcullis/bans"
	"github.com/portcullis-waf/portcullis/config"
)

func bansCommand() *command {
	const how = `With an admin block in the configuration, bans go through the running
instance's admin API (authenticated with PORTCULLIS_ADMIN_TOKEN when the
listener requires it). Without one, or when it does not answer, add and
remove drop a command into the spool beside bans.state_file, which the
running instance applies within about 2 s; the command waits until it is
applied and says so, or says why it was not (no running instance, or not
applied in time).
`
	return &command{name: "bans", summary: "list, add or lift bans of client addresses", help: how, subs: []*command{
		{name: "list", summary: "list the active bans", help: how, run: cmdBansList},
		{name: "add", args: "ADDRESS|CIDR", summary: "ban a client address or network (--for 1h, --reason TEXT)", help: how, run: cmdBansChange},
		{name: "remove", args: "ADDRESS|CIDR", summary: "lift the ban of exactly this address or network", help: how, run: cmdBansChange},
	}}
}

// bansFlags are the flags of every bans command.
type bansFlags struct {
	file   string
	admin  adminClient
	wait   time.Duration
	dur    time.Duration
	reason string
}

func (b *bansFlags) bind(c *command, stderr io.Writer) *flag.FlagSet {
	fs := c.newFlags(stderr)
	configFlag(fs, &b.file, "portcullis.yaml", "")
	b.admin.bind(fs)
	if c.name != "list" {
		fs.DurationVar(&b.wait, "wait", 10*time.Second, "how long to wait for the running instance to apply a spooled command")
	}
	if c.name == "add" {
		fs.DurationVar(&b.dur, "for", time.Hour, "how long the ban lasts")
		fs.StringVar(&b.reason, "reason", "", "why (kept with the ban, shown by list and the dashboard)")
	}
	return fs
}

// loadBansConfig reads the configuration for the state file and says when
// the instance does not apply bans.
func loadBansConfig(file string, stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, false
	}
	if !cfg.Bans.Enabled {
		fmt.Fprintf(stderr, "note: bans.enabled is false in %s: the instance does not apply bans\n", file)
	}
	return cfg, true
}

func cmdBansList(c *command, args []string, stdout, stderr io.Writer) int {
	var b bansFlags
	fs := b.bind(c, stderr)
	pos, code, ok := c.parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageError(stderr, fs, "takes no arguments, got %q", pos[0])
	}
	var list []bans.Ban
	if base, err := b.admin.baseURL(b.file); err == nil {
		var live bool
		if list, live, err = listFromAdmin(&b.admin, base); err != nil && live {
			fmt.Fprintln(stderr, err)
			return 1
		} else if err != nil {
			fmt.Fprintf(stderr, "note: %v; reading the state file instead\n", err)
		}
	} else if !errors.Is(err, errNoAdmin) {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cfg, ok := loadBansConfig(b.file, stderr)
	if !ok {
		return 1
	}
	if list == nil {
		var err error
		if list, err = bans.ReadFile(cfg.Bans.StateFile, time.Now()); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tUNTIL\tSOURCE\tREASON")
	for _, ban := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ban.Prefix, ban.Until.UTC().Format(time.RFC3339), ban.Source, clean(ban.Reason))
	}
	_ = tw.Flush()
	if pending, err := bans.Pending(cfg.Bans.StateFile); err == nil && len(pending) > 0 {
		fmt.Fprintf(stdout, "%d command(s) in %s not yet applied by a running instance\n", len(pending), bans.SpoolDir(cfg.Bans.StateFile))
	}
	return 0
}

// listFromAdmin asks the running instance. live reports that it answered
// (an error then is its answer, not a reason to read the file instead).
func listFromAdmin(ac *adminClient, base string) (list []bans.Ban, live bool, err error) {
	req, err := ac.request(http.MethodGet, base, "/api/bans", nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := ac.client(10 * time.Second).Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("the admin listener at %s does not answer (%v)", base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, true, adminError(base, resp, body)
	}
	var out struct {
		Bans []bans.Ban `json:"bans"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, true, fmt.Errorf("admin listener at %s: unreadable answer: %w", base, err)
	}
	if out.Bans == nil {
		out.Bans = []bans.Ban{}
	}
	return out.Bans, true, nil
}

// adminError words an error answer of the admin API.
func adminError(base string, resp *http.Response, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	err := fmt.Errorf("admin listener at %s answered %s: %s", base, resp.Status, msg)
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		err = fmt.Errorf("%w\n%s", err, strings.TrimSpace(tokenHint))
	}
	return err
}

func cmdBansChange(c *command, args []string, stdout, stderr io.Writer) int {
	var b bansFlags
	fs := b.bind(c, stderr)
	pos, code, ok := c.parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageError(stderr, fs, "give one address or CIDR")
	}
	prefix, err := parseBanTarget(pos[0])
	if err != nil {
		return c.usageError(stderr, fs, "%v", err)
	}
	if c.name == "add" && b.dur <= 0 {
		return c.usageError(stderr, fs, "--for must be positive")
	}
	if b.wait < 0 {
		return c.usageError(stderr, fs, "--wait must not be negative")
	}
	// The running instance's admin API first: it applies the change at
	// once, whoever runs this command.
	if base, err := b.admin.baseURL(b.file); err == nil {
		msg, live, err := changeThroughAdmin(&b.admin, base, c.name, prefix, b.dur, b.reason)
		switch {
		case err == nil:
			fmt.Fprintln(stdout, msg)
			return 0
		case live:
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stderr, "note: %v; using the spool instead\n", err)
	} else if !errors.Is(err, errNoAdmin) {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cfg, ok := loadBansConfig(b.file, stderr)
	if !ok {
		return 1
	}
	return changeThroughSpool(cfg.Bans.StateFile, bans.Command{Op: c.name, Prefix: prefix, Reason: b.reason, Until: time.Now().Add(b.dur)}, b.wait, stdout, stderr)
}

// changeThroughAdmin adds or lifts a ban through the admin API.
func changeThroughAdmin(ac *adminClient, base, op string, prefix netip.Prefix, dur time.Duration, reason string) (msg string, live bool, err error) {
	var req *http.Request
	if op == bans.OpAdd {
		body, _ := json.Marshal(map[string]string{"prefix": prefix.String(), "duration": dur.String(), "reason": reason})
		req, err = ac.request(http.MethodPost, base, "/api/bans", strings.NewReader(string(body)))
	} else {
		req, err = ac.request(http.MethodDelete, base, "/api/bans/"+prefix.String(), nil)
	}
	if err != nil {
		return "", false, err
	}
	resp, err := ac.client(10 * time.Second).Do(req)
	if err != nil {
		return "", false, fmt.Errorf("the admin listener at %s does not answer (%v)", base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case op == bans.OpAdd && resp.StatusCode == http.StatusCreated:
		var out struct {
			Ban   bans.Ban `json:"ban"`
			Saved bool     `json:"saved"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return "", true, fmt.Errorf("admin listener at %s: unreadable answer: %w", base, err)
		}
		msg := fmt.Sprintf("banned %s until %s (applied by the running instance)", out.Ban.Prefix, out.Ban.Until.UTC().Format(time.RFC3339))
		if !out.Saved {
			msg += "; warning: the state file could not be written, so the ban ends at a restart"
		}
		return msg, true, nil
	case op == bans.OpRemove && resp.StatusCode == http.StatusNoContent:
		return fmt.Sprintf("lifted the ban of %s (applied by the running instance)", prefix), true, nil
	}
	return "", true, adminError(base, resp, body)
}

// changeThroughSpool queues cmd for the instance that holds stateFile and
// waits up to wait for it to be applied.
func changeThroughSpool(stateFile string, cmd bans.Command, wait time.Duration, stdout, stderr io.Writer) int {
	running, err := bans.InstanceRunning(stateFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	queued, err := bans.SubmitFile(stateFile, cmd)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	spool := bans.SpoolDir(stateFile)
	if !running {
		fmt.Fprintf(stdout, "%s %s: not applied now: no running Portcullis instance uses %s (with bans.enabled). The command is queued in %s and applies when one starts.\n", cmd.Op, cmd.Prefix, stateFile, spool)
		return 0
	}
	deadline := time.Now().Add(wait)
	for {
		if _, err := os.Lstat(queued); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stdout, "%s %s: applied by the running instance\n", cmd.Op, cmd.Prefix)
			return 0
		}
		if !time.Now().Before(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(stderr, "%s %s: NOT applied: the running instance has not taken the command from %s within %s.\n"+
		"It stays queued there. Check the instance's log for \"ban commands\" errors: it must be able to read the spool\n"+
		"(owned by the user the instance runs as), or configure an admin block so that bans go through its API.\n", cmd.Op, cmd.Prefix, spool, wait)
	return 1
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
