package tlsmgr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// ExecHookConfig configures a DNS provider that runs an operator's command,
// for DNS services Portcullis has no provider for.
type ExecHookConfig struct {
	// Command is the program and its first arguments, run without a shell.
	// Portcullis appends the action ("present" or "cleanup"), the record's
	// name (with the trailing dot) and its value, and sets the same in the
	// environment as PORTCULLIS_ACME_ACTION, PORTCULLIS_ACME_FQDN and
	// PORTCULLIS_ACME_VALUE. Exit status 0 means done. Required.
	Command []string
	// Timeout bounds each run; the command and its process group are
	// killed after it. Default 1m.
	Timeout time.Duration
	// PassEnv names environment variables of Portcullis handed to the
	// command. Nothing else is, besides PATH and the three above: the
	// command never sees Portcullis's own secrets unless named here.
	PassEnv []string
}

// ExecHook is a DNSProvider that runs a command for each record.
type ExecHook struct{ cfg ExecHookConfig }

// NewExecHook checks cfg: the program must exist and be executable.
func NewExecHook(cfg ExecHookConfig) (*ExecHook, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("exec hook: command is required")
	}
	if _, err := exec.LookPath(cfg.Command[0]); err != nil {
		return nil, fmt.Errorf("exec hook: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	return &ExecHook{cfg: cfg}, nil
}

// Present implements DNSProvider.
func (h *ExecHook) Present(ctx context.Context, fqdn, value string) error {
	return h.run(ctx, "present", fqdn, value)
}

// CleanUp implements DNSProvider.
func (h *ExecHook) CleanUp(ctx context.Context, fqdn, value string) error {
	return h.run(ctx, "cleanup", fqdn, value)
}

// maxHookOutput bounds the command's output kept for the error message.
const maxHookOutput = 4 << 10

func (h *ExecHook) run(ctx context.Context, action, fqdn, value string) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	args := append(append([]string(nil), h.cfg.Command[1:]...), action, fqdn, value)
	cmd := exec.CommandContext(ctx, h.cfg.Command[0], args...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"PORTCULLIS_ACME_ACTION=" + action,
		"PORTCULLIS_ACME_FQDN=" + fqdn,
		"PORTCULLIS_ACME_VALUE=" + value,
	}
	for _, name := range h.cfg.PassEnv {
		if v, ok := os.LookupEnv(name); ok {
			cmd.Env = append(cmd.Env, name+"="+v)
		}
	}
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Stdin = nil
	ownProcessGroup(cmd)
	// A child that keeps the output pipe open (a daemonised grandchild)
	// must not hold the order up past the timeout.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(out.String())
	if msg == "" {
		msg = "no output"
	}
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("dns hook %s %s: killed after %v: %s", action, fqdn, h.cfg.Timeout, msg)
	}
	return fmt.Errorf("dns hook %s %s: %w: %s", action, fqdn, err, msg)
}

// limitedBuffer keeps the first maxHookOutput bytes written to it.
type limitedBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxHookOutput - b.buf.Len(); room < len(p) {
		b.buf.Write(p[:max(room, 0)])
		b.truncated = true
	} else {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return b.buf.String() + " [output truncated]"
	}
	return b.buf.String()
}

var _ DNSProvider = (*ExecHook)(nil)
