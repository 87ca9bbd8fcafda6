package instance

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/every"
)

// configCheckInterval is how often server.watch_config reads the file.
const configCheckInterval = 2 * time.Second

// Reload reads the configuration file again and switches to it
// (admin.Reloader). A bad file is rejected whole with the same messages
// as `portcullis check`, and the running configuration keeps serving.
// Reloads run one at a time, whoever triggers them.
func (i *Instance) Reload(trigger string) admin.ReloadResult {
	res, _ := i.reloadOverriding(trigger, func() (*config.Config, error) { return config.Load(i.cfgPath) }, nil, i.noteFileLoaded)
	return res
}

// reloadWith switches to the configuration load returns (the file's, or
// one posted to the admin API), one reload at a time; commit, when set,
// runs after a successful switch, still before any other reload.
func (i *Instance) reloadWith(trigger string, load func() (*config.Config, error), commit func()) admin.ReloadResult {
	res, _ := i.reloadOverriding(trigger, load, nil, func() error {
		if commit != nil {
			commit()
		}
		return nil
	})
	return res
}

// reloadOverriding is every reload: the configuration load returns is the
// file's (or a posted one); the console's mode switches, ovs or when nil
// the ones in force, are applied on top before it is built. On success the
// loaded configuration becomes the one the console compares with, ovs the
// switches in force, and commit runs, still before any other reload; an
// error from commit is reported, though the switch has happened. It also
// returns the error itself (config.Errors for a refused file).
func (i *Instance) reloadOverriding(trigger string, load func() (*config.Config, error), ovs *[]admin.ModeOverride, commit func() error) (admin.ReloadResult, error) {
	i.reloadMu.Lock()
	defer i.reloadMu.Unlock()
	start := time.Now()
	err := func() error {
		if i.cfgPath == "" {
			return errors.New("started without a configuration file (-c): nothing to reload")
		}
		if i.draining.Load() {
			// The listeners may have retired their pipelines already; a
			// new one would never be retired.
			return errors.New("shutting down: not reloading")
		}
		fileCfg, err := load()
		if err != nil {
			return err
		}
		i.consoleMu.Lock()
		next := i.overrides
		i.consoleMu.Unlock()
		if ovs != nil {
			next = *ovs
		}
		cfg := i.applyOverrides(fileCfg, next)
		if err := i.server.Reload(cfg, cfg.Server.ShutdownGrace); err != nil {
			return err
		}
		i.level.Set(cfg.Log.Level)
		i.consoleMu.Lock()
		i.fileCfg, i.overrides = fileCfg, next
		i.consoleMu.Unlock()
		if commit != nil {
			return commit()
		}
		return nil
	}()
	i.metrics.ObserveReload(err == nil, time.Since(start))
	res := admin.ReloadResult{Time: start.UTC(), Trigger: trigger, OK: err == nil, Duration: time.Since(start).Round(time.Millisecond).String()}
	if err != nil {
		res.Error = err.Error()
		i.reloads.Failed++
		i.log.Error("reload failed; the running configuration keeps serving", "trigger", trigger, "duration", res.Duration, "err", err.Error())
	} else {
		i.reloads.OK++
		i.log.Info("configuration reloaded", "trigger", trigger, "duration", res.Duration)
	}
	last := res
	i.reloads.Last = &last
	i.consoleMu.Lock()
	i.lastReload = &last
	i.consoleMu.Unlock()
	return res, err
}

// Reloads is the reload history since the start (admin.Reloader).
func (i *Instance) Reloads() admin.ReloadHistory {
	i.reloadMu.Lock()
	defer i.reloadMu.Unlock()
	h := i.reloads
	if h.Last != nil {
		last := *h.Last
		h.Last = &last
	}
	return h
}

// A reload trigger outside the admin listener: the name the reload
// history and the server log give it, and who and how it is in the action
// log.
type trigger struct{ name, who, via string }

var (
	triggerSignal    = trigger{name: "SIGHUP", who: "signal", via: "SIGHUP"}
	triggerFileWatch = trigger{name: "file change", who: "file-watch", via: "watch_config"}
)

// reloadTriggered reloads the file for t and records it in the action log
// as the console's reloads are: ok with the time it took, or refused with
// the count and the lines of the check's problems.
func (i *Instance) reloadTriggered(t trigger) {
	res, err := i.reloadOverriding(t.name, func() (*config.Config, error) { return config.Load(i.cfgPath) }, nil, i.noteFileLoaded)
	if i.recordAction == nil {
		return
	}
	out := consoleResult(res, err)
	result := out.Message
	if res.OK {
		result = "reloaded in " + res.Duration
	}
	i.recordAction(admin.Action{User: t.who, Via: t.via, What: "reload", Target: i.cfgPath, OK: res.OK, Result: result, Problems: out.Problems})
}

// watchReloads starts the other reload triggers: SIGHUP and, with
// server.watch_config, a change of the file's content. It is the last
// step and stops first: no reload begins once shutdown has.
func (i *Instance) watchReloads() error {
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var watch every.Loop
	return i.add(Component{
		Name: "reload triggers",
		Start: func() error {
			signal.Notify(hup, syscall.SIGHUP)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					case <-hup:
						i.reloadTriggered(triggerSignal)
					}
				}
			}()
			if i.cfg.Server.WatchConfig && i.cfgPath != "" {
				watch.Start(configCheckInterval, i.watchConfig())
			}
			return nil
		},
		Stop: func() error {
			signal.Stop(hup)
			close(done)
			wg.Wait() // a reload in progress ends first
			watch.Stop()
			return nil
		},
	})
}

// watchConfig returns the periodic check of the configuration file: a
// change of its content (not only its time stamp) triggers a reload.
func (i *Instance) watchConfig() func(context.Context) {
	last, _ := os.ReadFile(i.cfgPath)
	return func(context.Context) {
		now, err := os.ReadFile(i.cfgPath)
		if err != nil || string(now) == string(last) {
			return
		}
		last = now
		i.reloadTriggered(triggerFileWatch)
	}
}
