// Package redistest gives tests a real Redis: the shared server on
// 127.0.0.1:6379 (with a key prefix of their own, removed afterwards) or a
// throwaway redis-server on a free loopback port that a test may stop and
// start again to cause a real outage.
//
// Outside CI a test that needs Redis skips with a message when none is
// there; with the environment variable CI set it fails instead.
package redistest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
)

// SharedAddr is the Redis server the test suite uses (started by .ci/run).
const SharedAddr = "127.0.0.1:6379"

// missing skips the test, or fails it under CI.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set: a missing service is a failure)", msg)
	}
	t.Skipf("%s; skipping (start one with: redis-server --bind 127.0.0.1 --port 6379 --save \"\" --daemonize yes)", msg)
}

// Prefix returns a key prefix unique to this test run.
func Prefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "portcullis-test:" + hex.EncodeToString(b[:]) + ":"
}

// Config returns a resolved cluster.redis setting for addr with a unique
// key prefix.
func Config(t testing.TB, addr string) *config.RedisConfig {
	return &config.RedisConfig{Network: "tcp", Addr: addr, Timeout: 2 * time.Second, Dial: time.Second, KeyPrefix: Prefix(t)}
}

// Shared connects to the shared server with a unique key prefix; the keys
// under it are deleted and the connection closed when the test ends.
// cfg, if given, is adjusted before connecting.
func Shared(t testing.TB, adjust ...func(*config.RedisConfig)) *redisconn.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", SharedAddr, time.Second)
	if err != nil {
		missing(t, "no Redis on %s: %v", SharedAddr, err)
	}
	c.Close()
	cfg := Config(t, SharedAddr)
	for _, f := range adjust {
		f(cfg)
	}
	return Connect(t, cfg)
}

// Connect connects with cfg and registers cleanup of cfg.KeyPrefix's keys.
func Connect(t testing.TB, cfg *config.RedisConfig) *redisconn.Conn {
	t.Helper()
	conn, err := redisconn.New(cfg, redisconn.Options{ProbeInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		Clean(cfg.Addr, cfg.KeyPrefix)
		conn.Close()
	})
	return conn
}

// Clean deletes every key under prefix on the server at addr (best effort).
func Clean(addr, prefix string) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		c.Del(ctx, keys[:n]...)
		keys = keys[n:]
	}
}

// Server is a throwaway redis-server that a test can stop and start.
type Server struct {
	t    testing.TB
	Addr string
	dir  string
	cmd  *exec.Cmd
}

// Start runs a redis-server on a free loopback port, without persistence;
// it is stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		missing(t, "redis-server is not installed: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{t: t, Addr: addr, dir: t.TempDir()}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server again on the same port (empty: it keeps
// nothing on disk, as a restart without persistence would).
func (s *Server) Restart() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	// Ready when it answers PING.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			fmt.Fprint(c, "PING\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer within 10s: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling for readiness, not synchronising
	}
}

// Stop kills the server (an outage, not a shutdown: nothing is saved).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a frozen one too
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Freeze stops the server process (SIGSTOP): connections stay open but
// nothing is answered, as with a network partition; the data is kept.
func (s *Server) Freeze() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("freeze redis-server: %v", err)
	}
}

// Thaw lets a frozen server run again (SIGCONT).
func (s *Server) Thaw() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("thaw redis-server: %v", err)
	}
}

// Port is the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
