package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/bans"
)

// Bans broader than these lock out whole swaths of the internet by a slip
// of the keyboard; they belong in a reviewed deny list (same bounds as the
// CLI's spooled commands in bans/).
const (
	minBanBitsV4 = 8
	minBanBitsV6 = 32
	maxBanFor    = 365 * 24 * time.Hour
)

// banDurations are the choices of the add form; the API takes any duration.
var banDurations = []string{"1h", "6h", "24h", "7d", "30d"}

// banRequest is a ban to add, from the form or the API.
type banRequest struct {
	Prefix string `json:"prefix"`
	// Duration is a Go duration or a number of days ("7d"); default 1h.
	Duration string `json:"duration"`
	Reason   string `json:"reason"`
}

// parseBan checks a ban request and returns the ban it means.
func parseBan(req banRequest, user string, now time.Time) (bans.Ban, error) {
	p, err := parsePrefix(req.Prefix)
	if err != nil {
		return bans.Ban{}, err
	}
	minBits := minBanBitsV6
	if p.Addr().Unmap().Is4() {
		minBits = minBanBitsV4
	}
	if p.Bits() < minBits {
		return bans.Ban{}, fmt.Errorf("ban %s is broader than /%d; use a deny list for whole networks", p, minBits)
	}
	d := time.Hour
	if strings.TrimSpace(req.Duration) != "" {
		if d, err = parseDuration(req.Duration); err != nil {
			return bans.Ban{}, err
		}
	}
	if d <= 0 || d > maxBanFor {
		return bans.Ban{}, fmt.Errorf("duration must be more than 0 and at most %s", shortDuration(maxBanFor))
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		reason = "banned by " + user + " from the admin dashboard"
	}
	if len(reason) > bans.MaxReasonLen {
		return bans.Ban{}, fmt.Errorf("reason is longer than %d bytes", bans.MaxReasonLen)
	}
	return bans.Ban{Prefix: p, Reason: reason, Source: bans.SourceManual, Created: now, Until: now.Add(d)}, nil
}

// parsePrefix accepts an address (a /32 or /128) or a CIDR prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("prefix %q is not an address or CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("prefix %q is not an address or CIDR prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseDuration is time.ParseDuration plus whole days ("7d").
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 3650 {
			return 0, fmt.Errorf("duration %q: want a Go duration (90m, 12h) or days (7d)", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a Go duration (90m, 12h) or days (7d)", s)
	}
	return d, nil
}

type bansView struct {
	Bans      []banRow
	Durations []string
	Prefix    string // prefilled (from an event page) or the rejected input
	Duration  string
	Reason    string
	Message   string
	Warning   string
	Error     string
}

type banRow struct {
	Prefix, Source, Reason string
	Created, Until, Left   string
	EventsURL              string
}

// Messages after a POST-redirect-GET; the URL names one of these, never
// free text, so a link cannot put words on the page.
var banMessages = map[string]string{
	"added":    "Ban added.",
	"lifted":   "Ban lifted.",
	"gone":     "There was no ban of exactly that prefix (it may have expired).",
	"notsaved": "The change is in effect but could not be saved: it will be lost at restart. See the server log.",
}

func (s *Server) bansPage(w http.ResponseWriter, r *http.Request) {
	if s.opts.Bans == nil {
		s.fail(w, r, http.StatusNotFound, "bans are not enabled")
		return
	}
	q := r.URL.Query()
	view := bansView{Prefix: q.Get("prefix"), Duration: "24h"}
	if m, ok := banMessages[q.Get("done")]; ok {
		if q.Get("done") == "notsaved" {
			view.Warning = m
		} else {
			view.Message = m
		}
	}
	s.showBans(w, r, http.StatusOK, view)
}

func (s *Server) showBans(w http.ResponseWriter, r *http.Request, status int, view bansView) {
	now := s.now()
	view.Durations = banDurations
	for _, b := range s.opts.Bans.List(now) {
		view.Bans = append(view.Bans, s.banRow(b, now))
	}
	s.render(w, r, status, "bans", "Bans", view)
}

func (s *Server) banRow(b bans.Ban, now time.Time) banRow {
	return banRow{
		Prefix: b.Prefix.String(), Source: b.Source, Reason: b.Reason,
		Created: b.Created.UTC().Format("2006-01-02 15:04"), Until: b.Until.UTC().Format("2006-01-02 15:04"),
		Left:      humanDuration(b.Until.Sub(now)),
		EventsURL: "/events?" + prefixFilter(b.Prefix),
	}
}

// prefixFilter is the events filter for a banned prefix.
func prefixFilter(p netip.Prefix) string {
	return query.Filter{ClientIPs: []netip.Prefix{p}}.Values().Encode()
}

func (s *Server) addBanForm(w http.ResponseWriter, r *http.Request) {
	if s.opts.Bans == nil {
		s.fail(w, r, http.StatusNotFound, "bans are not enabled")
		return
	}
	req := banRequest{Prefix: r.PostForm.Get("prefix"), Duration: r.PostForm.Get("duration"), Reason: r.PostForm.Get("reason")}
	user := principalFrom(r.Context()).Name
	b, err := parseBan(req, user, s.now())
	if err != nil {
		s.showBans(w, r, http.StatusBadRequest, bansView{Prefix: req.Prefix, Duration: req.Duration, Reason: req.Reason, Error: err.Error()})
		return
	}
	done, err := s.addBan(b, user)
	s.recordBan(r, "ban", b.Prefix, done, err)
	if err != nil {
		s.showBans(w, r, http.StatusConflict, bansView{Prefix: req.Prefix, Duration: req.Duration, Reason: req.Reason, Error: err.Error()})
		return
	}
	http.Redirect(w, r, "/bans?done="+done, http.StatusSeeOther)
}

func (s *Server) liftBanForm(w http.ResponseWriter, r *http.Request) {
	if s.opts.Bans == nil {
		s.fail(w, r, http.StatusNotFound, "bans are not enabled")
		return
	}
	p, err := parsePrefix(r.PostForm.Get("prefix"))
	if err != nil {
		s.showBans(w, r, http.StatusBadRequest, bansView{Error: err.Error()})
		return
	}
	done, err := s.liftBan(p, principalFrom(r.Context()).Name)
	a := s.recordBan(r, "lift ban", p, done, err)
	if r.PostForm.Get("next") == "console" && s.opts.Console != nil {
		http.Redirect(w, r, "/console?done="+strconv.Itoa(a.ID)+"#result", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/bans?done="+done, http.StatusSeeOther)
}

// addBan adds b and says how it went: "added", or "notsaved" when it is in
// effect but not persisted. An error means it was not added.
func (s *Server) addBan(b bans.Ban, user string) (string, error) {
	err := s.opts.Bans.Add(b)
	switch {
	case err == nil:
		s.log.Info("admin: ban added", "prefix", b.Prefix.String(), "until", b.Until, "user", user)
		return "added", nil
	case errors.Is(err, bans.ErrNotSaved):
		s.log.Error("admin: ban added but not saved", "prefix", b.Prefix.String(), "user", user, "error", err)
		return "notsaved", nil
	case errors.Is(err, bans.ErrFull):
		return "", errors.New("the ban table is full of manual bans; lift some first")
	}
	s.log.Error("admin: ban not added", "prefix", b.Prefix.String(), "user", user, "error", err)
	return "", errors.New("the ban could not be added; see the server log")
}

// liftBan lifts the ban of exactly p: "lifted", "gone" (there was none) or
// "notsaved" (lifted, but it would come back at restart).
func (s *Server) liftBan(p netip.Prefix, user string) (string, error) {
	ok, err := s.opts.Bans.Remove(p)
	switch {
	case err != nil:
		s.log.Error("admin: ban lifted but not saved", "prefix", p.String(), "user", user, "error", err)
		return "notsaved", err
	case !ok:
		return "gone", nil
	}
	s.log.Info("admin: ban lifted", "prefix", p.String(), "user", user)
	return "lifted", nil
}

// recordBan puts a ban change in the action log: what is "ban" or "lift
// ban", done and err what addBan or liftBan answered.
func (s *Server) recordBan(r *http.Request, what string, p netip.Prefix, done string, err error) Action {
	a := Action{User: who(r), Via: via(r), What: what, Target: p.Masked().String(), OK: err == nil && done != "gone"}
	switch {
	case err != nil && done == "":
		a.Result = err.Error()
	case done == "notsaved":
		a.Result = "in effect but not saved: lost at restart"
	default:
		a.Result = banMessages[done]
	}
	return s.record(a)
}
