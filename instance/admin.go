package instance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/review/explain"
)

// adminStopWait bounds the admin listener's shutdown: its own deadline,
// since the traffic grace period may be used up by then.
const adminStopWait = 5 * time.Second

// startAdmin opens the admin listener (admin block): dashboard, JSON API,
// bans, and this instance's endpoints (reload, cache purge, health,
// readiness, metrics). It starts before the traffic listeners and stops
// after them, so /readyz says "starting" and "shutting down" rather than
// refusing connections.
func (i *Instance) startAdmin() error {
	ac := i.cfg.Admin
	if ac == nil {
		return nil
	}
	var records store.Store = i.store
	if i.pg != nil {
		records = i.pg // the cluster's records, every instance's
	} else if i.store == nil {
		files, err := store.OpenFiles(i.cfg.Audit.File)
		if err != nil {
			return fmt.Errorf("admin: read audit file: %w", err)
		}
		if err := i.add(Component{Name: "audit file reader", Stop: files.Close}); err != nil {
			return err
		}
		records = files
	}
	auth := admin.Auth{None: ac.Auth.None}
	for _, u := range ac.Auth.Users {
		auth.Users = append(auth.Users, admin.User{Name: u.Name, PasswordHash: u.PasswordHash})
	}
	for _, t := range ac.Auth.Tokens {
		auth.Tokens = append(auth.Tokens, admin.Token{Name: t.Name, SHA256: t.SHA256})
	}
	opts := admin.Options{
		Store:   records,
		Bans:    i.first.Bans(), // the ban table lives as long as the process
		Explain: i.explain,
		Reload:  i,
		Cache:   i,
		Config:  i,
		Console: i,
		// Beside the ban state and the mode switches: who did what
		// survives a restart.
		ActionLog: filepath.Join(i.cfg.TLS.StateDir, "admin-actions.jsonl"),
		Ready:     i,
		Auth:      auth,
		Log:       i.log.With("component", "admin"),
		Redis:     i.redis, // shared sessions and CSRF key; nil without cluster.redis
	}
	if i.metrics != nil {
		opts.Metrics = i.metrics.Handler()
	}
	srv, err := admin.New(opts)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	// The reloads nobody asked the admin listener for go into its action
	// log too, so the console lists every change of the configuration.
	i.recordAction = func(a admin.Action) { srv.Record(a) }
	var tlsConfig *tls.Config
	if ac.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(ac.CertFile, ac.KeyFile)
		if err != nil {
			return fmt.Errorf("admin: load cert_file/key_file: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	served := make(chan struct{}) // closed when Serve has returned and closed the listener
	return i.add(Component{
		Name: "admin listener",
		Start: func() error {
			ln, err := net.Listen("tcp", ac.Listen)
			if err != nil {
				return fmt.Errorf("admin: listen on %s: %w", ac.Listen, err)
			}
			i.admin = []net.Addr{ln.Addr()}
			go func() {
				defer close(served)
				if err := srv.Serve(ln, tlsConfig); err != nil {
					i.log.Error("admin listener stopped", "address", ln.Addr().String(), "err", err)
				}
			}()
			i.log.Info("admin listener", "address", ln.Addr().String(), "tls", tlsConfig != nil)
			return nil
		},
		Stop: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), adminStopWait)
			defer cancel()
			err := srv.Shutdown(ctx)
			// Serve may not have begun yet (a step right after this one
			// failed): it then sees the shutdown and closes the listener
			// itself. Wait for that, so the port is free when Stop returns.
			select {
			case <-served:
			case <-ctx.Done():
				err = errors.Join(err, ctx.Err())
			}
			return err
		},
	})
}

// maxExplainCache bounds the remembered suggestions.
const maxExplainCache = 256

// explain computes the suggested exclusion for the dashboard. Each
// suggestion compiles rule sets several times (about a second each on two
// cores), so only one is computed at a time — a second caller is told to
// retry rather than queue up CPU the proxy needs — and results are kept by
// record id.
func (i *Instance) explain(e *audit.Entry) (string, error) {
	if !i.explainMu.TryLock() {
		return "", errors.New("another suggestion is being computed; reload the page in a few seconds")
	}
	defer i.explainMu.Unlock()
	cfg := i.pipeline().Config
	key := e.ID + "\x00" + fmt.Sprintf("%p", cfg) // a reload may change the answer
	if y, ok := i.explainCache[key]; ok {
		return y, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := explain.Explain(ctx, cfg, e, explain.Options{})
	if err != nil {
		return "", err
	}
	if i.explainCache == nil || len(i.explainCache) >= maxExplainCache {
		i.explainCache = map[string]string{}
	}
	i.explainCache[key] = s.YAML()
	return s.YAML(), nil
}
