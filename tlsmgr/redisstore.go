package tlsmgr

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// StorageKeySize is the size of the key that seals shared ACME state
// (AES-256-GCM).
const StorageKeySize = 32

// ParseStorageKey decodes a storage key as written to a key file or an
// environment variable: 32 random bytes in standard base64 (what
// `openssl rand -base64 32` prints) or in hex, surrounding space ignored.
func ParseStorageKey(text []byte) ([]byte, error) {
	s := strings.TrimSpace(string(text))
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == StorageKeySize {
		return k, nil
	}
	if k, err := hex.DecodeString(s); err == nil && len(k) == StorageKeySize {
		return k, nil
	}
	return nil, fmt.Errorf("storage key must be %d random bytes in base64 or hex (openssl rand -base64 32)", StorageKeySize)
}

// sealer encrypts and authenticates every value put into shared storage
// with AES-256-GCM under a key only the instances have. A reader of the
// database gets no usable private key; a writer without the key can neither
// plant a certificate nor make the instances answer a challenge for the
// writer's own ACME account (which would get a certificate issued for our
// names). The storage key is bound in as additional data, so a value copied
// to another key does not open either.
type sealer struct{ aead cipher.AEAD }

const sealMagic = "PCS1"

func newSealer(key []byte) (*sealer, error) {
	if len(key) != StorageKeySize {
		return nil, fmt.Errorf("storage key is %d bytes, want %d", len(key), StorageKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("storage key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("storage key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

func sealAAD(name string) []byte { return []byte("portcullis acme storage\x00" + name) }

func (s *sealer) seal(name string, plain []byte) []byte {
	out := make([]byte, len(sealMagic)+s.aead.NonceSize(), len(sealMagic)+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	copy(out, sealMagic)
	nonce := out[len(sealMagic):]
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never fails on supported systems
	}
	return s.aead.Seal(out, nonce, plain, sealAAD(name))
}

// open reverses seal. The blob comes from a database that others may write
// to, so it is checked before anything is parsed.
func (s *sealer) open(name string, blob []byte) ([]byte, error) {
	head := len(sealMagic) + s.aead.NonceSize()
	if len(blob) < head+s.aead.Overhead() || string(blob[:len(sealMagic)]) != sealMagic {
		return nil, fmt.Errorf("stored value of %s is not sealed by Portcullis", name)
	}
	plain, err := s.aead.Open(nil, blob[len(sealMagic):head], blob[head:], sealAAD(name))
	if err != nil {
		return nil, fmt.Errorf("stored value of %s does not open with the storage key (another key, or tampered with)", name)
	}
	return plain, nil
}

// RedisOptions configures RedisStorage.
type RedisOptions struct {
	// Client is the process's Redis client (single node, Sentinel or
	// Cluster). Required; RedisStorage never closes it.
	Client redis.UniversalClient
	// Prefix starts every key, e.g. "portcullis:prod:acme:". Default
	// "portcullis:acme:". Instances that share certificates use the same.
	Prefix string
	// Key seals every stored value (AES-256-GCM); StorageKeySize bytes.
	// Required: every instance of the cluster needs the same key.
	Key []byte
	// LockTTL is the lease of an issuance lock. The holder renews it every
	// third of LockTTL; a holder that dies frees it after at most LockTTL.
	// Default 1m.
	LockTTL time.Duration
	// LockPoll is how often a waiting instance tries for a busy lock.
	// Default 500ms.
	LockPoll time.Duration
	// Timeout bounds each Redis command. Default 5s.
	Timeout time.Duration
}

// RedisStorage is the cluster Storage: certificates, the account key and
// challenge answers in Redis (sealed, see sealer), issuance locks as Redis
// leases (SET NX PX, renewed and released only by their holder's token).
// Certificates are stored without expiry: Redis must persist (RDB or AOF),
// and each instance also keeps a local copy (see ACMEConfig.CacheDir).
type RedisStorage struct {
	c        redis.UniversalClient
	prefix   string
	seal     *sealer
	lockTTL  time.Duration
	lockPoll time.Duration
	timeout  time.Duration
}

// NewRedisStorage checks o and returns the storage.
func NewRedisStorage(o RedisOptions) (*RedisStorage, error) {
	if o.Client == nil {
		return nil, errors.New("redis storage: no client")
	}
	s, err := newSealer(o.Key)
	if err != nil {
		return nil, fmt.Errorf("redis storage: %w", err)
	}
	if o.Prefix == "" {
		o.Prefix = "portcullis:acme:"
	}
	if o.LockTTL <= 0 {
		o.LockTTL = time.Minute
	}
	if o.LockPoll <= 0 {
		o.LockPoll = 500 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	return &RedisStorage{c: o.Client, prefix: o.Prefix, seal: s, lockTTL: o.LockTTL, lockPoll: o.LockPoll, timeout: o.Timeout}, nil
}

// maxStoredValue bounds what Get accepts: a certificate chain with its key
// is a few KiB.
const maxStoredValue = 1 << 20

// Get implements Storage.
func (r *RedisStorage) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	blob, err := r.c.Get(ctx, r.prefix+"v:"+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis %s: %w", key, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("redis get %s: %w", key, err)
	}
	if len(blob) > maxStoredValue {
		return nil, fmt.Errorf("redis %s: %d bytes, larger than 1 MiB", key, len(blob))
	}
	return r.seal.open(key, blob)
}

// Put implements Storage.
func (r *RedisStorage) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.c.Set(ctx, r.prefix+"v:"+key, r.seal.seal(key, value), max(ttl, 0)).Err(); err != nil {
		return fmt.Errorf("redis set %s: %w", key, err)
	}
	return nil
}

// Delete implements Storage.
func (r *RedisStorage) Delete(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.c.Del(ctx, r.prefix+"v:"+key).Err(); err != nil {
		return fmt.Errorf("redis del %s: %w", key, err)
	}
	return nil
}

// Lua scripts that touch a lock only while it still holds the caller's
// token: a holder whose lease ran out must not extend or free the lock that
// another instance took since.
var (
	renewLock = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`)
	freeLock  = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)
)

// Lock implements Storage with a Redis lease.
func (r *RedisStorage) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	key := r.prefix + "lock:" + name
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	token := hex.EncodeToString(tok)
	for {
		octx, cancel := context.WithTimeout(ctx, r.timeout)
		ok, err := r.c.SetNX(octx, key, token, r.lockTTL).Result()
		cancel()
		if err == nil && ok {
			break
		}
		if err != nil && ctx.Err() == nil {
			// Redis unreachable: keep trying until ctx ends, as for a
			// busy lock; the caller's deadline bounds the wait.
			err = fmt.Errorf("redis lock %s: %w", name, err)
		}
		t := time.NewTimer(r.lockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			if err != nil {
				return nil, nil, err
			}
			return nil, nil, fmt.Errorf("wait for lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
	held, cancelHeld := context.WithCancel(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancelHeld()
		every := r.lockTTL / 3
		lastOK := time.Now()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-held.Done():
				return
			case <-t.C:
			}
			octx, cancel := context.WithTimeout(context.Background(), min(r.timeout, every))
			n, err := renewLock.Run(octx, r.c, []string{key}, token, r.lockTTL.Milliseconds()).Int64()
			cancel()
			switch {
			case err == nil && n == 1:
				lastOK = time.Now()
			case err == nil:
				return // lost: the lease ran out and someone else may hold it
			case time.Since(lastOK)+every >= r.lockTTL:
				return // cannot tell before the lease runs out: assume lost
			}
		}
	}()
	var once sync.Once
	release := func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			octx, cancel := context.WithTimeout(context.Background(), r.timeout)
			_ = freeLock.Run(octx, r.c, []string{key}, token).Err()
			cancel()
		})
	}
	return held, release, nil
}

var _ Storage = (*RedisStorage)(nil)
