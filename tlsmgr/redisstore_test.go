package tlsmgr

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testRedis connects to the Redis on 127.0.0.1:6379 and returns a client
// and a key prefix of the test's own, whose keys are deleted afterwards.
// Without Redis the test is skipped, or fails when CI is set.
func testRedis(t *testing.T) (redis.UniversalClient, string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DialTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis on 127.0.0.1:6379 is required: %v", err)
		}
		t.Skipf("Redis on 127.0.0.1:6379 not reachable (%v): start redis-server to run this test", err)
	}
	rnd := make([]byte, 6)
	_, _ = rand.Read(rnd)
	prefix := "portcullis-test:" + t.Name() + ":" + hex.EncodeToString(rnd) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		_ = c.Close()
	})
	return c, prefix
}

func testKey() []byte {
	k := make([]byte, StorageKeySize)
	_, _ = rand.Read(k)
	return k
}

func TestParseStorageKey(t *testing.T) {
	k := testKey()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{base64.StdEncoding.EncodeToString(k) + "\n", true},
		{hex.EncodeToString(k), true},
		{"  " + base64.StdEncoding.EncodeToString(k) + "  ", true},
		{base64.StdEncoding.EncodeToString(k[:16]), false},
		{"password", false},
		{"", false},
	} {
		got, err := ParseStorageKey([]byte(tc.in))
		if tc.ok != (err == nil) || tc.ok && !bytes.Equal(got, k) {
			t.Errorf("%q: %x, %v", tc.in, got, err)
		}
	}
}

// TestSealer: values open only with the same key and under the same name;
// any change to the stored bytes is detected.
func TestSealer(t *testing.T) {
	s, _ := newSealer(testKey())
	other, _ := newSealer(testKey())
	plain := []byte("-----BEGIN PRIVATE KEY-----\nsecret\n")
	blob := s.seal("cert-a", plain)
	if bytes.Contains(blob, []byte("secret")) {
		t.Fatal("sealed value contains the plaintext")
	}
	if got, err := s.open("cert-a", blob); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q, %v", got, err)
	}
	if bytes.Equal(s.seal("cert-a", plain), blob) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	flipped := bytes.Clone(blob)
	flipped[len(flipped)-1] ^= 1
	for name, tc := range map[string]struct {
		s    *sealer
		key  string
		blob []byte
		want string
	}{
		"other key":     {other, "cert-a", blob, "does not open"},
		"moved":         {s, "cert-b", blob, "does not open"},
		"tampered":      {s, "cert-a", flipped, "does not open"},
		"plain PEM":     {s, "cert-a", plain, "not sealed by Portcullis"},
		"truncated":     {s, "cert-a", blob[:10], "not sealed by Portcullis"},
		"empty":         {s, "cert-a", nil, "not sealed by Portcullis"},
		"magic only":    {s, "cert-a", []byte(sealMagic), "not sealed by Portcullis"},
		"header no tag": {s, "cert-a", blob[:len(sealMagic)+12], "not sealed by Portcullis"},
	} {
		if _, err := tc.s.open(tc.key, tc.blob); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// FuzzSealerOpen: bytes read from a shared database never panic the opener
// and never open without the key.
func FuzzSealerOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, StorageKeySize)
	s, _ := newSealer(key)
	f.Add(s.seal("k", []byte("value")))
	f.Add([]byte(sealMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, blob []byte) {
		got, err := s.open("k", blob)
		if err == nil && !bytes.Equal(got, []byte("value")) {
			// Only a blob sealed with the key opens; the one seed sealed
			// with it holds "value".
			t.Fatalf("forged value opened: %q", got)
		}
	})
}

func newTestRedisStorage(t *testing.T, c redis.UniversalClient, prefix string, key []byte, lockTTL time.Duration) *RedisStorage {
	t.Helper()
	s, err := NewRedisStorage(RedisOptions{Client: c, Prefix: prefix, Key: key, LockTTL: lockTTL, LockPoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRedisStorage(t *testing.T) {
	c, prefix := testRedis(t)
	key := testKey()
	s := newTestRedisStorage(t, c, prefix, key, time.Minute)
	ctx := testCtx(t)

	if _, err := s.Get(ctx, "absent"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("absent key: %v", err)
	}
	if err := s.Put(ctx, "cert-x", []byte("PRIVATE KEY material"), 0); err != nil {
		t.Fatal(err)
	}
	raw, err := c.Get(ctx, prefix+"v:cert-x").Bytes()
	if err != nil || bytes.Contains(raw, []byte("PRIVATE KEY")) {
		t.Fatalf("stored in the clear or not at all: %q, %v", raw, err)
	}
	if ttl := c.PTTL(ctx, prefix+"v:cert-x").Val(); ttl != -1 {
		t.Errorf("certificate stored with expiry %v", ttl)
	}
	if got, err := s.Get(ctx, "cert-x"); err != nil || string(got) != "PRIVATE KEY material" {
		t.Fatalf("get: %q, %v", got, err)
	}
	// An instance with another key reads nothing usable.
	wrong := newTestRedisStorage(t, c, prefix, testKey(), time.Minute)
	if _, err := wrong.Get(ctx, "cert-x"); err == nil || errors.Is(err, ErrNotExist) {
		t.Errorf("read with the wrong key: %v", err)
	}
	// A value planted in Redis without the key is refused.
	c.Set(ctx, prefix+"v:challenge/http-01/tok", "forged-key-authorization", 0)
	if _, err := s.Get(ctx, "challenge/http-01/tok"); err == nil || !strings.Contains(err.Error(), "not sealed") {
		t.Errorf("planted answer: %v", err)
	}

	if err := s.Put(ctx, "challenge/x", []byte("answer"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if ttl := c.PTTL(ctx, prefix+"v:challenge/x").Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("challenge TTL %v", ttl)
	}
	if err := s.Delete(ctx, "challenge/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "challenge/x"); !errors.Is(err, ErrNotExist) {
		t.Errorf("after delete: %v", err)
	}
	if _, err := NewRedisStorage(RedisOptions{Client: c, Key: key[:16]}); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}

// TestRedisLock: one holder at a time; a holder's lease is renewed while it
// works; a crashed holder's lease runs out and the lock is taken; a holder
// whose lease was lost sees its context cancelled and cannot free the new
// holder's lock.
func TestRedisLock(t *testing.T) {
	c, prefix := testRedis(t)
	const ttl = 3 * time.Second
	key := testKey()
	s1 := newTestRedisStorage(t, c, prefix, key, ttl)
	s2 := newTestRedisStorage(t, c, prefix, key, ttl)
	ctx := testCtx(t)

	held1, release1, err := s1.Lock(ctx, "cert-a")
	if err != nil {
		t.Fatal(err)
	}
	// While s1 holds it (and renews it past two TTLs), s2 waits.
	got := make(chan error, 1)
	go func() {
		_, release2, err := s2.Lock(ctx, "cert-a")
		if err == nil {
			release2()
		}
		got <- err
	}()
	renewedPast := time.Now().Add(2 * ttl)
	for time.Now().Before(renewedPast) {
		select {
		case err := <-got:
			t.Fatalf("second holder got the lock while the first held it (err %v)", err)
		case <-held1.Done():
			t.Fatal("the holder's lease was lost while it was renewed")
		case <-time.After(50 * time.Millisecond):
		}
	}
	release1()
	if err := <-got; err != nil {
		t.Fatalf("after release: %v", err)
	}
	if held1.Err() == nil {
		t.Error("release did not cancel the holder's context")
	}

	// A crashed holder: its lease is in Redis, nobody renews it.
	c.Set(ctx, prefix+"lock:cert-b", "token-of-a-dead-instance", ttl)
	held2, release2, err := s2.Lock(ctx, "cert-b")
	if err != nil {
		t.Fatalf("lock of a crashed holder not taken after its lease: %v", err)
	}
	defer release2()

	// The lease is lost (deleted behind the holder's back and taken by
	// another): the holder's context ends, and its release leaves the new
	// holder's lock alone.
	c.Set(ctx, prefix+"lock:cert-b", "another-holder", time.Minute)
	select {
	case <-held2.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a lost lease did not cancel the holder's context")
	}
	release2()
	if v := c.Get(ctx, prefix+"lock:cert-b").Val(); v != "another-holder" {
		t.Errorf("release freed someone else's lock (value now %q)", v)
	}

	// Waiting is bounded by the caller's context.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, _, err := s1.Lock(short, "cert-b"); err == nil || !strings.Contains(err.Error(), "wait for lock cert-b") {
		t.Errorf("busy lock: %v", err)
	}
}

// TestDirStorage: permanent entries are 0600 files, ephemeral ones never
// touch the disk, keys cannot name files outside the directory, and the
// in-process lock excludes.
func TestDirStorage(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDirStorage(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if err := d.Put(ctx, "cert-x.pem", []byte("k"), 0); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir + "/cert-x.pem"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v, %v", st, err)
	}
	if err := d.Put(ctx, "challenge/http-01/tok", []byte("answer"), time.Minute); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("an ephemeral entry reached the disk: %v", entries)
	}
	if v, err := d.Get(ctx, "challenge/http-01/tok"); err != nil || string(v) != "answer" {
		t.Errorf("ephemeral get: %q %v", v, err)
	}
	for _, bad := range []string{"../x", "a/b", ".hidden", ""} {
		if err := d.Put(ctx, bad, []byte("x"), 0); err == nil {
			t.Errorf("key %q accepted", bad)
		}
		if _, err := d.Get(ctx, bad); !errors.Is(err, ErrNotExist) {
			t.Errorf("get %q: %v", bad, err)
		}
	}
	_, release, err := d.Lock(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, _, err := d.Lock(short, "n"); err == nil {
		t.Error("the lock was taken twice")
	}
	release()
	if _, r, err := d.Lock(ctx, "n"); err != nil {
		t.Errorf("after release: %v", err)
	} else {
		r()
	}
}
