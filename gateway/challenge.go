package gateway

import (
	"crypto/rand"
	"fmt"

	"github.com/portcullis-waf/portcullis/challenge"
)

// buildChallenge prepares the proof-of-work challenge of routes with
// challenge: true. Without a configured key the key is random, and kept
// across reloads (from) so that a reload does not send every client back
// to the challenge.
func (st *stages) buildChallenge(from *Pipeline) {
	cfg := st.cfg
	key := []byte(cfg.Challenge.Key.Reveal())
	switch {
	case len(key) > 0:
	case from != nil && from.challengeKey != nil:
		key = from.challengeKey
	default:
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			st.problem("challenge", fmt.Errorf("challenge key: %w", err))
			return
		}
	}
	ch, err := challenge.New(challenge.Options{Key: key, Difficulty: cfg.Challenge.Difficulty, PassTTL: cfg.Challenge.PassTTL, NonceTTL: cfg.Challenge.NonceTTL})
	if err != nil {
		st.problem("challenge", err)
		return
	}
	st.challengeKey, st.challenger = key, ch
}
