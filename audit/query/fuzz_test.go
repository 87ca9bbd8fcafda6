package query

import (
	"net/url"
	"reflect"
	"testing"
	"time"
)

// FuzzParse feeds attacker-shaped query strings to Parse: it must never
// panic, and whatever it accepts must survive the round trip through Values
// (the dashboard's saved links) and Match (the JSONL reader) unchanged.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"since=15m&until=2026-11-26T00:00:00Z",
		"since=1d12h",
		"ip=10.0.0.0/8,2001:db8::1&not_ip=::ffff:1.2.3.4",
		"host=Shop.Example:443&not_host=[::1]:80",
		"path=/a,b&not_path=/health",
		"rule=942100,941100&not_rule=920350",
		"tag=attack-sqli&not_tag=paranoia-level/2",
		"action=blocked&not_stage=ban&status=403&not_country=cn",
		"since=99999999999w",
		"host=a..&host=[a:b]",
		"country=%C3%BF%C3%BF",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		filter, err := Parse(v, now)
		if err != nil {
			return
		}
		back, err := Parse(filter.Values(), now.Add(time.Hour))
		if err != nil {
			t.Fatalf("Parse(%q) = %#v, but its Values %q do not parse: %v", raw, filter, filter.Values().Encode(), err)
		}
		if !reflect.DeepEqual(back, filter) {
			t.Fatalf("round trip of %q\n got %#v\nwant %#v", raw, back, filter)
		}
		filter.Match(entry())
	})
}
