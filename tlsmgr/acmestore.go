package tlsmgr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Storage holds the ACME state of one or more instances: the account key,
// certificates with their keys, the answers to pending challenges and a
// lock per certificate name.
//
// DirStorage (the default) keeps it for one instance: files in the cache
// directory, answers in memory. RedisStorage shares it within a cluster, so
// that a challenge answer published by the instance that placed an order is
// served by whichever instance the CA's validation reaches, and so that one
// instance orders each certificate while every other instance waits for the
// lock and then serves what it stored.
type Storage interface {
	// Get returns the value stored under key, or an error wrapping
	// fs.ErrNotExist when there is none.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value under key. A ttl > 0 marks an ephemeral entry (a
	// challenge answer) that disappears by itself after ttl; 0 keeps it.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key; removing an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Lock takes the lock called name, waiting until ctx ends. The lock is
	// a lease: a holder that dies loses it after a bounded time. held is
	// derived from ctx and is cancelled if the lease is lost, so work done
	// under the lock stops when another instance may already have it;
	// release gives the lock up (and cancels held).
	Lock(ctx context.Context, name string) (held context.Context, release func(), err error)
}

// ErrNotExist is wrapped by Storage.Get for an absent key.
var ErrNotExist = fs.ErrNotExist

// DirStorage is the single-instance Storage: permanent entries are files in
// one directory (0700, files 0600, written atomically), ephemeral entries
// (challenge answers) live in memory only, and locks are in-process.
type DirStorage struct {
	dir string

	mu    sync.Mutex
	temp  map[string]tempEntry
	locks map[string]chan struct{} // held while present; closed on release
}

type tempEntry struct {
	value   []byte
	expires time.Time
}

// NewDirStorage prepares dir (created 0700, an existing one tightened).
func NewDirStorage(dir string) (*DirStorage, error) {
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	return &DirStorage{dir: dir, temp: map[string]tempEntry{}, locks: map[string]chan struct{}{}}, nil
}

// path maps a permanent key to its file; keys are plain file names.
func (d *DirStorage) path(key string) (string, error) {
	if key == "" || key != filepath.Base(key) || strings.HasPrefix(key, ".") || strings.ContainsAny(key, `/\`) {
		return "", fmt.Errorf("storage key %q is not a plain file name", key)
	}
	return filepath.Join(d.dir, key), nil
}

// Get implements Storage.
func (d *DirStorage) Get(_ context.Context, key string) ([]byte, error) {
	d.mu.Lock()
	e, ok := d.temp[key]
	if ok && time.Now().After(e.expires) {
		delete(d.temp, key)
		ok = false
	}
	d.mu.Unlock()
	if ok {
		return append([]byte(nil), e.value...), nil
	}
	p, err := d.path(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotExist, err)
	}
	return readSmall(p)
}

// Put implements Storage.
func (d *DirStorage) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl > 0 {
		d.mu.Lock()
		d.temp[key] = tempEntry{value: append([]byte(nil), value...), expires: time.Now().Add(ttl)}
		d.mu.Unlock()
		return nil
	}
	p, err := d.path(key)
	if err != nil {
		return err
	}
	return writeFileAtomic(p, value)
}

// Delete implements Storage.
func (d *DirStorage) Delete(_ context.Context, key string) error {
	d.mu.Lock()
	_, ok := d.temp[key]
	delete(d.temp, key)
	d.mu.Unlock()
	if ok {
		return nil
	}
	p, err := d.path(key)
	if err != nil {
		return nil // such a key was never stored as a file
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// Lock implements Storage with an in-process lock: one instance, so the
// lease ends with the process.
func (d *DirStorage) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	for {
		d.mu.Lock()
		held, busy := d.locks[name]
		if !busy {
			mine := make(chan struct{})
			d.locks[name] = mine
			d.mu.Unlock()
			hctx, cancel := context.WithCancel(ctx)
			var once sync.Once
			return hctx, func() {
				once.Do(func() {
					cancel()
					d.mu.Lock()
					delete(d.locks, name)
					d.mu.Unlock()
					close(mine)
				})
			}, nil
		}
		d.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("wait for lock %s: %w", name, ctx.Err())
		}
	}
}

var _ Storage = (*DirStorage)(nil)

// withLocalCopy is the Storage of an instance in a cluster: everything goes
// to the shared store, and permanent entries (certificates, the account
// key) are also kept in the local cache directory, exactly as a single
// instance keeps them. The copy is read when the shared store cannot be
// reached, or has lost the entry (a Redis restarted without persistence),
// so an instance keeps serving and the cluster does not order again before
// the certificates are due.
type withLocalCopy struct {
	shared Storage
	local  *DirStorage
	log    interface {
		Warn(msg string, args ...any)
	}
}

func (w *withLocalCopy) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := w.shared.Get(ctx, key)
	if err == nil {
		return v, nil
	}
	lv, lerr := w.local.Get(ctx, key)
	if lerr != nil {
		return nil, err
	}
	if !errors.Is(err, ErrNotExist) {
		w.log.Warn("acme: shared storage unreachable; using the local copy", "key", key, "err", err)
	}
	return lv, nil
}

func (w *withLocalCopy) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := w.shared.Put(ctx, key, value, ttl); err != nil {
		return err
	}
	if ttl == 0 {
		if err := w.local.Put(ctx, key, value, 0); err != nil {
			w.log.Warn("acme: local copy not written", "key", key, "err", err)
		}
	}
	return nil
}

func (w *withLocalCopy) Delete(ctx context.Context, key string) error {
	return w.shared.Delete(ctx, key)
}

func (w *withLocalCopy) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	return w.shared.Lock(ctx, name)
}
