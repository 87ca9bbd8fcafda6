package bans

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSpoolCommandsReachTheStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans.json")
	s, err := Open(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p := netip.MustParsePrefix("192.0.2.5/32")
	if err := Submit(path, Command{Op: OpAdd, Prefix: p, Reason: "scanner", Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if pending, _ := Pending(path); len(pending) != 1 {
		t.Fatalf("pending %d", len(pending))
	}
	if n, err := s.Drain(path, now); n != 1 || err != nil {
		t.Fatalf("drain: %d %v", n, err)
	}
	if _, banned := s.Banned(netip.MustParseAddr("192.0.2.5"), now); !banned {
		t.Error("spooled ban not applied")
	}
	list, err := ReadFile(path, now)
	if err != nil || len(list) != 1 || list[0].Source != SourceManual || list[0].Reason != "scanner" {
		t.Errorf("state file: %v %v", list, err)
	}
	if err := Submit(path, Command{Op: OpRemove, Prefix: p}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Drain(path, now); n != 1 {
		t.Fatal("remove not applied")
	}
	if _, banned := s.Banned(netip.MustParseAddr("192.0.2.5"), now); banned {
		t.Error("ban not lifted")
	}
	if pending, _ := Pending(path); len(pending) != 0 {
		t.Errorf("%d commands left in the spool", len(pending))
	}
	// A corrupt command is dropped, not retried forever.
	_ = os.WriteFile(filepath.Join(SpoolDir(path), "00000000000000000001-x.json"), []byte("{"), 0o600)
	if n, err := s.Drain(path, now); n != 0 || err == nil {
		t.Errorf("corrupt command: applied %d, error %v (want 0 and a report)", n, err)
	}
	if pending, _ := Pending(path); len(pending) != 0 {
		t.Error("corrupt command left in the spool")
	}
	if err := Submit(path, Command{Op: OpAdd, Prefix: netip.MustParsePrefix("10.0.0.0/4"), Until: now.Add(time.Hour)}); err == nil {
		t.Error("a ban broader than /8 was accepted")
	}
	// A manual ban is not shortened by an automatic one.
	if err := s.Add(Ban{Prefix: p, Reason: "operator", Source: SourceManual, Created: now, Until: now.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(Ban{Prefix: p, Reason: "strikes", Source: SourceAuto, Created: now, Until: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Banned(p.Addr(), now.Add(time.Hour)); b.Source != SourceManual {
		t.Errorf("automatic ban replaced the manual one: %+v", b)
	}
	if err := Submit(path, Command{Op: "explode", Prefix: p}); err == nil {
		t.Error("unknown op accepted")
	}
}
