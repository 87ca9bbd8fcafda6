package bans

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// fileVersion is the state file's format version. A file of another version
// is refused rather than half understood.
const fileVersion = 1

// stateFile is the JSON document on disk.
type stateFile struct {
	Version int   `json:"version"`
	Bans    []Ban `json:"bans"`
}

// load reads the state file at path, returning the bans still active at now.
// A missing file is an empty table; anything unreadable is an error naming
// the file, because starting with the bans silently gone would quietly let
// banned clients back in.
func load(path string, now time.Time) ([]Ban, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bans: read state file %s: %w", path, err)
	}
	var st stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("bans: state file %s is corrupt: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("bans: state file %s is corrupt: data after the JSON document", path)
	}
	if st.Version != fileVersion {
		return nil, fmt.Errorf("bans: state file %s has version %d, want %d", path, st.Version, fileVersion)
	}
	out := make([]Ban, 0, len(st.Bans))
	for i, b := range st.Bans {
		b.Prefix = normalize(b.Prefix)
		if err := b.validate(); err != nil {
			return nil, fmt.Errorf("bans: state file %s, entry %d: %w", path, i, err)
		}
		if b.Active(now) {
			out = append(out, b)
		}
	}
	return out, nil
}

// save writes the table as of generation gen or later to the state file,
// unless a newer write already covered gen. Writers queue on saveMu, and the
// one at the front writes the newest state for all that wait behind it, so a
// burst of automatic bans costs a few file writes, not one each.
func (s *Store) save(gen uint64) error {
	if s.path == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if s.savedGen >= gen {
		return nil
	}
	s.mu.RLock()
	st := stateFile{Version: fileVersion, Bans: make([]Ban, 0, len(s.bans))}
	for _, b := range s.bans {
		st.Bans = append(st.Bans, b)
	}
	current := s.gen
	s.mu.RUnlock()
	slices.SortFunc(st.Bans, byPrefix) // stable output: diffs show real changes

	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("bans: encode state: %w", err)
	}
	if err := writeAtomic(s.path, append(data, '\n')); err != nil {
		return fmt.Errorf("%w: %w", ErrNotSaved, err)
	}
	s.savedGen = current
	return nil
}

// writeAtomic replaces path with data so that a reader or a crash sees the
// old file or the new one, never a mix: write a temporary file in the same
// directory (created 0600: bans name client addresses), flush it to disk,
// then rename it over path. The directory is synced afterwards so the rename
// itself survives a crash; where that is unsupported it is skipped.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil { // CreateTemp uses 0600 already; be explicit
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // best effort: not every file system syncs directories
		d.Close()
	}
	return nil
}
