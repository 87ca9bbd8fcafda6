package instance

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/portcullis-waf/portcullis/admin"
)

// Component is one part of the instance with a lifetime of its own. Every
// field but Name may be nil.
type Component struct {
	// Name is how errors from Stop are labelled ("admin listener: ...").
	Name string
	// Start begins the part's work. It runs when the part is added; when it
	// fails, it must leave nothing behind (its Stop is not called), and
	// everything added before is stopped.
	Start func() error
	// Stop ends the part's work and releases what it holds, within a
	// deadline of its own. It runs once: at shutdown, or when a part added
	// later fails to start, after the Stop of every part added later.
	Stop func() error
	// Ready is the part's contribution to /readyz, asked on every request
	// there while the part runs. It must be cheap and must not block.
	Ready func() admin.Readiness
}

// lifecycle is the stack of started components: the one cleanup path.
type lifecycle struct {
	mu    sync.Mutex
	parts []Component
}

// add starts c and, if that succeeds, stacks it.
func (l *lifecycle) add(c Component) error {
	if c.Start != nil {
		if err := c.Start(); err != nil {
			return err
		}
	}
	l.mu.Lock()
	l.parts = append(l.parts, c)
	l.mu.Unlock()
	return nil
}

// stop unwinds the stack: each component's Stop once, the last added
// first, every error kept. A component leaves the stack (and readiness)
// before its Stop runs.
func (l *lifecycle) stop() error {
	var errs []error
	for {
		l.mu.Lock()
		n := len(l.parts)
		if n == 0 {
			l.mu.Unlock()
			return errors.Join(errs...)
		}
		c := l.parts[n-1]
		l.parts = l.parts[:n-1]
		l.mu.Unlock()
		if c.Stop == nil {
			continue
		}
		if err := c.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
		}
	}
}

// readiness joins the Ready answers of the running components, in the
// order they were added.
func (l *lifecycle) readiness() admin.Readiness {
	l.mu.Lock()
	parts := slices.Clone(l.parts)
	l.mu.Unlock()
	var r admin.Readiness
	for _, c := range parts {
		if c.Ready != nil {
			r.Add(c.Ready())
		}
	}
	return r
}
