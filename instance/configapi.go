package instance

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/config"
)

// EffectiveConfig is the configuration in force, secrets masked
// (admin.ConfigManager).
func (i *Instance) EffectiveConfig() (map[string]any, string) {
	cfg := i.cfg
	if i.server != nil {
		if p := i.server.Pipeline(); p != nil {
			cfg = p.Config
		}
	}
	return cfg.Effective(), cfg.Source
}

// ApplyConfig checks text as the new content of the configuration file
// (relative paths and {file.PATH} resolve against its directory) and
// switches to it exactly as a reload does: a refused configuration changes
// nothing and lists every problem (admin.ConfigManager).
//
// With persist, the text is written to a temporary file beside the
// configuration file (same permissions, synced) once it is found valid,
// and renamed over the file only after the switch succeeded, before any
// other reload can run: the file and the running configuration never
// disagree, and a crash leaves the old file or the new one, never half of
// one. Without persist the file is left alone, so the next reload (SIGHUP,
// watch_config, POST /api/reload) returns to it.
func (i *Instance) ApplyConfig(text []byte, persist bool, by string) admin.ConfigApplyResult {
	var problems config.Errors
	var tmp string
	var persistErr error
	res := i.reloadWith(by, func() (*config.Config, error) {
		cfg, err := config.Parse(i.cfgPath, text)
		if err != nil {
			problems = config.ErrorList(err)
			return nil, err
		}
		if persist {
			if tmp, err = writeBeside(i.cfgPath, text); err != nil {
				return nil, fmt.Errorf("configuration is valid but cannot be saved, so it was not applied: %w", err)
			}
		}
		return cfg, nil
	}, func() {
		i.consoleMu.Lock()
		i.loadedSum = sha256.Sum256(text) // the file differs unless saved below
		i.consoleMu.Unlock()
		if tmp != "" {
			persistErr = os.Rename(tmp, i.cfgPath)
		}
	})
	out := admin.ConfigApplyResult{OK: res.OK, Applied: res.OK, Duration: res.Duration}
	for _, p := range problems {
		out.Problems = append(out.Problems, p.Error())
	}
	if !res.OK && len(problems) == 0 {
		out.Error = res.Error
	}
	switch {
	case tmp == "":
	case res.OK && persistErr == nil:
		out.Persisted = true
		i.log.Info("posted configuration saved", "file", i.cfgPath, "by", by)
	default:
		_ = os.Remove(tmp)
		if persistErr != nil {
			out.OK = false
			out.Error = fmt.Sprintf("applied, but not saved to %s: %v", i.cfgPath, persistErr)
			i.log.Error("posted configuration applied but not saved", "file", i.cfgPath, "err", persistErr.Error())
		}
	}
	return out
}

// writeBeside writes data to a new temporary file in path's directory with
// path's permissions (0600 if it does not exist), synced to disk.
func writeBeside(path string, data []byte) (string, error) {
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", err
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}
