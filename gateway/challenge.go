package gateway

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/challenge"
	"github.com/portcullis-waf/portcullis/config"
)

// buildChallenge prepares the proof-of-work challenge of routes with
// challenge: true. Without a configured key the key is random, and kept
// across reloads (from) so that a reload does not send every client back
// to the challenge.
func (p *Pipeline) buildChallenge(cfg *config.Config, from *Pipeline) error {
	key := []byte(cfg.Challenge.Key.Reveal())
	switch {
	case len(key) > 0:
	case from != nil && from.challengeKey != nil:
		key = from.challengeKey
	default:
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return fmt.Errorf("challenge key: %w", err)
		}
	}
	p.challengeKey = key
	ch, err := challenge.New(challenge.Options{Key: key, Difficulty: cfg.Challenge.Difficulty, PassTTL: cfg.Challenge.PassTTL, NonceTTL: cfg.Challenge.NonceTTL})
	if err != nil {
		return &config.FieldError{File: cfg.Source, Path: "challenge", Msg: err.Error()}
	}
	p.challenger = ch
	return nil
}

// challenged runs the challenge for a request on a challenged route. It
// reports whether the request may go on (a valid pass, or an answer just
// solved: the pass cookie is then set on the response); otherwise it has
// answered with the challenge page, and the record says so. The
// challenge's cookies are removed from the request either way.
func (p *Pipeline) challenged(w http.ResponseWriter, r *http.Request, entry *audit.Entry, client netip.Addr) bool {
	now := time.Now()
	cl := challenge.ClientOf(r, client.String())
	result, set, why := p.challenger.Judge(r, cl, now)
	challenge.StripCookies(r)
	p.observe.Metrics.ObserveChallenge(result)
	switch result {
	case challenge.ResultPassed:
		return true
	case challenge.ResultSolved:
		http.SetCookie(w, set)
		return true
	case challenge.ResultRejected:
		entry.Block(audit.StageChallenge, "proof-of-work answer rejected: "+why)
	default:
		entry.Block(audit.StageChallenge, "proof-of-work challenge served")
	}
	p.challenger.ServePage(w, cl, entry.ID, now)
	return false
}
