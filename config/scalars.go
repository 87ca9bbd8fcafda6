package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// scalar is a config value parsed from one YAML scalar with its own syntax.
// The structure check calls parseScalar so a bad value is reported with its
// field path, together with every other problem.
type scalar interface {
	parseScalar(s string) error
}

// Duration is a Go duration string such as "5s" or "1m30s", or a whole
// number of days such as "30d" (retention periods read better in days).
type Duration time.Duration

func (d *Duration) parseScalar(s string) error {
	t := strings.TrimSpace(s)
	var v time.Duration
	var err error
	if days, ok := strings.CutSuffix(t, "d"); ok {
		var n int64
		n, err = strconv.ParseInt(days, 10, 64)
		if err == nil && (n < 0 || n > 100*365) {
			return fmt.Errorf("must be at most 36500d, got %q", s)
		}
		v = time.Duration(n) * 24 * time.Hour
	} else {
		v, err = time.ParseDuration(t)
	}
	if err != nil {
		return fmt.Errorf("must be a duration like 5s, 1m30s or 30d, got %q", s)
	}
	if v < 0 {
		return fmt.Errorf("must not be negative, got %q", s)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return d.parseScalar(n.Value) }

// ByteSize is a size in bytes: a plain integer or a number with a unit
// (KB, MB, GB as powers of 1000; KiB, MiB, GiB as powers of 1024).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

func (b *ByteSize) parseScalar(s string) error {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("must be a size like 65536, 512KiB or 10MiB, got %q", s)
	}
	if n > (1<<62)/mult {
		return fmt.Errorf("size %q is too large", s)
	}
	*b = ByteSize(n * mult)
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error { return b.parseScalar(n.Value) }
