// Package pgtest gives tests a real PostgreSQL: the shared server on
// 127.0.0.1:5432 (database test, trust authentication, as .ci/run starts
// it), with a schema of their own that is dropped afterwards, so parallel
// tests and sessions never see each other's tables.
//
// Outside CI a test that needs PostgreSQL skips with a message when none
// is there; with the environment variable CI set it fails instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Addr is the PostgreSQL server the test suite uses.
const Addr = "127.0.0.1:5432"

// ConnString returns the URL of the test database on addr (user postgres,
// no password, no TLS: loopback only).
func ConnString(addr string) string {
	return "postgres://postgres@" + addr + "/test?sslmode=disable"
}

// Schema checks that the shared server answers, and returns a fresh
// schema name that is dropped (with everything in it) when the test ends.
func Schema(t testing.TB) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", Addr, time.Second)
	if err != nil {
		missing(t, "no PostgreSQL on %s: %v", Addr, err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ConnString(Addr))
	if err != nil {
		missing(t, "cannot use PostgreSQL database test on %s: %v", Addr, err)
	}
	conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "pctest_" + hex.EncodeToString(b[:])
	t.Cleanup(func() { Drop(schema) })
	return schema
}

// Drop removes a schema created by Schema.
func Drop(schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ConnString(Addr))
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
}

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set: a missing service is a failure)", msg)
	}
	t.Skipf("%s; skipping (on Debian: apt-get install postgresql, start it, and create database test with trust authentication on 127.0.0.1)", msg)
}
