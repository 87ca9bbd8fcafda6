package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestActionLogRotation: the action log file is rotated by size without
// losing or tearing an entry, with writers in parallel, keeping keep old
// files; a log opened again (a restart) reads its newest entries across the
// rotation boundary and goes on numbering after the newest.
func TestActionLogRotation(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int64
		keep     int
		writers  int
		each     int // entries per writer
		result   string
		// wantFirst is the oldest id the files still hold (older ones were
		// rotated away); wantFiles how many files there are.
		wantFirst, wantFiles int
	}{
		{"everything kept", 1024, 100, 1, 60, "reloaded", 1, 0},
		{"oldest files dropped", 1024, 2, 1, 60, "reloaded", 0, 3},
		{"parallel writers", 2048, 1000, 8, 50, "reloaded", 1, 0},
		{"more than the console shows, across files", 8192, 1000, 1, 700, "reloaded", 1, 0},
		{"an entry larger than the limit", 100, 10, 1, 5, strings.Repeat("x", 300), 1, 5},
		{"defaults", 0, 0, 1, 20, "reloaded", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "admin-actions.jsonl")
			l, err := openActionLog(path, tt.maxBytes, tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, tt.writers*tt.each)
			for w := range tt.writers {
				wg.Go(func() {
					for i := range tt.each {
						_, err := l.add(Action{User: fmt.Sprintf("writer-%d", w), Via: "api", What: "reload", Target: fmt.Sprintf("entry %d", i), OK: true, Result: tt.result}, testNow)
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			total := tt.writers * tt.each

			// Every file, oldest first: each line a whole entry, each
			// file within the limit unless it holds one larger entry,
			// the ids consecutive up to the newest.
			files := readLogFiles(t, path, l.keep)
			if tt.wantFiles > 0 && len(files) != tt.wantFiles {
				t.Errorf("%d files, want %d", len(files), tt.wantFiles)
			}
			if _, err := os.Stat(rotated(path, l.keep+1)); !os.IsNotExist(err) {
				t.Errorf("a file beyond keep: %v", err)
			}
			var ids []int
			for _, f := range files {
				if int64(len(f.data)) > l.maxBytes && len(f.ids) > 1 {
					t.Errorf("%s: %d bytes in %d entries, over the limit %d", f.name, len(f.data), len(f.ids), l.maxBytes)
				}
				ids = append(ids, f.ids...)
			}
			if len(ids) == 0 || ids[len(ids)-1] != total {
				t.Fatalf("newest id in the files %v, want %d", ids[max(0, len(ids)-1):], total)
			}
			for i := 1; i < len(ids); i++ {
				if ids[i] != ids[i-1]+1 {
					t.Fatalf("ids not consecutive across the files at %d: %d after %d", i, ids[i], ids[i-1])
				}
			}
			if tt.wantFirst > 0 && ids[0] != tt.wantFirst {
				t.Errorf("oldest id kept %d, want %d", ids[0], tt.wantFirst)
			}
			if tt.wantFirst == 0 && ids[0] == 1 {
				t.Errorf("nothing rotated away with keep %d", tt.keep)
			}

			// A restart reads the newest entries across the files.
			again, err := openActionLog(path, tt.maxBytes, tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			got := again.list(maxActions)
			want := min(maxActions, len(ids))
			if len(got) != want || got[0].ID != total || got[len(got)-1].ID != total-want+1 {
				t.Fatalf("read back %d entries, ids %d..%d; want %d, %d..%d", len(got), got[len(got)-1].ID, got[0].ID, want, total-want+1, total)
			}
			for i := 1; i < len(got); i++ {
				if got[i].ID != got[i-1].ID-1 {
					t.Fatalf("read back: id %d after %d", got[i].ID, got[i-1].ID)
				}
			}
			if a, err := again.add(Action{What: "reload"}, testNow); err != nil || a.ID != total+1 {
				t.Errorf("next id after the restart %d (%v), want %d", a.ID, err, total+1)
			}
		})
	}
}

type logFile struct {
	name string
	data []byte
	ids  []int
}

// readLogFiles reads path's rotated files and path, oldest first, and
// fails on any line that is not a whole entry.
func readLogFiles(t *testing.T, path string, keep int) []logFile {
	t.Helper()
	var out []logFile
	for n := keep; n >= 0; n-- {
		name := path
		if n > 0 {
			name = rotated(path, n)
		}
		data, err := os.ReadFile(name)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		f := logFile{name: filepath.Base(name), data: data}
		if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Fatalf("%s: empty or not ended by a newline", f.name)
		}
		for line := range bytes.Lines(data) {
			var a Action
			if err := json.Unmarshal(line, &a); err != nil {
				t.Fatalf("%s: torn line %q: %v", f.name, line, err)
			}
			f.ids = append(f.ids, a.ID)
		}
		out = append(out, f)
	}
	return out
}

// TestActionLogRotationFails: when the old files cannot be moved (here the
// oldest's name is taken by a directory that cannot be removed), the entry
// is appended to the current file all the same and the error reported;
// nothing already written is overwritten.
func TestActionLogRotationFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin-actions.jsonl")
	l, err := openActionLog(path, 200, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rotated(path, 1), "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	var rotateErrs int
	for i := range 5 {
		a, err := l.add(Action{What: "reload", Result: strings.Repeat("r", 80)}, testNow.Add(time.Duration(i)*time.Second))
		if err != nil {
			if !strings.Contains(err.Error(), "rotate the action log") || strings.Contains(err.Error(), "append") {
				t.Fatalf("entry %d: %v", a.ID, err)
			}
			rotateErrs++
		}
	}
	if rotateErrs == 0 {
		t.Fatal("no rotation error reported")
	}
	files := readLogFiles(t, path, 0)
	if len(files) != 1 || len(files[0].ids) != 5 {
		t.Fatalf("the current file holds %v, want all 5 entries", files)
	}
}
